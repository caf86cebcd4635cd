# frozen_string_literal: true

require "securerandom"
require "socket"

module XLock
  module PG
    # The session ended (terminated, restarted, connection lost) [XL-PG-10]; callers turn it into Lost
    # (something was held) or BackendError.
    class SessionGone < StandardError; end

    # A connection of its own per object [XL-PG-5] with the setup of XL-PG-6, the token of XL-PG-9 and the
    # server-side TCP bound of XL-PG-11. Waits that the program interrupts (Thread#raise, Timeout.timeout,
    # Thread#kill, SIGINT's Interrupt) cancel the server-side statement, drain it and give back a grant
    # that raced the cancel: the pg gem abandons the statement by itself [XL-PG-8].
    class Session
      POOLER = "transaction or statement pooling detected; " \
               "use a direct or session-pooled connection [XL-PG-9]"
      MIN_SERVER = 140_000
      CANCEL_REPEAT_S = 0.05
      CHECK = "current_setting('xlock.session_token', true), pg_backend_pid()"

      attr_reader :backend_pid, :database, :system_identifier, :pid

      def initialize(namespace, what, listen: nil)
        @ns = namespace
        @what = what
        @listen = listen
        @pid = Process.pid
        @token = SecureRandom.hex(16)
        @lock_timeout_ms = 0
        @conn = connect
        begin
          setup
        rescue Exception # rubocop:disable Lint/RescueException
          close
          raise
        end
        PG.register(self)
      end

      # Runs a short statement; its rows as arrays of strings.
      def one(sql, params, doing)
        raise SessionGone, "no session" if gone?

        @conn.exec_params(sql, params).values
      rescue ::PG::Error => e
        raise error(e, doing)
      end

      # Runs +sql+ (a waiting statement) so that an interruption cancels it server-side; +undo+ is called
      # with the rows if the statement completed after all (a grant that raced the cancel) [XL-PG-8].
      def wait(sql, params, doing, &undo)
        raise SessionGone, "no session" if gone?

        finished = false
        begin
          @conn.send_query_params(sql, params)
          rows = @conn.get_last_result.values
          finished = true
          rows
        rescue ::PG::Error => e
          finished = true
          raise error(e, doing)
        ensure
          abandon(undo) unless finished
        end
      end

      # UnsupportedBackend unless +token+ and +pid+ are this session's [XL-PG-9].
      def check_token(token, pid)
        return if token == @token && pid.to_i == @backend_pid

        raise UnsupportedBackend, "#{@what}: #{POOLER} (#{@ns.server})"
      end

      def lock_timeout_ms=(millis)
        return if millis == @lock_timeout_ms

        one("SELECT set_config('lock_timeout', $1, false)", ["#{millis}ms"], "setting lock_timeout")
        @lock_timeout_ms = millis
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

      def lost(why)
        Lost.new("#{@what}: #{why}; the lock is not held (another client may hold it now) [XL-PG-10]")
      end

      private

      def connect
        ::PG::Connection.new(@ns.connect_options)
      rescue ::PG::Error => e
        why = @ns.scrub(one_line(e.message))
        raise BackendError, "#{@what}: cannot connect to the #{@ns.server}: #{why}; " \
                            "check the URI, the server and the credentials (~/.pgpass) [XL-PG-15]"
      end

      def setup
        recovery, @backend_pid, version, @database, @system_identifier = one(
          "SELECT pg_is_in_recovery(), pg_backend_pid(), current_setting('server_version_num')::int, " \
          "current_database(), (SELECT system_identifier FROM pg_control_system())",
          [], "reading the server's state"
        ).first
        @backend_pid = @backend_pid.to_i
        if version.to_i < MIN_SERVER
          raise UnsupportedBackend,
                "#{@what}: the #{@ns.server} runs PostgreSQL #{version}; xlock needs 14 or later [XL-PG-6]"
        end
        if recovery == "t"
          raise UnsupportedBackend, "#{@what}: the #{@ns.server} is a standby in recovery; its advisory " \
                                    "locks do not exclude with the primary's: point the namespace at the " \
                                    "primary [XL-PG-6]"
        end
        settings = [["application_name", application_name], %w[statement_timeout 0], %w[lock_timeout 0],
                    %w[idle_session_timeout 0], %w[idle_in_transaction_session_timeout 0],
                    %w[client_connection_check_interval 1000], %w[tcp_keepalives_idle 5],
                    %w[tcp_keepalives_interval 2], %w[tcp_keepalives_count 3],
                    ["tcp_user_timeout", @ns.release_ms.to_s], ["xlock.session_token", @token]]
        settings << %w[transaction_timeout 0] if version.to_i >= 170_000
        calls = settings.each_index.map { |i| "set_config($#{(2 * i) + 1}, $#{(2 * i) + 2}, false)" }
        sql = "SELECT #{calls.join(', ')}"
        one(sql, settings.flatten, "setting the session up")
        one(%(LISTEN "#{@listen}"), [], "listening for releases") if @listen
      rescue SessionGone => e
        raise BackendError, e.message
      end

      def application_name
        "xlock/1 rb pid=#{Process.pid} host=#{Socket.gethostname}".byteslice(0, 63).scrub("")
      end

      # Cancel (repeated every 50 ms until the statement returns), drain, undo a grant [XL-PG-8]. Runs with
      # interrupts deferred, so a second Thread#raise cannot leave the statement half-abandoned.
      def abandon(undo)
        Thread.handle_interrupt(Object => :never) do
          loop do
            @conn.cancel
            break if @conn.block(CANCEL_REPEAT_S)
          end
          rows = begin
            @conn.get_last_result&.values
          rescue ::PG::Error
            nil # cancelled: nothing was granted
          end
          undo&.call(rows) if rows
        rescue ::PG::Error, SessionGone, XLock::Error
          close # ending the session gives back whatever it held
        end
      end

      def error(exc, doing)
        state = exc.respond_to?(:result) && exc.result ? exc.result.error_field(::PG::PG_DIAG_SQLSTATE) : nil
        text = "#{@what}: #{doing} on the #{@ns.server} failed: #{@ns.scrub(one_line(exc.message))}"
        text += " (SQLSTATE #{state})" if state
        return SessionGone.new(text) if exc.is_a?(::PG::ConnectionBad) || exc.is_a?(::PG::UnableToSend) ||
                                        state.to_s.start_with?("57P", "08") || gone?
        return XLock::Timeout.new("#{@what}: not acquired within the timeout [XL-PG-7]") if state == "55P03"

        text += "; the server's lock table is full: raise max_locks_per_transaction" if state == "53200"
        BackendError.new(text)
      end

      def one_line(text)
        text.to_s.lines.map(&:strip).reject(&:empty?).join(" ")
      end
    end
  end
end
