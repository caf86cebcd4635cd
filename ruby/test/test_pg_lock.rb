# frozen_string_literal: true

require_relative "test_helper"
require_relative "helpers/pg"
require "json"

# PostgreSQL namespaces through the pg gem [spec §16], against a server pg_server.rb starts. Interrupted
# waits and fork: test_pg_interrupts.rb; semaphores: test_pg_semaphore.rb; the server session:
# test_pg_session.rb.
class TestPgLock < Minitest::Test
  include XLockTestHelper::Pg

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

  # [XL-PG-4, XL-PG-5]
  def test_exclusion
    a = open_lock
    b = open_lock
    refute_equal a.backend_pid, b.backend_pid
    a.lock
    refute b.try_lock
    assert_raises(XLock::Timeout) { b.lock(timeout: 0) }
  end

  # [XL-PG-7]
  def test_timed_wait_ends_at_its_deadline
    open_lock.lock
    b = open_lock
    t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC)
    assert_raises(XLock::Timeout) { b.lock(timeout: 0.1) }
    took = Process.clock_gettime(Process::CLOCK_MONOTONIC) - t0
    assert_operator took, :>=, 0.1
    assert_operator took, :<, 0.15
  end

  # [XL-HOLD-3]
  def test_relock_is_already_held_and_over_release_not_held
    a = open_lock
    a.lock
    assert_raises(XLock::AlreadyHeld) { a.lock }
    a.unlock
    assert_raises(XLock::NotHeld) { a.unlock }
  end

  def test_reentrancy
    a = open_lock
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

  # [XL-PG-1, XL-PG-2, XL-PG-14]
  def test_bad_namespaces
    assert_raises(XLock::InvalidArgument) { XLock::Lock.new(NAME, namespace: "#{@url}&xlock_nope=1") }
    assert_raises(XLock::InvalidArgument) { XLock::Lock.new(NAME, namespace: "#{@url}&xlock_namespace=") }
    assert_raises(XLock::InvalidArgument) { XLock::Lock.new(NAME, namespace: "postgresql://[::1/x") }
  end

  # [XL-PG-14]
  def test_unreachable_server_is_named_without_the_password
    e = assert_raises(XLock::BackendError) do
      XLock::Lock.new(NAME, namespace: "postgresql://xlock_pw:s3cr3t-x@127.0.0.1:1/xlock?connect_timeout=2")
    end
    refute_includes e.message, "s3cr3t-x"
    assert_includes e.message, "127.0.0.1"
  end
end
