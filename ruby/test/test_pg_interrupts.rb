# frozen_string_literal: true

require_relative "test_helper"
require_relative "helpers/pg"
require "timeout"

# Interrupted waits in a PostgreSQL namespace leave no granted and no waiting entry in pg_locks, also after
# the holder releases [XL-PG-8]; a forked child holds nothing [XL-PG-16].
class TestPgInterrupts < Minitest::Test
  include XLockTestHelper::Pg

  # Run by interrupted_child (argv: namespace): prints its backend's pid, waits for NAME and reports the
  # Ctrl-C that ends the wait.
  SIGINT_CHILD = <<~RUBY.freeze
    require "xlock"
    require "xlock/pg/dispatch"
    b = XLock::Lock.new(#{NAME.inspect}, namespace: ARGV[0])
    puts b.backend_pid; $stdout.flush
    begin
      b.lock
    rescue Interrupt
      puts "interrupted"; $stdout.flush
    end
    $stdin.read
  RUBY

  INTERRUPTS = {
    "thread_raise" => ->(t) { t.raise(RuntimeError, "stop") },
    "thread_kill" => ->(t) { t.kill }
  }.freeze

  # A holder of NAME and a second object, to wait.
  def holder_and_waiter
    holder = open_lock
    holder.lock
    [holder, open_lock]
  end

  # The server grants a wait still queued inside the release (the releasing backend wakes the queue before
  # pg_advisory_unlock returns), so pg_locks shows any such grant once unlock has returned: no window.
  def assert_nothing_granted_after_release(holder, waiter)
    holder.unlock
    assert_equal 0, PgServer.locks_of(waiter.backend_pid)
    refute waiter.locked?
    assert waiter.try_lock
  end

  INTERRUPTS.each do |how, interrupt|
    define_method("test_#{how}_cancels_the_server_wait") do
      holder, waiter = holder_and_waiter
      t = Thread.new { waiter.lock }
      t.report_on_exception = false
      until_queued(waiter.backend_pid)
      interrupt.call(t)
      join_past_its_error(t)
      assert_equal 0, PgServer.locks_of(waiter.backend_pid), "after #{how}"
      assert_nothing_granted_after_release(holder, waiter)
    end
  end

  def join_past_its_error(thread)
    thread.join
  rescue RuntimeError
    nil
  end

  # The timeout (1 s) comes while the wait is queued in the server: seen queued first, or the test fails.
  def test_timeout_timeout_cancels_the_server_wait
    holder, waiter = holder_and_waiter
    t = Thread.new { Timeout.timeout(1) { waiter.lock } }
    t.report_on_exception = false
    until_queued(waiter.backend_pid)
    assert_raises(Timeout::Error) { t.join }
    assert_equal 0, PgServer.locks_of(waiter.backend_pid), "after Timeout.timeout"
    assert_nothing_granted_after_release(holder, waiter)
  end

  # A process waiting in the server for NAME gets SIGINT once queued; yields the line it printed and its
  # backend's pid.
  def interrupted_child
    IO.popen(["ruby", "-I", File.expand_path("../lib", __dir__), "-e", SIGINT_CHILD, @url], "r+") do |io|
      backend = io.gets.to_i
      until_queued(backend)
      Process.kill(:INT, io.pid)
      yield io.gets.to_s.strip, backend
      io.close_write
    end
  end

  # [XL-PG-8, XL-WAIT-9]
  def test_sigint_cancels_the_server_wait
    holder = open_lock
    holder.lock
    interrupted_child do |line, backend|
      assert_equal "interrupted", line
      assert_equal 0, PgServer.locks_of(backend)
      holder.unlock # a wait still queued would be granted inside it (assert_nothing_granted_after_release)
      assert_equal 0, PgServer.locks_of(backend)
    end
  end

  # [XL-PG-16, XL-HOLD-7]
  def test_fork_child_holds_nothing
    a = open_lock
    other = open_lock
    a.lock
    report = in_forked_child do
      { "locked" => a.locked?, "try_lock" => a.try_lock, "unlock" => error_kind { a.unlock } }
    end
    assert_equal({ "locked" => false, "try_lock" => false, "unlock" => "NOT_HELD" }, report)
    assert a.locked?(verify: true)
    refute other.try_lock
  end
end
