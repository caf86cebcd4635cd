# frozen_string_literal: true

require "socket"

module XLock
  module PG
    # Setting a new session up [XL-PG-6]: the server's state read and checked (PostgreSQL 14 or later, not
    # a standby), then the session's settings and the LISTEN of a semaphore. Mixed into XLock::PG::Session.
    module SessionSetup
      MIN_SERVER = 140_000
      STATE = "SELECT pg_is_in_recovery(), pg_backend_pid(), current_setting('server_version_num')::int, " \
              "current_database(), (SELECT system_identifier FROM pg_control_system())"

      private

      def setup
        recovery, version = read_state
        check_server(recovery, version)
        settings = session_settings(version)
        calls = settings.each_index.map { |i| "set_config($#{(2 * i) + 1}, $#{(2 * i) + 2}, false)" }
        one("SELECT #{calls.join(', ')}", settings.flatten, "setting the session up")
        one(%(LISTEN "#{@listen}"), [], "listening for releases") if @listen
      rescue SessionGone => e
        raise BackendError, e.message
      end

      # Whether the server is in recovery and its version number; notes its pid and identity.
      def read_state
        state = one(STATE, [], "reading the server's state").first
        recovery, pid, version, @database, @system_identifier = state
        @backend_pid = pid.to_i
        [recovery == "t", version.to_i]
      end

      def check_server(recovery, version)
        if version < MIN_SERVER
          raise UnsupportedBackend,
                "#{@what}: the #{@ns.server} runs PostgreSQL #{version}; xlock needs 14 or later [XL-PG-6]"
        end
        return unless recovery

        raise UnsupportedBackend, "#{@what}: the #{@ns.server} is a standby in recovery; its advisory " \
                                  "locks do not exclude with the primary's: point the namespace at the " \
                                  "primary [XL-PG-6]"
      end

      # The set_config pairs of XL-PG-6 and XL-PG-11, with the token of XL-PG-9.
      def session_settings(version)
        settings = [["application_name", application_name], %w[statement_timeout 0], %w[lock_timeout 0],
                    %w[idle_session_timeout 0], %w[idle_in_transaction_session_timeout 0],
                    %w[client_connection_check_interval 1000], %w[tcp_keepalives_idle 5],
                    %w[tcp_keepalives_interval 2], %w[tcp_keepalives_count 3],
                    ["tcp_user_timeout", @ns.release_ms.to_s], ["xlock.session_token", @token]]
        settings << %w[transaction_timeout 0] if version >= 170_000
        settings
      end

      def application_name
        "xlock/1 rb pid=#{Process.pid} host=#{Socket.gethostname}".byteslice(0, 63).scrub("")
      end
    end
  end
end
