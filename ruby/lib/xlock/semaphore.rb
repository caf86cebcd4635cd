# frozen_string_literal: true

module XLock
  # The crash-safe counting semaphore [XL-CSEM-1]: +capacity+ permits, each an exclusive flock on one of
  # the slot files of +name+, so a permit held by a process that dies returns at once [XL-CSEM-2].
  # Every participant must use the same capacity (else XLock::CapacityMismatch [XL-CSEM-3]).
  #
  # Implemented in C (ext/xlock/xlock_ext_semaphore.c, xlock_ext_handle.c): #acquire(timeout: nil) -> slot,
  # #try_acquire -> slot or nil, #release, #synchronize(timeout: nil) { |slot| }, #held, #capacity, #close,
  # #closed?, #name, #namespace, #path, #namespace_identity, #sharing, #bell, #bell_word, #bell_status.
  class Semaphore
    # Opens the semaphore +name+ with +capacity+ (1..1000) in +namespace+ (as XLock::Lock.new).
    def initialize(name, capacity, namespace: nil, allow_unsupported_fs: false)
      name = Names.checked(name)
      unless capacity.is_a?(Integer)
        raise InvalidArgument, "capacity must be an Integer from 1 to 1000, not #{capacity.inspect}"
      end

      _open(name, capacity, Names.namespace_path(namespace), allow_unsupported_fs ? true : false)
    end

    # Removes the idle files of the semaphore +name+ [XL-RM-3]: true if this call removed files, false if
    # there were none. +capacity+ nil: the one the capacity file records; an Integer must agree with it
    # (else XLock::CapacityMismatch, also for a malformed file; nothing removed). Raises XLock::WouldBlock if
    # any permit is held (nothing removed).
    def self.remove(name, capacity = nil, namespace: nil, allow_unsupported_fs: false)
      name = Names.checked(name)
      unless capacity.nil? || (capacity.is_a?(Integer) && capacity.positive?)
        raise InvalidArgument, "capacity must be nil or an Integer from 1 to 1000, not #{capacity.inspect}"
      end

      _remove(name, capacity || 0, Names.namespace_path(namespace), allow_unsupported_fs ? true : false)
    end

    # Deprecated, always nil: draft 1's doorbell semaphore is withdrawn [XL-SEM-2]. Waiters sleep on a word
    # of the namespace's bell file instead: see #bell_word and #bell.
    def doorbell
      Deprecation.warn_once("XLock::Semaphore#doorbell", "XLock::Semaphore#bell_word")
      nil
    end

    # Takes a permit, waiting at least +timeout+ seconds (nil: as long as it takes) [XL-WAIT-11]; returns
    # the slot held. Interruptible like XLock::Lock#lock. Raises XLock::Timeout.
    def acquire(timeout: nil)
      _acquire(timeout)
    end

    # A copy would share nothing with the original; open another object for the same name instead.
    def initialize_copy(_other)
      raise TypeError, "#{self.class} cannot be copied: open another #{self.class} for the same name"
    end

    def inspect
      return "#<#{self.class} #{name.inspect} closed>" if closed?

      "#<#{self.class} #{name.inspect} #{path} capacity=#{capacity} held=#{held}>"
    end
  end
end
