# frozen_string_literal: true

module XLock
  module PG
    # The statements of a PostgreSQL lock on its server: try or wait for the advisory lock [XL-PG-4,
    # XL-PG-7], give back a grant that raced an interruption [XL-PG-8] or came through a pooler [XL-PG-9],
    # and ask whether the session still holds it. Mixed into XLock::PG::Lock.
    module LockStatements
      CHECK = Session::CHECK

      # The try, wait and unlock statements of a lock, prepared at their first use on a session [XL-PG-4].
      # The waiting one sets lock_timeout ($2: "<n>ms", or "0" for none) for its own transaction before it
      # waits (CASE evaluates WHEN first): a timed acquisition is one round trip, and the session's
      # lock_timeout stays 0 [XL-PG-6, XL-PG-7].
      def self.statements(suffix)
        [Statement.new("xlock_try#{suffix}", "SELECT pg_try_advisory_lock#{suffix}($1::int8), #{CHECK}"),
         Statement.new("xlock_lock#{suffix}",
                       "SELECT CASE WHEN set_config('lock_timeout', $2, true) IS NOT NULL THEN " \
                       "pg_advisory_lock#{suffix}($1::int8) END, #{CHECK}"),
         Statement.new("xlock_unlock#{suffix}", "SELECT pg_advisory_unlock#{suffix}($1::int8)")].freeze
      end

      STATEMENTS = { false => statements(""), true => statements("_shared") }.freeze
      HELD = "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND " \
             "objsubid = 1 AND classid = $1::int8::oid AND objid = $2::int8::oid AND granted"

      private

      # One statement: try (try_only, timeout 0, deadline passed) or wait with lock_timeout [XL-PG-7].
      def server_acquire(session, try_only, deadline)
        left = deadline && (deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC))
        if try_only || (left && left <= 0)
          server_try_once(session, try_only)
        else
          server_wait(session, left)
        end
      rescue SessionGone => e
        raise not_taken(session, e)
      end

      def server_try_once(session, try_only)
        return if server_try(session)
        raise WouldBlock, "#{what}: held by another session" if try_only

        raise XLock::Timeout, "#{what}: not acquired within the timeout (one try) [XL-PG-7]"
      end

      def server_try(session)
        granted, token, pid = session.one(@try_stmt, [@key], "trying").first
        check_lock_token(session, granted == "t", token, pid)
        granted == "t"
      end

      def server_wait(session, left)
        lock_timeout = left ? "#{[(left * 1000).ceil, 1].max}ms" : "0" # rounded up, never 0 if timed
        _, token, pid = session.wait(@lock_stmt, [@key, lock_timeout], "acquiring") do |_rows|
          session.one(@unlock_stmt, [@key], "giving back a lock granted during the interruption") # [XL-PG-8]
        end.first
        check_lock_token(session, true, token, pid)
      end

      def check_lock_token(session, granted, token, pid)
        check_token(session, token, pid) do
          session.one(@unlock_stmt, [@key], "undoing a lock taken through a pooler") if granted # [XL-PG-9]
        end
      end

      def server_holds?
        hi = (@key & 0xFFFF_FFFF_FFFF_FFFF) >> 32
        lo = @key & 0xFFFF_FFFF
        @session.one(HELD, [hi, lo], "verifying the lock").first.first.to_i.positive?
      rescue SessionGone
        false
      end
    end
  end
end
