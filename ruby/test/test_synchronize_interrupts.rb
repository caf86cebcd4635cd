# frozen_string_literal: true

require_relative "test_helper"
require_relative "helpers/interrupts"

# The block form's guarantee: interrupted at any point, synchronize leaves nothing held.
class TestSynchronizeInterrupts < Minitest::Test
  include XLockTestHelper::Interrupts

  def test_thread_raise_inside_synchronize_never_leaks
    lock = new_lock
    entered = Queue.new
    50.times do
      thread = stopped_in_synchronize(lock, entered)
      thread.raise(IOError, "in block")
      assert_raises(IOError) { thread.join }
      refute lock.locked?
    end
  end

  def test_thread_kill_inside_synchronize_never_leaks
    lock = new_lock
    thread = stopped_in_synchronize(lock, Queue.new)
    thread.kill
    thread.join
    refute lock.locked?, "Thread#kill inside synchronize left the lock held"
  end

  def test_thread_raise_racing_synchronize_never_leaks
    lock = new_lock
    race_thread_raise(lock, 200)
    refute lock.locked?, "a Thread#raise during synchronize left the lock held"
    assert free_for_another_process?
  end

  def test_semaphore_synchronize_under_thread_raise_never_leaks
    sem = track(XLock::Semaphore.new("sem-race", 1, namespace: @ns))
    psem = track(XLock::PosixSemaphore.new("psem-race-#{Process.pid}", value: 1, namespace: @ns))
    [sem, psem].each do |object|
      race_thread_raise(object, 100)
      assert_equal 0, object.held, "a Thread#raise during #{object.class}#synchronize left a permit held"
    end
    assert_equal 1, psem.value
  ensure
    XLock::PosixSemaphore.unlink("psem-race-#{Process.pid}", namespace: @ns)
  end
end
