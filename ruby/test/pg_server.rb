# frozen_string_literal: true

# A throwaway PostgreSQL server for the PostgreSQL tests, started once per test process through the
# conformance suite's fixture (conformance/xlock_conformance/pgserver.py: initdb into a temporary
# directory, as the postgres user when root; never a system service) and stopped at exit.
module PgServer
  SCRIPT = <<~PY
    import sys
    sys.path.insert(0, sys.argv[1])
    from xlock_conformance.pgserver import PgServer, PgUnavailable
    try:
        s = PgServer(); s.start(); s.setup_roles()
    except PgUnavailable as exc:
        print("UNAVAILABLE " + str(exc).replace("\\n", " "), flush=True); sys.exit(0)
    print(s.url(), flush=True)
    sys.stdin.read()
    s.stop()
  PY

  def self.url
    @url ||= start
  end

  # Starts the server; its URL, or "UNAVAILABLE <why>".
  def self.start
    conformance = File.expand_path("../../conformance", __dir__)
    @io = IO.popen(["python3", "-c", SCRIPT, conformance], "r+")
    at_exit { stop }
    @io.gets.to_s.strip
  end

  def self.stop
    @io.close_write
    @io.read
    @io.close
  end

  # Runs one statement as the superuser through psql-free libpq (the pg gem); the rows.
  def self.sql(statement)
    require "pg"
    conn = ::PG.connect(url)
    conn.exec(statement).values
  ensure
    conn&.close
  end

  # The server's clock now, in seconds since the epoch (text), for comparing with pg_stat_activity.
  def self.now
    sql("SELECT extract(epoch FROM clock_timestamp())").first.first
  end

  # Whether the session +backend_pid+ is idle after a try of a semaphore's slots (every implementation's
  # one statement beginning WITH RECURSIVE) that began after +since+ (PgServer.now).
  def self.idle_after_try?(backend_pid, since)
    !sql("SELECT 1 FROM pg_stat_activity WHERE pid = #{Integer(backend_pid)} AND state = 'idle' AND " \
         "query LIKE 'WITH RECURSIVE%' AND query_start > to_timestamp(#{Float(since)})").empty?
  end

  def self.locks_of(backend_pid)
    sql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = #{Integer(backend_pid)}")
      .first.first.to_i
  end
end
