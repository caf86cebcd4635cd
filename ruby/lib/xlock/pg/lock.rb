# frozen_string_literal: true

require "monitor"
require "xlock/pg/handle"

module XLock
  module PG
    # A lock in a PostgreSQL namespace: a session-level advisory lock on its key [XL-PG-4], with the API of
    # XLock::Lock (XLock::Lock.new returns one for a postgresql:// namespace).
    class Lock < Handle
      CHECK = Session::CHECK

      attr_reader :key

      def initialize(name, namespace:, shared: false, reentrant: false, **_ignored)
        super()
        @shared = shared ? true : false
        @reentrant = reentrant ? true : false
        @holder = nil
        @count = 0
        suffix = @shared ? "_shared" : ""
        @try_sql = "SELECT pg_try_advisory_lock#{suffix}($1::int8), #{CHECK}"
        @lock_sql = "SELECT pg_advisory_lock#{suffix}($1::int8), #{CHECK}"
        @unlock_sql = "SELECT pg_advisory_unlock#{suffix}($1::int8)"
        setup(name, namespace)
        @key = Keys.key("l", @ns.label, @name)
      end

      def shared? = @shared
      def reentrant? = @reentrant

      # Acquires, waiting at most +timeout+ seconds (nil: in the server's queue as long as it takes);
      # returns self. Raises XLock::Timeout, XLock::AlreadyHeld, XLock::UnsupportedBackend,
      # XLock::BackendError.
      def lock(timeout: nil)
        acquire(false, deadline(timeout))
        self
      end

      # One attempt: true if acquired, false if held elsewhere.
      def try_lock
        acquire(true, nil)
      rescue WouldBlock
        false
      end

      # Releases. Raises XLock::NotHeld, XLock::Lost (the session ended or lost it; then not held [XL-PG-10]).
      def unlock
        @monitor.synchronize do
          forked_reset
          if @count.zero? || (@reentrant && @holder != Thread.current)
            raise NotHeld, "#{what}: this object does not hold the lock; nothing released"
          end

          @count -= 1
          return self if @count.positive?

          @holder = nil
          session = @session
          gone = "the session ended, so the server released the lock"
          raise session_lost(session, gone) if session.nil? || session.gone?

          begin
            released = session.one(@unlock_sql, [@key], "releasing").first.first == "t"
          rescue SessionGone
            raise session_lost(session, gone)
          end
          unless released
            raise session.lost("the session no longer held the key " \
                               "(pg_advisory_unlock_all or DISCARD ALL ran on it)")
          end
        end
        self
      end

      def synchronize(timeout: nil)
        lock(timeout: timeout)
        begin
          yield self
        ensure
          unlock if owned? || (!@reentrant && locked?)
        end
      end

      # true if this object holds the lock; with verify: true, asked of the server (XLock::Lost if lost).
      def locked?(verify: false)
        @monitor.synchronize do
          forked_reset
          return false if @count.zero?
          return true unless verify

          hi = (@key & 0xFFFF_FFFF_FFFF_FFFF) >> 32
          lo = @key & 0xFFFF_FFFF
          rows = begin
            @session.one("SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() " \
                         "AND locktype = 'advisory' AND objsubid = 1 " \
                         "AND classid = $1::int8::oid AND objid = $2::int8::oid AND granted",
                         [hi, lo], "verifying the lock")
          rescue SessionGone
            [["0"]]
          end
          return true if rows.first.first.to_i.positive?

          @count = 0
          @holder = nil
          raise @session.lost("the session no longer holds the key")
        end
      end

      def owned?
        @count.positive? && @holder == Thread.current
      end

      def close
        @monitor.synchronize do
          return if @closed

          @closed = true
          if @count.positive? && @session && !@session.gone?
            begin
              @session.one(@unlock_sql, [@key], "releasing at close") # synchronous, unlike the session's end
            rescue XLock::Error, SessionGone
              nil
            end
          end
          @count = 0
          @session&.close unless forked?
          @session = nil
        end
        nil
      end

      def inspect
        held = @count.positive? ? " held" : ""
        "#<#{self.class} #{name.inspect} #{namespace} #{@shared ? 'shared' : 'exclusive'}#{held}>"
      end

      private

      def what
        "#{@shared ? 'shared' : 'exclusive'} lock '#{@name}' (label '#{@ns.label}') in #{@ns.shown}"
      end

      def forked_reset
        return unless forked?

        @count = 0 # the child holds nothing [XL-HOLD-7]
        @holder = nil
        @session = nil
      end

      def session_lost(session, why)
        session&.close
        @session = nil if @session.equal?(session)
        Lost.new("#{what}: #{why}; the lock is not held (another client may hold it now) [XL-PG-10]")
      end

      def acquire(try_only, deadline)
        @monitor.synchronize do
          forked_reset
          if @count.positive? && @holder == Thread.current
            raise AlreadyHeld, "#{what}: this thread already holds this object [XL-HOLD-3]" unless @reentrant

            @count += 1
            return true
          end
          raise WouldBlock, "#{what}: another thread holds this object" if @count.positive?

          session = live_session
          server_acquire(session, try_only, deadline)
          @count = 1
          @holder = Thread.current
          true
        end
      end

      # One statement: try (try_only, timeout 0, deadline passed) or wait with lock_timeout [XL-PG-7].
      def server_acquire(session, try_only, deadline)
        left = deadline && deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        if try_only || (left && left <= 0)
          granted, token, pid = session.one(@try_sql, [@key], "trying").first
          check(session, granted == "t", token, pid)
          return if granted == "t"
          raise WouldBlock, "#{what}: held by another session" if try_only

          raise XLock::Timeout, "#{what}: not acquired within the timeout (one try) [XL-PG-7]"
        end
        session.lock_timeout_ms = left ? [(left * 1000).ceil, 1].max : 0
        _, token, pid = session.wait(@lock_sql, [@key], "acquiring") do |_rows|
          session.one(@unlock_sql, [@key], "giving back a lock granted during the interruption") # [XL-PG-8]
        end.first
        check(session, true, token, pid)
      rescue SessionGone => e
        session.close
        @session = nil
        raise BackendError, "#{e.message}; nothing is held, try again"
      end

      def check(session, granted, token, pid)
        session.check_token(token, pid)
      rescue UnsupportedBackend
        session.one(@unlock_sql, [@key], "undoing a lock taken through a pooler") if granted # [XL-PG-9]
        session.close
        @session = nil
        raise
      end
    end
  end
end
