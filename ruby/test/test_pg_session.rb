# frozen_string_literal: true

require_relative "test_helper"
require_relative "helpers/pg"
require "tempfile"

# The server session behind a lock in a PostgreSQL namespace: a lost session is reported [XL-PG-10], and
# every acquisition and release is one round trip.
class TestPgSession < Minitest::Test
  include XLockTestHelper::Pg

  # [XL-PG-10]
  def test_lost_after_terminate
    a = open_lock
    a.lock
    PgServer.sql("SELECT pg_terminate_backend(#{a.backend_pid}, 5000)")
    assert_raises(XLock::Lost) { a.unlock }
    refute a.locked?
    assert_raises(XLock::NotHeld) { a.unlock }
    a.lock(timeout: 5)
    assert a.locked?(verify: true)
  end

  # [XL-PG-10]: DISCARD ALL on the holder's session also drops its prepared statements; the release
  # prepares the unlock again and reports the loss.
  def test_lost_after_discard_all
    a = open_lock
    a.lock
    a.instance_variable_get(:@session).one("DISCARD ALL", [], "planting")
    assert_raises(XLock::Lost) { a.unlock }
    refute a.locked?
  end

  # [XL-PG-6, XL-PG-7, XL-PG-9]: uncontended, every acquisition (untimed, timed, one try) and every
  # release is one statement, the token check riding along: one round trip each, counted as the client's
  # Sync messages in libpq's protocol trace. The timed waits each take a different timeout.
  ACQUISITIONS = {
    "lock" => ->(lock, _round) { lock.lock },
    "timed_lock" => ->(lock, round) { lock.lock(timeout: 5.0 + ((round + 1) * 0.0011)) },
    "try_lock" => ->(lock, _round) { lock.try_lock }
  }.freeze

  ACQUISITIONS.each do |kind, acquire|
    define_method("test_one_round_trip_per_#{kind}_and_release") do
      a = open_lock
      acquire.call(a, 0)
      a.unlock # the first use on a session prepares the statement
      assert_equal 20, syncs_during(a) { (1..10).each { |round| acquire.call(a, round) && a.unlock } }
    end
  end

  # [XL-PG-7]: a timed wait leaves the session's lock_timeout at 0.
  def test_timed_wait_leaves_the_sessions_lock_timeout_at_zero
    a = open_lock
    a.lock(timeout: 5)
    assert_equal [["0"]], a.instance_variable_get(:@session).one("SHOW lock_timeout", [], "reading")
  end

  private

  # The client's Sync messages (round trips) in libpq's trace of +lock+'s session while the block runs.
  def syncs_during(lock)
    conn = lock.instance_variable_get(:@session).instance_variable_get(:@conn)
    Tempfile.create("trace") do |file|
      conn.trace(file)
      begin
        yield
      ensure
        conn.untrace
      end
      File.readlines(file.path).count { |line| line.include?("\tF\t") && line.include?("\tSync") }
    end
  end
end
