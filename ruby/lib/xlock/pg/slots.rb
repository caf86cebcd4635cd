# frozen_string_literal: true

module XLock
  module PG
    # Taking a permit of a PostgreSQL counting semaphore [XL-PG-13]: the free slots' keys tried in one
    # statement, then a check that the session holds exactly this object's slots (a mismatch ends the
    # session, which gives them all back). Mixed into XLock::PG::Semaphore.
    module Slots
      TRY = "WITH RECURSIVE t(n, got) AS (SELECT 1, pg_try_advisory_lock(($1::int8[])[1]) UNION ALL " \
            "SELECT n + 1, pg_try_advisory_lock(($1::int8[])[n + 1]) FROM t WHERE NOT got AND " \
            "n < cardinality($1::int8[])) SELECT (SELECT n FROM t WHERE got), #{Session::CHECK}".freeze
      KEY_OF = "((classid::int8 << 32) | objid::int8)"
      MINE = "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND " \
             "objsubid = 1 AND granted AND mode = 'ExclusiveLock' AND #{KEY_OF} = ANY($1::int8[])".freeze

      private

      # A free slot taken, or nil.
      def try_slots
        free = (0...@capacity).reject { |i| @mine.include?(i) }
        return nil if free.empty?

        session = live_session
        slot = try_free(session, free)
        confirm(session, slot) if slot
        slot
      rescue SessionGone => e
        raise not_taken(@session, e)
      end

      def try_free(session, free)
        n, token, pid = session.one(TRY, [keys_of(free)], "trying the slots").first
        check_token(session, token, pid) # ending the session gives back what it took [XL-PG-9]
        n && free[n.to_i - 1]
      end

      def confirm(session, slot)
        @mine << slot
        count = session.one(MINE, [keys_of(@mine)], "checking the slots").first.first.to_i
        return if count == @mine.size

        @mine.pop
        session.close
        @session = nil
        raise BackendError, "#{what}: the session holds #{count} of this object's slots, " \
                            "expected #{@mine.size + 1} [XL-PG-13]"
      end

      def keys_of(slots)
        Keys.array(slots.map { |i| @slot_keys[i] })
      end
    end
  end
end
