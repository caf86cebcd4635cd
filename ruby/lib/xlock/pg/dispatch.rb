# frozen_string_literal: true

# The hooks that send a postgresql:// namespace to xlock/pg.
module XLock
  # XLock::Lock.new and XLock::Semaphore.new with a postgresql:// or postgres:// namespace (explicit or
  # XLOCK_NAMESPACE) return the PostgreSQL objects of xlock/pg, loading the pg gem only then [XL-PG-1];
  # their .remove (and so XLock.remove) has nothing to remove there [XL-PG-18].
  module PGDispatch
    def self.url(namespace)
      ns = namespace.nil? ? ENV.fetch("XLOCK_NAMESPACE", nil) : namespace
      ns if ns.is_a?(String) && (ns.start_with?("postgresql://") || ns.start_with?("postgres://"))
    end

    # Prepended to XLock::Lock's singleton class.
    module LockNew
      def new(name, namespace: nil, **options)
        url = PGDispatch.url(namespace)
        return super unless url && equal?(XLock::Lock)

        require "xlock/pg"
        XLock::PG::Lock.new(name, namespace: url, **options)
      end

      # Nothing to remove in a PostgreSQL namespace [XL-PG-18]: false, or XLock::WouldBlock if held.
      def remove(name, namespace: nil, **options)
        url = PGDispatch.url(namespace)
        return super unless url && equal?(XLock::Lock)

        require "xlock/pg"
        XLock::PG.remove(Names.checked(name), url, kind: :lock)
      end
    end

    # Prepended to XLock::Semaphore's singleton class.
    module SemaphoreNew
      def new(name, capacity, namespace: nil, **options)
        url = PGDispatch.url(namespace)
        return super unless url && equal?(XLock::Semaphore)

        require "xlock/pg"
        XLock::PG::Semaphore.new(name, capacity, namespace: url, **options)
      end

      # Nothing to remove in a PostgreSQL namespace [XL-PG-18]: false, or XLock::WouldBlock if a permit is
      # held; +capacity+ nil means 1.
      def remove(name, capacity = nil, namespace: nil, **options)
        url = PGDispatch.url(namespace)
        return super unless url && equal?(XLock::Semaphore)

        require "xlock/pg"
        XLock::PG.remove(Names.checked(name), url, kind: :semaphore, capacity: capacity)
      end
    end
  end
  Lock.singleton_class.prepend(PGDispatch::LockNew)
  Semaphore.singleton_class.prepend(PGDispatch::SemaphoreNew)
end
