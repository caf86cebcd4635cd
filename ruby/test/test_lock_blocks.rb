# frozen_string_literal: true

require_relative "test_helper"

# The block forms: XLock::Lock#synchronize and XLock.lock.
class TestLockBlocks < Minitest::Test
  def test_synchronize_returns_the_block_value_and_releases_on_exception
    lock = new_lock
    assert_equal(42, lock.synchronize { |l| l.locked? ? 42 : 0 })
    refute lock.locked?
    assert_raises(ZeroDivisionError) { lock.synchronize { 1 / 0 } }
    refute lock.locked?
    assert_raises(LocalJumpError) { lock.synchronize }
  end

  def test_synchronize_nested_on_reentrant_lock_keeps_the_outer_hold
    lock = new_lock(reentrant: true)
    lock.synchronize do
      lock.synchronize { assert lock.locked? }
      assert lock.locked?, "the inner block released the outer hold"
      refute new_lock.try_lock
    end
    refute lock.locked?
  end

  def test_synchronize_timeout
    holder = new_lock
    holder.lock
    assert_raises(XLock::Timeout) { new_lock.synchronize(timeout: 0.01) { flunk "ran without the lock" } }
  end

  def test_xlock_lock_block_form_opens_locks_yields_and_closes
    seen = nil
    result = XLock.lock("blk", namespace: @ns, timeout: 5) do |lock|
      seen = lock
      assert lock.locked?
      refute free_for_another_process?("blk")
      :done
    end
    assert_equal :done, result
    assert seen.closed?
    assert free_for_another_process?("blk")
  end

  def test_xlock_lock_closes_on_timeout
    holder = new_lock("busy")
    holder.lock
    assert_raises(XLock::Timeout) { XLock.lock("busy", namespace: @ns, timeout: 0) { flunk } }
  end
end
