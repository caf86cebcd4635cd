# frozen_string_literal: true

module XLock
  module PG
    # A waiting statement that the program interrupts (Thread#raise, Timeout.timeout, Thread#kill, SIGINT's
    # Interrupt) is cancelled server-side, drained, and a grant that raced the cancel is given back: the pg
    # gem abandons the statement by itself [XL-PG-8]. Mixed into XLock::PG::Session.
    module Cancel
      CANCEL_REPEAT_S = 0.05

      private

      # The block's value; if anything but its own PG::Error interrupts it, the statement is abandoned and
      # +undo+ called with the rows of a grant that raced the cancel.
      def abandoned_unless_finished(undo)
        finished = false
        yield.tap { finished = true }
      rescue ::PG::Error
        finished = true
        raise
      ensure
        abandon(undo) unless finished
      end

      # Cancel (repeated every 50 ms until the statement returns), drain, undo a grant. Runs with interrupts
      # deferred, so a second Thread#raise cannot leave the statement half-abandoned.
      def abandon(undo)
        Thread.handle_interrupt(Object => :never) do
          cancel
          rows = drain
          undo&.call(rows) if rows
        rescue ::PG::Error, SessionGone, XLock::Error
          close # ending the session gives back whatever it held
        end
      end

      def cancel
        loop do
          @conn.cancel
          break if @conn.block(CANCEL_REPEAT_S)
        end
      end

      def drain
        @conn.get_last_result&.values
      rescue ::PG::Error
        nil # cancelled: nothing was granted
      end
    end
  end
end
