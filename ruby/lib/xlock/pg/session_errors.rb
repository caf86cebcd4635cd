# frozen_string_literal: true

module XLock
  module PG
    # What a PG::Error of a session means [XL-PG-7, XL-PG-10, XL-PG-15]: the session ended (SessionGone),
    # lock_timeout ran out (XLock::Timeout) or anything else (XLock::BackendError), the message naming the
    # server and never the password [XL-PG-14]. Mixed into XLock::PG::Session.
    module SessionErrors
      private

      def error(exc, doing)
        state = sqlstate(exc)
        text = failure_text(exc, doing, state)
        return SessionGone.new(text) if ended?(exc, state)
        return XLock::Timeout.new("#{@what}: not acquired within the timeout [XL-PG-7]") if state == "55P03"

        return UnsupportedBackend.new("#{text}; #{Session::POOLER}") if state == "26000" # another backend

        text += "; the server's lock table is full: raise max_locks_per_transaction" if state == "53200"
        BackendError.new(text)
      end

      def failure_text(exc, doing, state)
        text = "#{@what}: #{doing} on the #{@ns.server} failed: #{@ns.scrub(one_line(exc.message))}"
        state ? "#{text} (SQLSTATE #{state})" : text
      end

      def sqlstate(exc)
        exc.respond_to?(:result) && exc.result ? exc.result.error_field(::PG::PG_DIAG_SQLSTATE) : nil
      end

      def ended?(exc, state)
        exc.is_a?(::PG::ConnectionBad) || exc.is_a?(::PG::UnableToSend) ||
          state.to_s.start_with?("57P", "08") || gone?
      end

      def connect_error(exc)
        why = @ns.scrub(one_line(exc.message))
        BackendError.new("#{@what}: cannot connect to the #{@ns.server}: #{why}; " \
                         "check the URI, the server and the credentials (~/.pgpass) [XL-PG-15]")
      end

      def one_line(text)
        text.to_s.lines.map(&:strip).reject(&:empty?).join(" ")
      end
    end
  end
end
