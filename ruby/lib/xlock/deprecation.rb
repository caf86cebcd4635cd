# frozen_string_literal: true

module XLock
  # Old spellings kept while the gem is 0.x. Each warns once per process, as a :deprecated category
  # warning (shown when Warning[:deprecated] is true, e.g. `ruby -W:deprecated`), pointing at the caller.
  module Deprecation
    @warned = {}
    @mutex = Mutex.new

    # Warns that +old+ is deprecated in favour of +new+, once; +uplevel+ counts from the deprecated method.
    def self.warn_once(old, new, uplevel: 1)
      return unless Warning[:deprecated]
      return unless @mutex.synchronize { @warned[old] ? false : (@warned[old] = true) }

      Kernel.warn("xlock: #{old} is deprecated and goes away in 1.0; use #{new}",
                  uplevel: uplevel + 1, category: :deprecated)
    end
  end
  private_constant :Deprecation
end
