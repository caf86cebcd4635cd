# frozen_string_literal: true

module XLock
  # The gem's version; the spec it implements is XLock::SPEC.
  VERSION = "0.2.0"
  SPEC = "xlock/1"
end
