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
      lock = Lock.new(name, namespace: url) # exclusive: a shared holder blocks the removal too
      begin
        unless lock.try_lock
          raise WouldBlock, "lock '#{lock.name}' (label '#{lock.label}') in #{lock.namespace} is held; " \
                            "nothing to remove [XL-PG-18]"
        end

        lock.unlock
      ensure
        lock.close
      end
      false
    end

    def self.remove_semaphore(name, url, capacity)
      sem = Semaphore.new(name, capacity, namespace: url)
      begin
        capacity.times do
          next if sem.try_acquire

          raise WouldBlock, "semaphore '#{sem.name}' (capacity #{capacity}, label '#{sem.label}') in " \
                            "#{sem.namespace}: a permit is held; nothing to remove [XL-PG-18]"
        end
      ensure
        sem.close # gives back every permit taken
      end
      false
    end
    private_class_method :remove_lock, :remove_semaphore
  end
end
