# frozen_string_literal: true

require_relative "test_helper"

# XLock::Lock across the threads of one process: wake-ups, release from another thread, ownership.
class TestLockThreads < Minitest::Test
  def test_timed_lock_is_woken_by_the_release
    holder = new_lock
    holder.lock
    waiter = new_lock
    thread = Thread.new { waiter.lock(timeout: 30) }
    wait_until_blocked(thread)
    holder.unlock
    assert_same waiter, thread.value
    assert waiter.locked?
  end

  def test_untimed_lock_waits_until_released
    holder = new_lock
    holder.lock
    waiter = new_lock
    thread = Thread.new { waiter.lock }
    wait_until_blocked(thread)
    refute waiter.locked?
    holder.unlock
    thread.join
    assert waiter.locked?
  end

  def test_reentrant_release_from_another_thread_raises_not_held
    lock = new_lock(reentrant: true)
    lock.lock
    assert_raises(XLock::NotHeld) { Thread.new { lock.unlock }.value }
    assert lock.locked?
  end

  def test_non_reentrant_may_be_released_by_another_thread
    # [XL-HOLD-5]
    lock = new_lock
    lock.lock
    Thread.new { lock.unlock }.join
    refute lock.locked?
  end

  def test_shared_object_another_thread_waits_for_the_holder
    # [XL-HOLD-2]
    lock = new_lock
    lock.lock
    thread = Thread.new { lock.lock(timeout: 30) && :acquired }
    wait_until_blocked(thread)
    assert lock.locked?
    lock.unlock
    assert_equal :acquired, thread.value
    assert lock.locked?
  end

  def test_threads_with_separate_objects_never_overlap
    tally = { counter: 0, inside: 0, overlaps: 0 }
    4.times.map { Thread.new { count_under_lock(tally, 100) } }.each(&:join)
    assert_equal 0, tally[:overlaps]
    assert_equal 400, tally[:counter]
  end

  # With its own lock object on "counter", +rounds+ times: notes whether another thread is inside, and
  # increments the counter by a read, a Thread.pass and a write (which loses counts without exclusion).
  def count_under_lock(tally, rounds)
    lock = XLock::Lock.new("counter", namespace: @ns)
    rounds.times { lock.synchronize { count_once(tally) } }
    lock.close
  end

  def count_once(tally)
    tally[:inside] += 1
    tally[:overlaps] += 1 if tally[:inside] > 1
    value = tally[:counter]
    Thread.pass
    tally[:counter] = value + 1
    tally[:inside] -= 1
  end

  # Mutex's conventions (issue 15): try_lock is a boolean, owned? is true only in the thread that holds it.
  def test_try_lock_is_boolean
    lock = new_lock("owned")
    assert_equal true, lock.try_lock
    assert_equal false, new_lock("owned").try_lock, "a second object finds it held"
  end

  def test_owned_follows_the_holding_thread
    lock = new_lock("owned")
    refute lock.owned?
    lock.try_lock
    assert lock.owned?
    refute Thread.new { lock.owned? }.value, "another thread does not own it"
    lock.unlock
    refute lock.owned?
  end

  def test_owned_inside_synchronize
    lock = new_lock("owned")
    lock.synchronize { assert lock.owned? }
    refute lock.owned?
  end

  def test_semaphore_owned_follows_its_permits
    sem = track(XLock::Semaphore.new("owned-sem", 2, namespace: @ns))
    sem.acquire
    assert sem.owned?
    sem.release
    refute sem.owned?
  end

  def test_close_from_another_thread_cancels_its_wait
    holder = new_lock
    holder.lock
    waiter = XLock::Lock.new("t", namespace: @ns)
    thread = Thread.new { waiter.lock }
    wait_until_blocked(thread)
    waiter.close
    error = assert_raises(XLock::Cancelled) { thread.value }
    assert_equal "CANCELLED", error.kind
    holder.unlock
    assert new_lock.try_lock, "the cancelled waiter holds the lock"
  end
end
