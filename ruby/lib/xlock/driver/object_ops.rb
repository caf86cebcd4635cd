# frozen_string_literal: true

module XLock
  class Driver
    # The ops on locks and semaphores (conformance/PROTOCOL.md): open, acquire, try_acquire, release,
    # locked, close and cycle.
    module ObjectOps
      OPENERS = { "lock" => :open_lock, "semaphore" => :open_semaphore,
                  "posix_semaphore" => :open_posix_semaphore }.freeze

      private

      def op_open(request)
        kind = string_arg(request, "kind")
        name = name_arg(request)
        options = { namespace: optional(request, "namespace", String),
                    allow_unsupported_fs: flag(request, "allow_unsupported_fs") }
        opener = OPENERS.fetch(kind) { raise BadRequest, "unknown kind #{kind.inspect}" }
        handle = __send__(opener, request, name, options)
        id = "h#{@next_handle += 1}"
        @handles[id] = handle
        { "handle" => id }.merge(handle.opened)
      end

      def open_lock(request, name, options)
        shared = flag(request, "shared")
        reentrant = flag(request, "reentrant")
        LockHandle.new(XLock::Lock.new(name, shared: shared, reentrant: reentrant, **options))
      end

      def open_semaphore(request, name, options)
        SemaphoreHandle.new(XLock::Semaphore.new(name, int_arg(request, "capacity"), **options))
      end

      def open_posix_semaphore(request, name, options)
        value = optional(request, "value", Integer) || 1
        PosixSemaphoreHandle.new(XLock::PosixSemaphore.new(name, value: value, **options))
      end

      def op_acquire(request)
        handle = handle_arg(request)
        acquired(handle.acquire(timeout_arg(request)))
      end

      def op_try_acquire(request)
        acquired(handle_arg(request).try_acquire)
      end

      def op_release(request)
        handle = handle_arg(request)
        now = clock
        handle.release
        { "mono_ns" => now }
      end

      def op_locked(request)
        handle = handle_arg(request)
        verify = handle.verifiable? && flag(request, "verify")
        { "locked" => verify ? handle.object.locked?(verify: true) : handle.locked? }
      end

      def op_close(request)
        handle = handle_arg(request)
        # Releases what the object holds, posting back a raw semaphore's permits [XL-PSEM-6].
        handle.object.close
        @handles.delete(request["handle"])
        {}
      end

      def op_cycle(request)
        handle = handle_arg(request)
        count = int_arg(request, "count")
        path = string_arg(request, "path")
        timeout = timeout_arg(request)
        count.times do |done|
          cycle_once(handle, path, timeout)
        rescue XLock::Error => e
          raise e.class, "#{e.message} (done: #{done})"
        end
        { "count" => count }
      end

      def cycle_once(handle, path, timeout)
        handle.acquire(timeout)
        increment(path)
        handle.release
      end

      def acquired(fields)
        fields.merge("mono_ns" => clock)
      end

      def clock
        Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
      end
    end
  end
end
