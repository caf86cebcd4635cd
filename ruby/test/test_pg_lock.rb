# frozen_string_literal: true

require_relative "test_helper"
require_relative "pg_server"
require "json"
require "timeout"
require "xlock/pg/dispatch" # until lib/xlock.rb requires it

# PostgreSQL namespaces through the pg gem [spec §16], against a server this file starts.
class TestPgLock < Minitest::Test
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

  def test_require_xlock_does_not_load_pg
    script = 'require "xlock"; ' \
             'print $LOADED_FEATURES.grep(%r{/pg_ext|/pg\.rb}).size + (defined?(::PG::Connection) ? 1 : 0)'
    out = IO.popen(["ruby", "-I", File.expand_path("../lib", __dir__), "-e", script], &:read)
    assert_equal "0", out
  end

  # [XL-PG-15]
  def test_missing_pg_gem_is_unsupported_backend
    script = '$LOAD_PATH.reject! { |p| p.include?("vendor_ruby") || p.include?("/pg") }; ' \
             "module Kernel; alias_method :orig_require, :require; " \
             'def require(f) = f == "pg" ? raise(LoadError, "no pg") : orig_require(f); end; ' \
             'require "xlock"; require "xlock/pg/dispatch"; ' \
             'begin; XLock::Lock.new("x", namespace: "postgresql://h/db"); ' \
             "rescue XLock::UnsupportedBackend => e; print e.message; end"
    out = IO.popen(["ruby", "-I", File.expand_path("../lib", __dir__), "-e", script], &:read)
    assert_match(/gem install pg/, out)
  end

  # [XL-PG-3]
  def test_keys_match_the_vectors
    require "xlock/pg/keys"
    cases = JSON.parse(File.read(File.expand_path("../../spec/vectors/pg_keys.json", __dir__)))["cases"]
    cases.each do |c|
      assert_equal c["key"], XLock::PG::Keys.key(c["kind"], c["label"], c["name"], c["extra"]),
                   c["description"]
    end
  end

  # [XL-PG-4, XL-PG-5, XL-PG-7, XL-HOLD-3]
  def test_exclusion_timeout_and_reentrancy
    a = open_lock
    b = open_lock
    refute_equal a.backend_pid, b.backend_pid
    a.lock
    refute b.try_lock
    assert_raises(XLock::Timeout) { b.lock(timeout: 0) }
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    assert_raises(XLock::Timeout) { b.lock(timeout: 0.1) }
    took = Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
    assert_operator took, :>=, 0.1
    assert_operator took, :<, 0.15
    assert_raises(XLock::AlreadyHeld) { a.lock }
    a.unlock
    assert_raises(XLock::NotHeld) { a.unlock }
    r = open_lock(reentrant: true)
    r.lock
    r.lock
    r.unlock
    refute a.try_lock
    r.unlock
    assert a.try_lock
    assert a.locked?(verify: true)
  end

  # [XL-PG-18]
  def test_remove_has_nothing_to_remove
    refute XLock.remove(NAME, namespace: @url)
    holder = open_lock(shared: true) # removal tries exclusively: a shared holder blocks it too
    holder.lock
    assert_raises(XLock::WouldBlock) { XLock.remove(NAME, namespace: @url) }
    holder.unlock
    refute XLock::Lock.remove(NAME, namespace: @url)
    assert open_lock.try_lock # the removals hold nothing
  end

  # [XL-PG-18]
  def test_remove_semaphore
    sem = XLock::Semaphore.new(NAME, 2, namespace: @url).tap { |o| @objects << o }
    refute XLock.remove(NAME, kind: :semaphore, capacity: 2, namespace: @url)
    assert_raises(XLock::CapacityMismatch) do
      XLock.remove(NAME, kind: :semaphore, capacity: 3, namespace: @url)
    end
    sem.acquire
    assert_raises(XLock::WouldBlock) { XLock.remove(NAME, kind: :semaphore, capacity: 2, namespace: @url) }
    refute_nil sem.try_acquire # the failed removal gave back the slot it took
  end

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

  # [XL-PG-1, XL-PG-2, XL-PG-14]
  def test_bad_namespaces
    assert_raises(XLock::InvalidArgument) { XLock::Lock.new(NAME, namespace: "#{@url}&xlock_nope=1") }
    assert_raises(XLock::InvalidArgument) { XLock::Lock.new(NAME, namespace: "#{@url}&xlock_namespace=") }
    assert_raises(XLock::InvalidArgument) { XLock::Lock.new(NAME, namespace: "postgresql://[::1/x") }
    e = assert_raises(XLock::BackendError) do
      XLock::Lock.new(NAME, namespace: "postgresql://xlock_pw:s3cr3t-x@127.0.0.1:1/xlock?connect_timeout=2")
    end
    refute_includes e.message, "s3cr3t-x"
    assert_includes e.message, "127.0.0.1"
  end

  # Thread#raise, Timeout.timeout and Thread#kill during a server-side wait leave no granted and no
  # waiting entry in pg_locks, also after the holder releases [XL-PG-8].
  def test_interruptions_cancel_the_server_wait
    a = open_lock
    b = open_lock
    a.lock
    interrupts = {
      raise: ->(t) { t.raise(RuntimeError, "stop") },
      kill: ->(t) { t.kill }
    }
    interrupts.each do |how, interrupt|
      t = Thread.new { b.lock }
      t.report_on_exception = false
      until_queued(b.backend_pid)
      interrupt.call(t)
      begin
        t.join
      rescue RuntimeError
        nil
      end
      assert_equal 0, PgServer.locks_of(b.backend_pid), "after #{how}"
    end
    t = Thread.new { Timeout.timeout(0.2) { b.lock } }
    assert_raises(Timeout::Error) { t.join }
    assert_equal 0, PgServer.locks_of(b.backend_pid), "after Timeout.timeout"
    a.unlock
    sleep 0.2 # a wait still queued in the server would be granted within this window
    assert_equal 0, PgServer.locks_of(b.backend_pid)
    refute b.locked?
    assert b.try_lock
  end

  # [XL-PG-8, XL-WAIT-9]
  def test_sigint_cancels_the_server_wait
    a = open_lock
    a.lock
    script = <<~RUBY
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
    IO.popen(["ruby", "-I", File.expand_path("../lib", __dir__), "-e", script, @url], "r+") do |io|
      pid = io.gets.to_i
      until_queued(pid)
      Process.kill(:INT, io.pid)
      assert_equal "interrupted", io.gets.to_s.strip
      assert_equal 0, PgServer.locks_of(pid)
      a.unlock
      sleep 0.2
      assert_equal 0, PgServer.locks_of(pid)
      io.close_write
    end
  end

  # [XL-PG-16, XL-HOLD-7]
  def test_fork_child_holds_nothing
    a = open_lock
    other = open_lock
    a.lock
    pid = fork do
      ok = !a.locked? && !a.try_lock
      begin
        a.unlock
        ok = false
      rescue XLock::NotHeld
        nil
      end
      exit!(ok ? 0 : 1)
    end
    Process.wait(pid)
    assert_predicate $?, :success?
    assert a.locked?(verify: true)
    refute other.try_lock
  end

  # [XL-PG-13]
  def test_semaphore
    s1 = XLock::Semaphore.new("rb-pg-sem", 2, namespace: @url).tap { |o| @objects << o }
    s2 = XLock::Semaphore.new("rb-pg-sem", 2, namespace: @url).tap { |o| @objects << o }
    assert_raises(XLock::CapacityMismatch) { XLock::Semaphore.new("rb-pg-sem", 3, namespace: @url) }
    assert_equal [0, 1], [s1.acquire, s2.acquire].sort
    assert_nil s2.try_acquire
    assert_raises(XLock::Timeout) { s2.acquire(timeout: 0.03) }
    t = Thread.new { s2.acquire(timeout: 10) }
    sleep 0.05
    s1.release
    assert_kind_of Integer, t.value
    assert_equal 2, s2.held
  end

  private

  def until_queued(backend_pid)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + 5
    until PgServer.locks_of(backend_pid) == 1 || Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
      sleep 0.005
    end
    assert_equal 1, PgServer.locks_of(backend_pid)
  end
end
