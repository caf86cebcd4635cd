# frozen_string_literal: true

module XLock
  # The raw POSIX named semaphore of (namespace, name) [XL-PSEM-1], for programs that only speak sem_open.
  # Its permits are NOT returned when a holder dies: prefer XLock::Semaphore unless you need sem_open.
  # An object counts the permits it holds; releasing more raises XLock::NotHeld [XL-PSEM-4].
  #
  # Hazard of PosixSemaphore.unlink [XL-PSEM-5]: it removes the name only. Processes that have the
  # semaphore open keep using the old object, while later openers get a new one with the initial value, so
  # the two groups no longer exclude each other. Unlink only when no process uses the semaphore.
  #
  # Implemented in C (ext/xlock/xlock_ext_posix_semaphore.c, xlock_ext_handle.c): #acquire(timeout: nil) ->
  # true, #try_acquire -> true/false, #release, #synchronize(timeout: nil) { }, #held, #value, #close (posts
  # back the permits the object holds [XL-PSEM-6]), #closed?, #name, #namespace, #semaphore_name,
  # #namespace_identity, #sharing. After fork the child's object holds no permit [XL-HOLD-11].
  class PosixSemaphore
    # Opens (creating with +value+, 0..SEM_VALUE_MAX, if it does not exist [XL-PSEM-2]) the raw semaphore.
    def initialize(name, value: 1, namespace: nil, allow_unsupported_fs: false)
      name = Names.checked(name)
      unless value.is_a?(Integer)
        raise InvalidArgument,
              "value must be a non-negative Integer, not #{value.inspect}"
      end

      _open(name, value, Names.namespace_path(namespace), allow_unsupported_fs ? true : false)
    end

    # sem_unlink of the semaphore of (namespace, name): true if one was unlinked, false if none existed.
    # See the hazard above [XL-PSEM-5].
    def self.unlink(name, namespace: nil, allow_unsupported_fs: false)
      _unlink(Names.checked(name), Names.namespace_path(namespace), allow_unsupported_fs ? true : false)
    end

    # sem_wait / sem_clockwait until the deadline [XL-PSEM-4]; returns true. Interruptible like
    # XLock::Lock#lock. Raises XLock::Timeout.
    def acquire(timeout: nil)
      _acquire(timeout)
    end

    # A copy would share nothing with the original; open another object for the same name instead.
    def initialize_copy(_other)
      raise TypeError, "#{self.class} cannot be copied: open another #{self.class} for the same name"
    end

    def inspect
      return "#<#{self.class} #{name.inspect} closed>" if closed?

      "#<#{self.class} #{name.inspect} #{semaphore_name} held=#{held}>"
    end
  end
end
