# frozen_string_literal: true

require "monitor"
require "xlock/pg/handle"
require "xlock/pg/hold"
require "xlock/pg/lock_statements"

module XLock
  module PG
    # A lock in a PostgreSQL namespace: a session-level advisory lock on its key [XL-PG-4], with the API of
    # XLock::Lock (XLock::Lock.new returns one for a postgresql:// namespace).
    class Lock < Handle
      include LockStatements

      attr_reader :key

      def initialize(name, namespace:, shared: false, reentrant: false, **_ignored)
        super()
        @shared = shared ? true : false
        @hold = Hold.new(reentrant ? true : false)
        @try_stmt, @lock_stmt, @unlock_stmt = STATEMENTS.fetch(@shared)
        setup(name, namespace)
        @key = Keys.key("l", @ns.label, @name)
      end

      def shared? = @shared
      def reentrant? = @hold.reentrant?

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
          next unless @hold.leave(what)
          next if server_release(@unlock_stmt, [@key])

          why = "the session no longer held the key (pg_advisory_unlock_all or DISCARD ALL ran on it)"
          raise lost(nil, why)
        end
        self
      end

      def synchronize(timeout: nil)
        lock(timeout: timeout)
        begin
          yield self
        ensure
          unlock if owned? || (!reentrant? && locked?)
        end
      end

      # true if this object holds the lock; with verify: true, asked of the server (XLock::Lost if lost).
      def locked?(verify: false)
        @monitor.synchronize do
          forked_reset
          return false unless @hold.held?
          return true if !verify || server_holds?

          @hold.clear
          raise lost(nil, "the session no longer holds the key")
        end
      end

      def owned?
        @hold.owned?
      end

      def inspect
        held = @hold.held? ? " held" : ""
        "#<#{self.class} #{name.inspect} #{namespace} #{@shared ? 'shared' : 'exclusive'}#{held}>"
      end

      private

      def what
        "#{@shared ? 'shared' : 'exclusive'} lock '#{@name}' (label '#{@ns.label}') in #{@ns.shown}"
      end

      def thing
        "lock"
      end

      def holding?
        @hold.held?
      end

      def forget_holds
        @hold.clear
      end

      def give_back
        @session.one(@unlock_stmt, [@key], "releasing at close")
      end

      def acquire(try_only, deadline)
        @monitor.synchronize do
          forked_reset
          return true if @hold.reenter(what)
          raise WouldBlock, "#{what}: another thread holds this object" if @hold.held?

          server_acquire(live_session, try_only, deadline)
          @hold.enter
          true
        end
      end
    end
  end
end
