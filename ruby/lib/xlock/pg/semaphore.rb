# frozen_string_literal: true

require "monitor"
require "xlock/pg/handle"
require "xlock/pg/capacity"
require "xlock/pg/slots"
require "xlock/pg/permit_wait"

module XLock
  module PG
    # A counting semaphore in a PostgreSQL namespace [XL-PG-13], with the API of XLock::Semaphore: slot
    # keys tried in one statement (XLock::PG::Slots), LISTEN/NOTIFY for the bell with the safety polls of
    # XL-WAIT-7 (XLock::PG::PermitWait), and a shared capacity marker (XLock::PG::Capacity).
    class Semaphore < Handle
      RELEASE = "SELECT pg_advisory_unlock($1::int8), pg_notify($2, '')"

      include Slots
      include PermitWait

      attr_reader :capacity

      def initialize(name, capacity, namespace:, **_ignored)
        super()
        Names.checked(name) # a bad name is named before a bad capacity
        @capacity = checked_capacity(capacity)
        @mine = []
        setup(name, namespace, listen: true)
        @slot_keys = Array.new(capacity) { |i| Keys.key("s", @ns.label, @name, i) }
        @joined = true
        join(@session)
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
          next if server_release(RELEASE, [@slot_keys[slot], @listen])

          raise lost(nil, "the session no longer held slot #{slot}")
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

      def inspect
        "#<#{self.class} #{name.inspect} #{namespace} capacity=#{@capacity} held=#{@mine.size}>"
      end

      private

      def checked_capacity(capacity)
        return capacity if capacity.is_a?(Integer) && capacity.between?(1, 1000)

        raise InvalidArgument, "capacity must be an Integer from 1 to 1000, not #{capacity.inspect}"
      end

      def what
        "semaphore '#{@name}' (capacity #{@capacity}, label '#{@ns.label}') in #{@ns.shown}"
      end

      def thing
        "permit"
      end

      def holding?
        @mine.any?
      end

      def forget_holds
        @mine.clear
      end

      # The capacity marker too, held while open: an opener after close returns must not meet it [XL-PG-13].
      def give_back_at_close?
        true
      end

      def give_back
        if holding?
          @session.one("SELECT pg_advisory_unlock_all(), pg_notify($1, '')", [@listen], "closing")
        else
          @session.one("SELECT pg_advisory_unlock_all()", [], "closing")
        end
      end

      def new_session
        session = super
        join(session) if @joined
        session
      end

      # The shared capacity marker, then a look for live participants of another capacity [XL-PG-13]; the
      # session ends on any failure.
      def join(session)
        other = Capacity.join(session, @ns.label, @name, @capacity)
        return unless other

        raise CapacityMismatch, "#{what}: a live participant uses capacity #{other}; " \
                                "every open object of one name must agree on the capacity [XL-PG-13]"
      rescue StandardError => e
        session.close
        raise e.is_a?(SessionGone) ? BackendError.new(e.message) : e
      end
    end
  end
end
