# frozen_string_literal: true

require_relative "test_helper"

# XLock.remove(name, *, namespace, kind, capacity), the same as the other bindings' (Python's xlock.remove).
class TestRemove < Minitest::Test
  def test_remove_lock_by_kind
    # [XL-RM-2]
    removed_name(:l, "rm-lock")
    new_lock("rm-lock").close
    assert_equal true, XLock.remove("rm-lock", namespace: @ns)
    assert_equal false, XLock.remove("rm-lock", kind: :lock, namespace: @ns)
    refute File.exist?(File.join(@ns, "rm-lock.lock"))
  end

  def test_remove_semaphore_by_kind
    # [XL-RM-3]
    removed_name(:s, "rm-sem")
    track(XLock::Semaphore.new("rm-sem", 2, namespace: @ns)).close
    assert_equal true, XLock.remove("rm-sem", kind: :semaphore, capacity: 2, namespace: @ns)
    assert_equal false, XLock.remove("rm-sem", kind: "semaphore", capacity: 2, namespace: @ns)
    refute File.exist?(File.join(@ns, "rm-sem.sem"))
  end

  def test_remove_posix_semaphore_by_kind
    # [XL-PSEM-5]
    raw = track(XLock::PosixSemaphore.new("rm-raw-#{Process.pid}", value: 1, namespace: @ns))
    assert_equal true, XLock.remove(raw.name, kind: :posix_semaphore, namespace: @ns)
    assert_equal false, XLock.remove(raw.name, kind: "posix_semaphore", namespace: @ns)
  end

  def test_remove_refuses_held_files_and_bad_arguments
    held = new_lock("held")
    held.lock
    assert_raises(XLock::WouldBlock) { XLock.remove("held", namespace: @ns) }
    assert held.locked?
    assert_raises(XLock::InvalidArgument) { XLock.remove("x", kind: :semaphore, capacity: 0, namespace: @ns) }
    assert_raises(XLock::InvalidArgument) { XLock.remove("x", kind: :lock, capacity: 2, namespace: @ns) }
    assert_raises(XLock::InvalidArgument) { XLock.remove("x", kind: :file, namespace: @ns) }
  end
end
