# frozen_string_literal: true

require_relative "test_helper"
require_relative "helpers/driver"

# exe/xlock-driver speaks conformance/PROTOCOL.md: checked here line by line, against a second Ruby
# driver, and against libxlock's own driver (c/build/xlock-driver). Malformed requests:
# test_driver_requests.rb; semaphores and the counter: test_driver_semaphores.rb; fork: test_driver_fork.rb.
class TestDriver < Minitest::Test
  include XLockTestHelper::Driver

  def pg_gem?
    require "pg"
    true
  rescue LoadError
    false
  end

  def test_hello_identifies_the_driver
    s = session
    reply = s.send_line(HELLO)
    assert_equal 0, reply["id"]
    assert reply["ok"]
    assert_equal "ruby", reply["implementation"]
    assert_equal "xlock/1", reply["spec"]
    assert_equal s.pid, reply["pid"]
  end

  def test_hello_claims_capabilities
    expected = %w[clock counter fork lock map posix_semaphore remove reentrant semaphore shared timeout]
    expected << "pg" if pg_gem? # PostgreSQL namespaces with the pg gem [spec §16]
    assert_equal expected.sort, session.send_line(HELLO)["capabilities"].sort
  end

  def test_open_lock_reports_its_files
    opened = open_lock_reply(session, "billing-export")
    assert_equal File.join(@ns, "billing-export.lock"), opened["path"]
    stat = File.stat(@ns)
    assert_equal [stat.dev, stat.ino], opened.values_at("dev", "ino")
    assert_nil opened["semaphore"], "a lock has no POSIX semaphore [XL-SEM-2]"
  end

  def test_open_lock_reports_its_bell
    opened = open_lock_reply(session, "billing-export")
    assert_equal File.join(@ns, ".xlock-bell"), opened["bell"]
    assert_equal XLock.bell_word(:lock, "billing-export"), opened["bell_word"]
    assert_equal "private", opened["sharing"]
  end

  def test_acquire_and_locked
    a = session
    h = open_lock(a, "billing-export")
    acquired = a.call("acquire", handle: h, timeout_ms: nil)
    assert acquired["ok"]
    assert_kind_of Integer, acquired["mono_ns"]
    assert_equal({ "id" => 3, "ok" => true, "locked" => true }, a.call("locked", handle: h))
  end

  def test_a_lock_held_by_one_driver_blocks_another
    held_by(session, "billing-export")
    b = session
    hb = open_lock(b, "billing-export")
    assert_equal "WOULD_BLOCK", error_of(b, "try_acquire", handle: hb)
    reply = b.call("acquire", handle: hb, timeout_ms: 30)
    assert_equal "TIMEOUT", reply["error"]
    assert_includes reply["message"], "billing-export"
  end

  def test_release_and_close
    a = session
    h = held_by(a, "billing-export")
    b = session
    hb = open_lock(b, "billing-export")
    assert ok?(a, "release", handle: h)
    assert_equal "NOT_HELD", error_of(a, "release", handle: h)
    assert ok?(b, "try_acquire", handle: hb)
    assert ok?(b, "close", handle: hb)
    assert_equal "BAD_REQUEST", error_of(b, "release", handle: hb)
  end

  def test_exit_and_eof
    s = session
    assert_equal({ "id" => 1, "ok" => true }, s.call("exit"))
    assert s.close.success?
    t = session
    held_by(t, "held-at-eof")
    assert t.close.success?, "the driver did not exit 0 on EOF"
    assert free_for_another_process?("held-at-eof")
  end

  def test_libxlock_driver_sees_the_ruby_drivers_lock
    ruby = session
    c = c_driver_session
    h = held_by(ruby, "cross")
    hc = open_lock(c, "cross")
    assert_equal "WOULD_BLOCK", error_of(c, "try_acquire", handle: hc)
    assert ok?(ruby, "release", handle: h)
    assert ok?(c, "try_acquire", handle: hc)
    assert_equal "WOULD_BLOCK", error_of(ruby, "try_acquire", handle: h)
  end
end
