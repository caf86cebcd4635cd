# frozen_string_literal: true

require "timeout"

# XLock's errors: the spec's error table [XL-ERR-1].
module XLock
  # The one base of every xlock exception [XL-ERR-2]. It is a module, not a class, so that each error can
  # also subclass the builtin a Ruby user already rescues: XLock::Timeout is a ::Timeout::Error,
  # XLock::InvalidName an ArgumentError, and `rescue XLock::Error` still catches them all.
  module Error
    # The spec's error kind, e.g. "TIMEOUT" (spec/vectors/errors.json).
    def kind
      self.class::KIND
    end
  end

  # The error table of the spec [XL-ERR-1]; the extension raises these from libxlock's codes.

  # A try acquisition found the lock held elsewhere.
  class WouldBlock < StandardError; include Error; KIND = "WOULD_BLOCK"; end
  # The deadline passed.
  class Timeout < ::Timeout::Error; include Error; KIND = "TIMEOUT"; end
  # The name breaks spec section 3; the message says which rule.
  class InvalidName < ArgumentError; include Error; KIND = "INVALID_NAME"; end
  # Another argument is invalid (namespace path, capacity, timeout, a closed object).
  class InvalidArgument < ArgumentError; include Error; KIND = "INVALID_ARGUMENT"; end
  # A namespace or lock-file check refused a path (owner, mode, symlink, not a regular file).
  class InsecureNamespace < StandardError; include Error; KIND = "INSECURE_NAMESPACE"; end
  # The namespace is on a network or FUSE file system [XL-NS-10].
  class UnsupportedFilesystem < StandardError; include Error; KIND = "UNSUPPORTED_FS"; end
  # Release of what this object does not hold (like Mutex#unlock, a ThreadError).
  class NotHeld < ThreadError; include Error; KIND = "NOT_HELD"; end
  # The holding thread acquired a non-reentrant lock again [XL-HOLD-3].
  class AlreadyHeld < ThreadError; include Error; KIND = "ALREADY_HELD"; end
  # The capacity file gives another capacity [XL-CSEM-3].
  class CapacityMismatch < ArgumentError; include Error; KIND = "CAPACITY_MISMATCH"; end
  # A signal interrupted a wait and no Ruby exception replaced it [XL-WAIT-9].
  class Interrupted < StandardError; include Error; KIND = "INTERRUPTED"; end
  # Another thread cancelled the wait [XL-WAIT-10].
  class Cancelled < StandardError; include Error; KIND = "CANCELLED"; end

  # Any other system call failure; #errno is the errno libxlock kept.
  class OSError < StandardError
    include Error
    KIND = "OS_ERROR"
    attr_reader :errno

    def initialize(message = nil, errno = nil)
      super(message)
      @errno = errno
    end
  end

  # The kinds of PostgreSQL namespaces (spec section 16), which libxlock, and so this gem, does not
  # implement yet: defined so that the table matches spec/vectors/errors.json.

  # The session of a holder ended or lost the lock [XL-PG-10].
  class Lost < StandardError; include Error; KIND = "LOST"; end
  # A standby, a pooler or too old a server [XL-PG-6, XL-PG-9].
  class UnsupportedBackend < StandardError; include Error; KIND = "UNSUPPORTED_BACKEND"; end
  # The server is unreachable, refused us, or failed a statement [XL-PG-15].
  class BackendError < StandardError; include Error; KIND = "BACKEND_ERROR"; end

  ERROR_CLASSES = [WouldBlock, Timeout, InvalidName, InvalidArgument, InsecureNamespace,
                   UnsupportedFilesystem, NotHeld, AlreadyHeld, CapacityMismatch, Interrupted,
                   Cancelled, OSError, Lost, UnsupportedBackend, BackendError].to_h do |c|
    [c::KIND,
     c]
  end.freeze
  private_constant :ERROR_CLASSES

  # The class for a kind string ("TIMEOUT" -> XLock::Timeout); KeyError for an unknown kind.
  def self.error_class(kind)
    ERROR_CLASSES.fetch(kind)
  end
end
