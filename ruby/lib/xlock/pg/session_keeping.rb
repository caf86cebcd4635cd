# frozen_string_literal: true

module XLock
  module PG
    # How a PostgreSQL lock or semaphore keeps its session: a new one after a loss or in a forked child,
    # ended at close, and its end turned into XLock::Lost (something was held) or XLock::BackendError
    # [XL-PG-10, XL-PG-16]. The including class says what it holds: #holding?, #forget_holds, #give_back,
    # and #give_back_at_close? (what the server must release before close returns).
    module SessionKeeping
      # Gives back what this object holds and ends its session; a forked child sends nothing [XL-PG-16].
      def close
        @monitor.synchronize do
          return if @closed

          @closed = true
          give_back_quietly if give_back_at_close? && session_live?
          forget_holds
          @session&.close unless forked?
          @session = nil
        end
        nil
      end

      private

      def new_session
        Session.new(@ns, what, listen: @listen)
      end

      # The session, a new one after a loss or in a forked child.
      def live_session
        raise InvalidArgument, "#{what} is closed" if @closed
        return @session if session_live?

        @session&.close
        @session = nil
        @session = new_session
      end

      def session_live?
        @session && !@session.gone?
      end

      def forked?
        @session && @session.pid != Process.pid
      end

      # In a forked child the object holds nothing [XL-HOLD-7] and its session is the parent's.
      def forked_reset
        return unless forked?

        forget_holds
        @session = nil
      end

      # The server's release at the end of a session is asynchronous: what it holds goes first.
      def give_back_at_close?
        holding?
      end

      def give_back_quietly
        give_back # synchronous, unlike the end of the session
      rescue XLock::Error, SessionGone
        nil
      end

      # Runs the releasing statement +sql+: true if the server released. XLock::Lost if the session ended.
      def server_release(sql, params)
        session = @session
        raise session_ended(session) unless session_live?

        session.one(sql, params, "releasing").first.first == "t"
      rescue SessionGone
        raise session_ended(session)
      end

      def session_ended(session)
        forget_holds
        lost(session, "the session ended, so the server released the #{thing}")
      end

      def lost(session, why)
        session&.close
        @session = nil if @session.equal?(session)
        Lost.new("#{what}: #{why}; the #{thing} is not held (another client may hold it now) [XL-PG-10]")
      end

      # The session ended while taking: nothing is held.
      def not_taken(session, exc)
        session&.close
        @session = nil
        BackendError.new("#{exc.message}; nothing is held, try again")
      end

      # XLock::UnsupportedBackend through a pooler [XL-PG-9]: the block undoes a grant, then the session ends
      # (which gives back the rest).
      def check_token(session, token, pid)
        session.check_token(token, pid)
      rescue UnsupportedBackend
        yield if block_given?
        session.close
        @session = nil
        raise
      end
    end
  end
end
