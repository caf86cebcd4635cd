# frozen_string_literal: true

module XLock
  module PG
    # Which thread of this process holds a PostgreSQL lock object, and how many times: the process-local
    # rules of XL-HOLD-3 (one holder thread; a reentrant object counts its acquires).
    class Hold
      def initialize(reentrant)
        @reentrant = reentrant
        clear
      end

      def reentrant? = @reentrant

      def held?
        @count.positive?
      end

      def owned?
        held? && @holder == Thread.current
      end

      # true if this thread already holds the object and re-entered it (nothing to ask the server);
      # XLock::AlreadyHeld if it holds a non-reentrant one.
      def reenter(what)
        return false unless owned?
        raise AlreadyHeld, "#{what}: this thread already holds this object [XL-HOLD-3]" unless @reentrant

        @count += 1
        true
      end

      # The server granted the lock to this thread.
      def enter
        @count = 1
        @holder = Thread.current
      end

      # Counts a release: true when the last hold ends and the server's lock is to be released.
      # XLock::NotHeld if this object (or, reentrant, this thread) does not hold it.
      def leave(what)
        if @count.zero? || (@reentrant && @holder != Thread.current)
          raise NotHeld, "#{what}: this object does not hold the lock; nothing released"
        end

        @count -= 1
        return false if held?

        @holder = nil
        true
      end

      def clear
        @count = 0
        @holder = nil
      end
    end
  end
end
