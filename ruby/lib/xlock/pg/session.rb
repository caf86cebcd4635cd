# frozen_string_literal: true

require "securerandom"
require "xlock/pg/session_setup"
require "xlock/pg/session_errors"
require "xlock/pg/cancel"

module XLock
  module PG
    # The session ended (terminated, restarted, connection lost) [XL-PG-10]; callers turn it into Lost
    # (something was held) or BackendError.
    class SessionGone < StandardError; end

    # A statement that a session prepares at its first use: the server parses and plans it once per
    # session, and each later call is one round trip with no work beyond running it.
    Statement = Struct.new(:name, :sql)

    # A connection of its own per object [XL-PG-5] with the setup of XL-PG-6 (XLock::PG::SessionSetup), the
    # token of XL-PG-9 and the server-side TCP bound of XL-PG-11. Waits that the program interrupts are
    # cancelled server-side (XLock::PG::Cancel) [XL-PG-8].
    class Session
      include SessionSetup
      include SessionErrors
      include Cancel

      POOLER = "transaction or statement pooling detected; " \
               "use a direct or session-pooled connection [XL-PG-9]"
      CHECK = "current_setting('xlock.session_token', true), pg_backend_pid()"

      attr_reader :backend_pid, :database, :system_identifier, :pid

      def initialize(namespace, what, listen: nil)
        @ns = namespace
        @what = what
        @listen = listen
        @pid = Process.pid
        @token = SecureRandom.hex(16)
        @prepared = {}
        @conn = connect
        setup_or_close
        PG.register(self)
      end

      # Runs a short statement (SQL text, or a Statement); its rows as arrays of strings.
      def one(sql, params, doing)
        raise SessionGone, "no session" if gone?

        return @conn.exec_params(sql, params).values unless sql.is_a?(Statement)

        with_prepared(sql) { @conn.exec_prepared(sql.name, params).values }
      rescue ::PG::Error => e
        raise error(e, doing)
      end

      # Runs the Statement +stmt+ (a waiting statement) so that an interruption cancels it server-side;
      # +undo+ is called with the rows if the statement completed after all (a grant that raced the cancel)
      # [XL-PG-8].
      def wait(stmt, params, doing, &undo)
        raise SessionGone, "no session" if gone?

        with_prepared(stmt) do
          abandoned_unless_finished(undo) do
            @conn.send_query_prepared(stmt.name, params)
            @conn.get_last_result.values
          end
        end
      rescue ::PG::Error => e
        raise error(e, doing)
      end

      # UnsupportedBackend unless +token+ and +pid+ are this session's [XL-PG-9].
      def check_token(token, pid)
        return if token == @token && pid.to_i == @backend_pid

        raise UnsupportedBackend, "#{@what}: #{POOLER} (#{@ns.server})"
      end

      # Until a NOTIFY arrives or +seconds+ pass. Interruptions raise as they are (nothing is in flight).
      def wait_for_notify(seconds)
        raise SessionGone, "no session" if gone?

        @conn.wait_for_notify(seconds)
        nil while @conn.notifies
      rescue ::PG::Error => e
        raise error(e, "waiting for a release")
      end

      def gone?
        @conn.nil? || @pid != Process.pid || @conn.finished? || @conn.status != ::PG::CONNECTION_OK
      end

      # Ends the session: the server releases everything it held. In a forked child, nothing is sent.
      def close
        PG.unregister(self)
        conn = @conn
        @conn = nil
        conn&.finish if @pid == Process.pid && !conn&.finished?
      rescue ::PG::Error
        nil
      end

      # In a forked child: point the inherited socket at /dev/null and forget the session without a word
      # to the server [XL-PG-16]. The PG::Connection stays referenced (PG.abandoned) so that no finalizer
      # runs for it early.
      def abandon_in_child
        conn = @conn
        @conn = nil
        return unless conn

        PG.abandoned << conn
        File.open(File::NULL, "r+") { |null| conn.socket_io.reopen(null) }
      rescue StandardError
        nil
      end

      private

      # Prepares +stmt+ on the session unless it is, then yields. If the statement vanished from the
      # session (DISCARD ALL, DEALLOCATE: SQLSTATE 26000), it is prepared again once; a second loss is a
      # pooler's other backend (UnsupportedBackend, XLock::PG::SessionErrors).
      def with_prepared(stmt)
        retried = false
        begin
          @prepared[stmt.name] ||= @conn.prepare(stmt.name, stmt.sql) && true
          yield
        rescue ::PG::InvalidSqlStatementName
          raise if retried

          retried = true
          @prepared.delete(stmt.name)
          retry
        end
      end

      def connect
        ::PG::Connection.new(@ns.connect_options)
      rescue ::PG::Error => e
        raise connect_error(e)
      end

      def setup_or_close
        setup
      rescue Exception # rubocop:disable Lint/RescueException -- the connection is not left open, whatever ends setup
        close
        raise
      end
    end
  end
end
