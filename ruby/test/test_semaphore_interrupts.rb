# frozen_string_literal: true

require_relative "test_helper"
require_relative "helpers/interrupts"

# Counting-semaphore waits, timed or not, sleep in FUTEX_WAIT on the semaphore's bell word [XL-WAIT-11,
# XL-WAIT-12]: Thread#raise, Thread#kill and Timeout.timeout reach them promptly, and the interrupted
# waiter holds no permit.
class TestSemaphoreInterrupts < Minitest::Test
  include XLockTestHelper::Interrupts

  # Holds the one permit of "sem-int" with @holder; the waiter object.
  def hold_semaphore
    @holder = track(XLock::Semaphore.new("sem-int", 1, namespace: @ns))
    @holder.acquire
    track(XLock::Semaphore.new("sem-int", 1, namespace: @ns))
  end

  def blocked_acquire(waiter, timeout)
    thread = Thread.new { waiter.acquire(timeout: timeout) }
    wait_until_blocked(thread)
    thread
  end

  def assert_no_permit_afterwards(waiter)
    assert_equal 0, waiter.held
    @holder.release
    assert_equal 0, waiter.try_acquire, "an interrupted waiter holds a permit"
  end

  def thread_raise_reaches_semaphore_wait(timeout)
    waiter = hold_semaphore
    assert_raise_reaches(blocked_acquire(waiter, timeout))
    assert_no_permit_afterwards(waiter)
  end

  def thread_kill_reaches_semaphore_wait(timeout)
    waiter = hold_semaphore
    assert_kill_reaches(blocked_acquire(waiter, timeout))
    assert_no_permit_afterwards(waiter)
  end

  def timeout_timeout_reaches_semaphore_wait(timeout)
    waiter = hold_semaphore
    assert_timeout_reaches { waiter.acquire(timeout: timeout) }
    assert_no_permit_afterwards(waiter)
  end

  def test_thread_raise_reaches_a_semaphore_wait
    hold_semaphore
    sem = track(XLock::Semaphore.new("sem-int", 1, namespace: @ns))
    waiter = Thread.new { sem.acquire }
    wait_until_blocked(waiter)
    waiter.raise(IOError, "stop")
    assert_raises(IOError) { waiter.join }
    assert_equal 0, sem.held
  end

  [nil, 30].each do |timeout|
    kind = timeout ? "timed" : "untimed"
    define_method("test_thread_raise_reaches_#{kind}_semaphore_wait") do
      thread_raise_reaches_semaphore_wait(timeout)
    end
    define_method("test_thread_kill_reaches_#{kind}_semaphore_wait") do
      thread_kill_reaches_semaphore_wait(timeout)
    end
    define_method("test_timeout_timeout_reaches_#{kind}_semaphore_wait") do
      timeout_timeout_reaches_semaphore_wait(timeout)
    end
  end
end
