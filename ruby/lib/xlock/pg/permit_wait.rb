# frozen_string_literal: true

module XLock
  module PG
    # Waiting for a permit of a PostgreSQL counting semaphore: XL-WAIT-12 with LISTEN/NOTIFY in place of
    # the bell word and the safety polls of XL-WAIT-7 [XL-PG-13]. Mixed into XLock::PG::Semaphore.
    module PermitWait
      POLLS_MS = [1, 3, 7, 15, 31].freeze

      private

      def take(try_only, deadline, timeout)
        @monitor.synchronize do
          forked_reset
          start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
          slot = try_slots
          return slot if slot
          raise WouldBlock, "#{what}: every permit is held" if try_only

          wait_for_slot(start, deadline, timeout)
        end
      end

      # Until a slot is taken or the deadline passes.
      def wait_for_slot(start, deadline, timeout)
        loop do
          now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
          raise XLock::Timeout, "#{what}: no permit within #{timeout} s" if deadline && now >= deadline

          listen([next_poll(start, now), deadline].compact.min - now)
          slot = try_slots
          return slot if slot
        end
      end

      def listen(seconds)
        live_session.wait_for_notify([seconds, 0].max)
      rescue SessionGone
        @session = nil # the next try opens a new session
      end

      # The safety polls of XL-WAIT-7: 1, 3, 7, 15 and 31 ms after the start, then every 16 ms.
      def next_poll(start, now)
        POLLS_MS.each { |ms| return start + (ms / 1000.0) if start + (ms / 1000.0) > now }
        base = start + 0.031
        base + ((((now - base) / 0.016).floor + 1) * 0.016)
      end
    end
  end
end
