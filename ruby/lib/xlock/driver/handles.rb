# frozen_string_literal: true

module XLock
  class Driver
    # What the protocol does with an open object (conformance/PROTOCOL.md, ops acquire to close): the
    # reply fields of each op, one subclass per kind of the op open.
    class Handle
      SHARING = { private: "private", group_shared: "group", world_shared: "world" }.freeze

      attr_reader :object

      def initialize(object)
        @object = object
      end

      # Acquires, waiting at most +timeout+ seconds (nil: as long as it takes); the reply's fields.
      def acquire(timeout)
        { "slot" => object.acquire(timeout: timeout) }
      end

      def release
        object.release
      end

      def locked?
        object.held.positive?
      end

      # Whether the op locked may ask the server (verify: true): only a PostgreSQL lock can.
      def verifiable?
        false
      end

      # The reply of the op open, without the handle.
      def opened
        return pg_opened if pg?

        dev, ino = object.namespace_identity
        { "namespace" => object.namespace, "dev" => dev, "ino" => ino }
          .merge(files, "sharing" => SHARING.fetch(object.sharing))
      end

      private

      def pg?
        defined?(XLock::PG::Handle) && object.is_a?(XLock::PG::Handle)
      end

      def files
        { "path" => object.path, "semaphore" => nil, "bell" => object.bell, "bell_word" => object.bell_word }
      end

      def pg_opened
        { "namespace" => object.namespace, "label" => object.label, "key" => object.key,
          "system_identifier" => object.system_identifier, "database" => object.database,
          "backend_pid" => object.backend_pid, "path" => nil, "semaphore" => nil, "bell" => nil,
          "bell_word" => nil, "sharing" => "database" }
      end
    end

    # A lock (kind "lock").
    class LockHandle < Handle
      def acquire(timeout)
        object.lock(timeout: timeout)
        {}
      end

      def try_acquire
        return {} if object.try_lock

        raise XLock::WouldBlock, "lock #{object.name.inspect} (#{object.path}) is held elsewhere"
      end

      def release
        object.unlock
      end

      def locked?
        object.locked?
      end

      def verifiable?
        pg?
      end
    end

    # A counting semaphore (kind "semaphore"): the slot of the permit taken.
    class SemaphoreHandle < Handle
      def try_acquire
        slot = object.try_acquire or
          raise XLock::WouldBlock, "semaphore #{object.name.inspect} (#{object.path}): every permit is held"
        { "slot" => slot }
      end
    end

    # A raw POSIX semaphore (kind "posix_semaphore"): no slot, no files, no bell.
    class PosixSemaphoreHandle < Handle
      def acquire(timeout)
        object.acquire(timeout: timeout)
        { "slot" => nil }
      end

      def try_acquire
        return { "slot" => nil } if object.try_acquire

        raise XLock::WouldBlock, "semaphore #{object.name.inspect} (#{object.semaphore_name}) is at 0"
      end

      private

      def files
        { "path" => nil, "semaphore" => object.semaphore_name, "bell" => nil, "bell_word" => nil }
      end
    end
  end
end
