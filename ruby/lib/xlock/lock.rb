# frozen_string_literal: true

module XLock
  # A named lock: flock(2) on the lock file of +name+ in a namespace directory [XL-LOCK-7], exclusive or
  # shared for the object's lifetime [XL-LOCK-10]. Two objects for the same name exclude each other, also
  # in one process [XL-HOLD-1]; an object is safe to share between threads [XL-HOLD-2]. The kernel releases
  # it when the process dies; after fork the child holds nothing [XL-HOLD-7].
  #
  # Implemented in C (ext/xlock/xlock_ext_lock.c and, common to every handle, xlock_ext_handle.c; documented
  # there): #lock(timeout: nil), #try_lock, #unlock, #synchronize(timeout: nil) { |lock| }, #locked?, #close,
  # #closed?, #owned? (like Mutex#owned?), #name, #namespace, #path, #namespace_identity, #sharing, #bell,
  # #bell_word, #bell_status,
  # #shared?, #reentrant?.
  class Lock
    # Opens (creating if needed) the lock file of +name+ in +namespace+ (an absolute directory path;
    # nil: XLOCK_NAMESPACE, else /tmp/xlock-EUID [XL-NS-1]). Acquires nothing.
    # shared: a shared (reader) lock instead of an exclusive one. reentrant: the holding thread may lock
    # again, counting [XL-HOLD-4]; otherwise that raises XLock::AlreadyHeld [XL-HOLD-3].
    # allow_unsupported_fs: accept a network or FUSE namespace [XL-NS-11].
    # Raises XLock::InvalidName, XLock::InvalidArgument, XLock::InsecureNamespace,
    # XLock::UnsupportedFilesystem, XLock::OSError.
    def initialize(name, namespace: nil, shared: false, reentrant: false, allow_unsupported_fs: false)
      _open(Names.checked(name), Names.namespace_path(namespace),
            shared ? true : false, reentrant ? true : false, allow_unsupported_fs ? true : false)
    end

    # Removes the idle lock file of +name+ [XL-RM-2]: true if removed, false if there was none.
    # Raises XLock::WouldBlock (nothing removed) if the lock is held. Waiters on the removed file
    # reopen the path, so removal never yields two holders [XL-RM-4].
    def self.remove(name, namespace: nil, allow_unsupported_fs: false)
      _remove(Names.checked(name), Names.namespace_path(namespace), allow_unsupported_fs ? true : false)
    end

    # Deprecated, always nil: draft 1's doorbell semaphore is withdrawn [XL-SEM-2]. Waiters sleep on a word
    # of the namespace's bell file instead: see #bell_word and #bell.
    def doorbell
      Deprecation.warn_once("XLock::Lock#doorbell", "XLock::Lock#bell_word")
      nil
    end

    # Acquires, waiting at least +timeout+ seconds (nil: as long as it takes) [XL-WAIT-3]; returns self.
    # Uncontended, timed or not, it costs one attempt and no bell access [XL-WAIT-12].
    # Raises XLock::Timeout, XLock::AlreadyHeld (this thread holds this non-reentrant lock [XL-HOLD-3]).
    def lock(timeout: nil)
      _acquire(timeout)
    end

    # A copy would share nothing with the original; open another object for the same name instead.
    def initialize_copy(_other)
      raise TypeError, "#{self.class} cannot be copied: open another #{self.class} for the same name"
    end

    def inspect
      return "#<#{self.class} #{name.inspect} closed>" if closed?

      "#<#{self.class} #{name.inspect} #{path} #{shared? ? 'shared' : 'exclusive'}#{' held' if locked?}>"
    end
  end
end
