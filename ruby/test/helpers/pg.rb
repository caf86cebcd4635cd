# frozen_string_literal: true

require_relative "../pg_server"
require "xlock/pg/dispatch" # until lib/xlock.rb requires it

module XLockTestHelper
  # PostgreSQL namespaces through the pg gem [spec §16], against the server pg_server.rb starts: objects of
  # that namespace, closed at teardown, instead of the file-system namespace of XLockTestHelper.
  module Pg
    NAME = "rb-pg-test"

    def setup
      @url = PgServer.url
      skip "no PostgreSQL server: #{@url}" if @url.start_with?("UNAVAILABLE")
      @objects = []
    end

    def teardown
      @objects&.each(&:close)
    end

    def open_lock(name = NAME, **options)
      XLock::Lock.new(name, namespace: @url, **options).tap { |o| @objects << o }
    end

    def pg_semaphore(name, capacity)
      XLock::Semaphore.new(name, capacity, namespace: @url).tap { |o| @objects << o }
    end

    # Waits until the session +backend_pid+ has exactly one entry in pg_locks (its queued wait).
    def until_queued(backend_pid)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 5
      until PgServer.locks_of(backend_pid) == 1 || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        sleep 0.005 # between polls of the condition
      end
      assert_equal 1, PgServer.locks_of(backend_pid)
    end

    # A thread running +sem+.acquire (untimed), returned once its wait has found no permit and waits.
    def waiting_acquire(sem)
      backend = sem.backend_pid
      since = PgServer.now
      Thread.new { sem.acquire }.tap { until_trying(backend, since) }
    end

    # Waits until the session +backend_pid+ has tried a semaphore's slots since +since+ (PgServer.now) and
    # gone idle: its wait found no permit and now waits for a NOTIFY or its next safety poll [XL-PG-13].
    def until_trying(backend_pid, since)
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 5
      until PgServer.idle_after_try?(backend_pid, since)
        flunk "session #{backend_pid} did not try the slots within 5 s" if
          Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        sleep 0.005 # between polls of the condition
      end
    end
  end
end
