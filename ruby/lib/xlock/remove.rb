# frozen_string_literal: true

# XLock.remove: deleting an idle object's files [XL-RM-4].
module XLock
  REMOVE_KINDS = %i[lock semaphore posix_semaphore].freeze
  private_constant :REMOVE_KINDS

  # Removes what +name+ leaves behind, as Python's xlock.remove(name, *, namespace=None, kind="lock",
  # capacity=None):
  # - kind: :lock - the idle lock file, only while holding it [XL-RM-2];
  # - kind: :semaphore - the idle slot and capacity files of a counting semaphore, only while holding every
  #   slot [XL-RM-3]; +capacity+ nil takes the one its capacity file records, an Integer must agree with it;
  # - kind: :posix_semaphore - sem_unlink of the raw semaphore; see the hazard in XLock::PosixSemaphore
  #   [XL-PSEM-5].
  # Waiters on a removed file reopen the path, so removal never yields two holders [XL-RM-4].
  # Returns true if this call removed something, false if there was nothing. Raises XLock::WouldBlock if
  # the lock or a permit is held (nothing removed), XLock::CapacityMismatch, XLock::InvalidName,
  # XLock::InvalidArgument, XLock::InsecureNamespace, XLock::OSError.
  def self.remove(name, kind: :lock, namespace: nil, capacity: nil, allow_unsupported_fs: false)
    name = Names.checked(name)
    kind = remove_kind(kind, capacity)
    options = { namespace: namespace, allow_unsupported_fs: allow_unsupported_fs }
    case kind
    when :lock then Lock.remove(name, **options)
    when :semaphore then Semaphore.remove(name, capacity, **options)
    else PosixSemaphore.unlink(name, **options)
    end
  end

  # +kind+ as a Symbol of REMOVE_KINDS; only a :semaphore takes a capacity.
  def self.remove_kind(kind, capacity)
    kind = kind.to_sym if kind.is_a?(String) && REMOVE_KINDS.include?(kind.to_sym)
    unless REMOVE_KINDS.include?(kind)
      raise InvalidArgument, "XLock.remove: kind must be one of #{REMOVE_KINDS.inspect}, not #{kind.inspect}"
    end
    return kind if capacity.nil? || kind == :semaphore

    raise InvalidArgument, "XLock.remove: capacity: is for kind: :semaphore, not #{kind.inspect}"
  end
  private_class_method :remove_kind
end
