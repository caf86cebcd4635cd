# frozen_string_literal: true

require "monitor"
require "xlock/pg/handle"

module XLock
  module PG
    # A counting semaphore in a PostgreSQL namespace [XL-PG-13], with the API of XLock::Semaphore: slot
    # keys tried in one statement, LISTEN/NOTIFY for the bell with the safety polls of XL-WAIT-7, and a
    # shared capacity marker that live participants of other capacities see.
    class Semaphore < Handle
      TRY = "WITH RECURSIVE t(n, got) AS (SELECT 1, pg_try_advisory_lock(($1::int8[])[1]) UNION ALL " \
            "SELECT n + 1, pg_try_advisory_lock(($1::int8[])[n + 1]) FROM t WHERE NOT got AND " \
            "n < cardinality($1::int8[])) SELECT (SELECT n FROM t WHERE got), #{Session::CHECK}".freeze
      KEY_OF = "((classid::int8 << 32) | objid::int8)"
      MINE = "SELECT count(*) FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'advisory' AND " \
             "objsubid = 1 AND granted AND mode = 'ExclusiveLock' AND #{KEY_OF} = ANY($1::int8[])".freeze
      POLLS_MS = [1, 3, 7, 15, 31].freeze

      attr_reader :capacity

      def initialize(name, capacity, namespace:, **_ignored)
        super()
        name = Names.checked(name)
        unless capacity.is_a?(Integer) && capacity.between?(1, 1000)
          raise InvalidArgument, "capacity must be an Integer from 1 to 1000, not #{capacity.inspect}"
        end

        @capacity = capacity
        @mine = []
        setup(name, namespace, listen: true)
        @slot_keys = Array.new(capacity) { |i| Keys.key("s", @ns.label, @name, i) }
        @marker = Keys.key("c", @ns.label, @name, capacity)
        join(@session)
      rescue StandardError
        @session&.close
        raise
      end

      def key
        @slot_keys[0]
      end

      # Takes a permit, waiting at most +timeout+ seconds (nil: as long as it takes); returns the slot.
      def acquire(timeout: nil)
        take(false, deadline(timeout), timeout)
      end

      # One try: the slot, or nil when every permit is held.
      def try_acquire
        take(true, nil, 0)
      rescue WouldBlock
        nil
      end

      # Gives back the most recent permit and notifies the waiters. XLock::NotHeld, XLock::Lost.
      def release
        @monitor.synchronize do
          forked_reset
          raise NotHeld, "#{what}: this object holds no permit; nothing released" if @mine.empty?

          slot = @mine.pop
          session = @session
          if session.nil? || session.gone?
            @mine.clear
            raise lost(session, "the session ended, so the server released the permit")
          end
          begin
            released = session.one("SELECT pg_advisory_unlock($1::int8), pg_notify($2, '')",
                                   [@slot_keys[slot], @listen], "releasing").first.first == "t"
          rescue SessionGone
            @mine.clear
            raise lost(session, "the session ended, so the server released the permit")
          end
          raise lost(nil, "the session no longer held slot #{slot}") unless released
        end
        nil
      end

      def synchronize(timeout: nil)
        slot = acquire(timeout: timeout)
        begin
          yield slot
        ensure
          release
        end
      end

      def held
        @monitor.synchronize do
          forked_reset
          @mine.size
        end
      end

      def close
        @monitor.synchronize do
          return if @closed

          @closed = true
          if @mine.any? && @session && !@session.gone?
            begin
              @session.one("SELECT pg_advisory_unlock_all(), pg_notify($1, '')", [@listen], "closing")
            rescue XLock::Error, SessionGone
              nil
            end
          end
          @mine.clear
          @session&.close unless forked?
          @session = nil
        end
        nil
      end

      def inspect
        "#<#{self.class} #{name.inspect} #{namespace} capacity=#{@capacity} held=#{@mine.size}>"
      end

      private

      def what
        "semaphore '#{@name}' (capacity #{@capacity}, label '#{@ns.label}') in #{@ns.shown}"
      end

      def new_session
        session = super
        join(session) if @marker
        session
      end

      def forked_reset
        return unless forked?

        @mine.clear
        @session = nil
      end

      def lost(session, why)
        session&.close
        @session = nil if session && @session.equal?(session)
        Lost.new("#{what}: #{why}; the permit is not held (another client may hold it now) [XL-PG-10]")
      end

      # The shared capacity marker, then a look for live participants of another capacity [XL-PG-13].
      def join(session)
        session.one("SELECT pg_advisory_lock_shared($1::int8)", [@marker], "taking the capacity marker")
        others = (1..1000).reject { |m| m == @capacity }
        keys = others.map { |m| Keys.key("c", @ns.label, @name, m) }
        sql = "SELECT min(m.n) FROM pg_locks l JOIN unnest($1::int8[]) WITH ORDINALITY m(k, n) " \
              "ON m.k = ((l.classid::int8 << 32) | l.objid::int8) " \
              "WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted"
        found = session.one(sql, [array(keys)], "checking the capacity").first.first
        return unless found

        session.close
        raise CapacityMismatch, "#{what}: a live participant uses capacity #{others[found.to_i - 1]}; " \
                                "every open object of one name must agree on the capacity [XL-PG-13]"
      rescue SessionGone => e
        raise BackendError, e.message
      end

      def array(keys)
        "{#{keys.join(',')}}"
      end

      def take(try_only, deadline, timeout)
        @monitor.synchronize do
          forked_reset
          start = Process.clock_gettime(Process::CLOCK_MONOTONIC)
          slot = try_slots
          return slot if slot
          raise WouldBlock, "#{what}: every permit is held" if try_only

          loop do # XL-WAIT-12 with LISTEN in place of the bell word [XL-PG-13]
            now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
            raise XLock::Timeout, "#{what}: no permit within #{timeout} s" if deadline && now >= deadline

            wake = next_poll(start, now)
            wake = deadline if deadline && deadline < wake
            begin
              live_session.wait_for_notify([wake - now, 0].max)
            rescue SessionGone
              @session = nil # the next try opens a new session
            end
            slot = try_slots
            return slot if slot
          end
        end
      end

      def next_poll(start, now)
        POLLS_MS.each { |ms| return start + ms / 1000.0 if start + ms / 1000.0 > now }
        base = start + 0.031
        base + (((now - base) / 0.016).floor + 1) * 0.016
      end

      def try_slots
        free = (0...@capacity).reject { |i| @mine.include?(i) }
        return nil if free.empty?

        session = live_session
        n, token, pid = session.one(TRY, [array(free.map { |i| @slot_keys[i] })], "trying the slots").first
        begin
          session.check_token(token, pid)
        rescue UnsupportedBackend
          session.close # ending the session gives back what it took [XL-PG-9]
          @session = nil
          raise
        end
        return nil if n.nil?

        slot = free[n.to_i - 1]
        @mine << slot
        keys = array(@mine.map { |i| @slot_keys[i] })
        count = session.one(MINE, [keys], "checking the slots").first.first.to_i
        return slot if count == @mine.size

        @mine.pop
        session.close
        @session = nil
        raise BackendError,
              "#{what}: the session holds #{count} of this object's slots, " \
              "expected #{@mine.size + 1} [XL-PG-13]"
      rescue SessionGone => e
        @session&.close
        @session = nil
        raise BackendError, "#{e.message}; nothing is held, try again"
      end
    end
  end
end
