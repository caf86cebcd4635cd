# frozen_string_literal: true

module XLock
  # PostgreSQL namespaces [spec §16].
  module PG
    # Removal in a PostgreSQL namespace [XL-PG-18]: an advisory lock leaves nothing behind, so removal tries
    # the lock (or every slot) once, raises XLock::WouldBlock if it is held, and otherwise gives it back and
    # returns false. +capacity+ nil means 1 for a semaphore.
    def self.remove(name, url, kind: :lock, capacity: nil)
      case kind
      when :lock then remove_lock(name, url)
      when :semaphore then remove_semaphore(name, url, capacity || 1)
      else raise InvalidArgument, "kind #{kind.inspect} has no PostgreSQL form: use :lock or :semaphore " \
                                  "[XL-PG-18]"
      end
    end

    def self.remove_lock(name, url)
      closing(Lock.new(name, namespace: url)) do |lock| # exclusive: a shared holder blocks the removal too
        next lock.unlock if lock.try_lock

        raise WouldBlock, "lock '#{lock.name}' (label '#{lock.label}') in #{lock.namespace} is held; " \
                          "nothing to remove [XL-PG-18]"
      end
    end

    def self.remove_semaphore(name, url, capacity)
      closing(Semaphore.new(name, capacity, namespace: url)) do |sem| # close gives back every permit taken
        next if capacity.times.all? { sem.try_acquire }

        raise WouldBlock, "semaphore '#{sem.name}' (capacity #{capacity}, label '#{sem.label}') in " \
                          "#{sem.namespace}: a permit is held; nothing to remove [XL-PG-18]"
      end
    end

    # Yields +object+, closes it, returns false: nothing is left to remove [XL-PG-18].
    def self.closing(object)
      yield object
      false
    ensure
      object.close
    end
    private_class_method :remove_lock, :remove_semaphore, :closing
  end
end
