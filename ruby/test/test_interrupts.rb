# frozen_string_literal: true

require_relative "test_helper"
require_relative "helpers/interrupts"

# A waiting thread is reached by Thread#raise, Thread#kill and Timeout.timeout, promptly, and holds nothing
# afterwards [XL-WAIT-9, XL-WAIT-10]. Semaphore waits: test_semaphore_interrupts.rb; the block forms:
# test_synchronize_interrupts.rb; Ctrl-C: test_ctrl_c.rb.
class TestInterrupts < Minitest::Test
  include XLockTestHelper::Interrupts

  def thread_raise_reaches_wait(timeout)
    hold
    waiter = new_lock
    assert_raise_reaches(blocked_waiter(waiter, timeout))
    assert_free_afterwards(waiter)
  end

  def thread_kill_reaches_wait(timeout)
    hold
    waiter = new_lock
    assert_kill_reaches(blocked_waiter(waiter, timeout))
    assert_free_afterwards(waiter)
  end

  def timeout_timeout_reaches_wait(timeout)
    hold
    waiter = new_lock
    assert_timeout_reaches { waiter.lock(timeout: timeout) }
    assert_free_afterwards(waiter)
  end

  [nil, 30].each do |timeout|
    kind = timeout ? "timed" : "untimed"
    define_method("test_thread_raise_reaches_#{kind}_wait") { thread_raise_reaches_wait(timeout) }
    define_method("test_thread_kill_reaches_#{kind}_wait") { thread_kill_reaches_wait(timeout) }
    define_method("test_timeout_timeout_reaches_#{kind}_wait") { timeout_timeout_reaches_wait(timeout) }
  end

  def test_thread_raise_at_any_moment_ends_an_untimed_wait
    # A raise that lands just before the thread enters flock(2) must still end the wait.
    hold
    waiter = new_lock
    100.times do |i|
      assert raise_ends_the_wait?(waiter, i % 4), "round #{i}: the raise did not end the wait"
      refute waiter.locked?
    end
    assert_free_afterwards(waiter)
  end

  # Starts waiter.lock in a thread and raises in it after +passes+ Thread.pass; true if the thread ended.
  def raise_ends_the_wait?(waiter, passes)
    thread = Thread.new { waiter.lock }
    passes.times { Thread.pass }
    thread.raise(IOError, "now")
    thread.join(5)
  rescue IOError
    true
  end

  def test_untimed_waiter_waits_in_flock_visible_in_proc_locks
    # [XL-WAIT-2, XL-INTRO-2]: the kernel queues the waiter, so /proc/locks shows it with "->".
    hold
    waiter = new_lock
    thread = blocked_waiter(waiter, nil)
    inode = File.stat(waiter.path).ino
    waiting = File.readlines("/proc/locks")
                  .grep(/->\s+FLOCK\s+ADVISORY\s+WRITE\s+#{Process.pid}\s+\h+:\h+:#{inode}\s/)
    assert_equal 1, waiting.size, File.read("/proc/locks")
    @holder.unlock
    thread.join
    assert waiter.locked?
  end

  def test_on_blocking_interrupt_ends_the_wait
    hold
    waiter = new_lock
    thread = Thread.new { Thread.handle_interrupt(IOError => :on_blocking) { waiter.lock } }
    wait_until_blocked(thread)
    thread.raise(IOError, "at a blocking point")
    assert_raises(IOError) { thread.join(5) }
    assert_free_afterwards(waiter)
  end

  def test_interrupt_of_one_thread_leaves_another_waiter_on_the_same_object_waiting
    hold
    shared = new_lock
    first = blocked_waiter(shared, 30)
    second = Thread.new { shared.lock(timeout: 30) && :acquired }
    wait_until_blocked(second)
    first.raise(IOError, "only the first")
    assert_raises(IOError) { first.join }
    assert second.alive?, "the cancel aimed at the first thread ended the second wait"
    @holder.unlock
    assert_equal :acquired, second.value
  end

  def test_deferred_interrupt_does_not_end_the_wait
    hold
    waiter = new_lock
    thread = Thread.new { Thread.handle_interrupt(IOError => :never) { waiter.lock(timeout: 30) } }
    wait_until_blocked(thread)
    thread.raise(IOError, "deferred")
    wait_until_blocked(thread) # the wait resumed with the remaining deadline
    @holder.unlock
    assert_raises(IOError) { thread.join } # raised once the mask ends, after the acquisition
    assert waiter.locked?
  end
end
