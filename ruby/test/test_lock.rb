# frozen_string_literal: true

require_relative "test_helper"

# XLock::Lock in one thread: acquisition, timeouts, modes, reentrancy. Threads: test_lock_threads.rb; the
# block forms: test_lock_blocks.rb; the object (close, introspection, bad input): test_lock_object.rb.
class TestLock < Minitest::Test
  def test_lock_unlock_and_locked
    lock = new_lock
    refute lock.locked?
    assert_same lock, lock.lock
    assert lock.locked?
    assert_same lock, lock.unlock
    refute lock.locked?
  end

  def test_two_objects_exclude_each_other_in_one_thread
    # [XL-HOLD-1]
    a = new_lock
    b = new_lock
    a.lock
    refute b.try_lock
    error = assert_raises(XLock::Timeout) { b.lock(timeout: 0.05) }
    assert_equal "TIMEOUT", error.kind
    assert_includes error.message, "t.lock"
    a.unlock
    assert b.try_lock
    refute a.try_lock
  end

  def test_timeout_zero_is_one_attempt_failing_with_timeout
    # [XL-WAIT-3]
    a = new_lock
    a.lock
    assert_raises(XLock::Timeout) { new_lock.lock(timeout: 0) }
    a.unlock
    assert new_lock.lock(timeout: 0).locked?
  end

  # Two shared holders of "t".
  def two_readers
    readers = [new_lock(shared: true), new_lock(shared: true)]
    readers.each { |r| assert r.try_lock }
    readers
  end

  def test_shared_locks_share_and_exclude_exclusive
    first, second = two_readers
    writer = new_lock
    refute writer.try_lock
    first.unlock
    refute writer.try_lock
    second.unlock
    assert writer.try_lock
    refute first.try_lock
  end

  def test_shared_reports_the_mode
    assert new_lock(shared: true).shared?
    refute new_lock.shared?
  end

  def test_non_reentrant_relock_by_holder_raises_already_held
    # [XL-HOLD-3]
    lock = new_lock
    lock.lock
    error = assert_raises(XLock::AlreadyHeld) { lock.lock }
    assert_equal "ALREADY_HELD", error.kind
    assert_raises(XLock::AlreadyHeld) { lock.try_lock }
    assert lock.locked?
    lock.unlock
    refute lock.locked?
  end

  def test_reentrant_counts
    # [XL-HOLD-4]
    lock = new_lock(reentrant: true)
    assert lock.reentrant?
    lock.lock
    lock.lock
    assert lock.try_lock
    lock.unlock
    lock.unlock
    refute new_lock.try_lock, "released before the count reached zero"
    lock.unlock
    assert new_lock.try_lock
  end

  def test_unlock_when_not_held_raises_not_held
    # [XL-HOLD-6]
    error = assert_raises(XLock::NotHeld) { new_lock.unlock }
    assert_equal "NOT_HELD", error.kind
    assert_kind_of ThreadError, error
  end

  def test_negative_and_infinite_timeouts_are_untimed
    lock = new_lock
    lock.lock(timeout: -1)
    lock.unlock
    lock.lock(timeout: Float::INFINITY)
    lock.unlock
    lock.lock(timeout: Rational(1, 2))
    assert lock.locked?
  end
end
