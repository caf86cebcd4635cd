# frozen_string_literal: true

require_relative "test_helper"
require_relative "helpers/raw_semaphores"

# XLock::PosixSemaphore (raw sem_open): counting, over-release, waits, close, fork.
class TestPosixSemaphores < Minitest::Test
  include XLockTestHelper::RawSemaphores

  def test_closing_a_raw_semaphore_posts_back_its_permits
    # [XL-PSEM-6]
    with_raw_name("raw-close") do |name|
      a = posix(name, value: 2)
      2.times { a.acquire }
      assert_equal 0, a.value
      a.close
      assert_equal 2, posix(name, value: 2).value, "close lost the permits it held"
    end
  end

  def test_closing_a_raw_semaphore_posts_back_only_what_it_holds
    # [XL-PSEM-6]
    with_raw_name("raw-close") do |name|
      b = posix(name, value: 2)
      b.synchronize { assert_equal 1, b.value }
      b.acquire
      b.close
      assert_equal 2, posix(name, value: 2).value
    end
  end

  def test_fork_child_raw_semaphore_object_holds_no_permit
    # [XL-HOLD-11]: in the child the object holds 0 permits; its release is NOT_HELD, its close posts nothing.
    with_raw_name("raw-fork") do |name|
      sem = posix(name, value: 2)
      sem.acquire
      assert_equal({ "held" => 0, "release" => "NOT_HELD" }, view_in_forked_child(sem))
      assert_equal 1, sem.held, "the parent still holds its permit"
      assert_equal 1, sem.value, "the child posted the parent's permit"
      sem.release
      assert_equal 2, sem.value
    end
  end

  # What +sem+ holds in a forked child and what its release raises there; the child then closes it.
  def view_in_forked_child(sem)
    in_forked_child { { "held" => sem.held, "release" => error_kind { sem.release } }.tap { sem.close } }
  end

  def test_posix_semaphore_name_and_value
    # [XL-PSEM-2]
    with_raw_name("raw") do |name|
      sem = posix(name, value: 2)
      assert_match(%r{\A/xl1p[a-z2-7]{25}\z}, sem.semaphore_name)
      assert_equal 2, sem.value
    end
  end

  def test_posix_semaphore_counts
    with_raw_name("raw") do |name|
      sem = posix(name, value: 2)
      assert sem.acquire
      assert sem.try_acquire
      refute sem.try_acquire
      assert_raises(XLock::Timeout) { sem.acquire(timeout: 0.02) }
      assert_equal 2, sem.held
    end
  end

  def test_posix_semaphore_refuses_over_release
    # [XL-PSEM-4]
    with_raw_name("raw") do |name|
      sem = posix(name, value: 2)
      2.times { sem.acquire }
      2.times { sem.release }
      assert_raises(XLock::NotHeld) { sem.release }
      assert_equal 2, sem.value
    end
  end

  def test_posix_semaphore_wait_is_interruptible
    with_raw_name("raw0") do |name|
      a = posix(name, value: 0)
      assert_interrupted_acquire(a)
      assert_equal 0, a.held
      b = posix(name, value: 0)
      assert_raises(XLock::NotHeld) { b.release } # b holds nothing: no over-release [XL-PSEM-4]
      assert_equal 0, b.value
    end
  end

  # Thread#raise ends +sem+'s acquire in another thread.
  def assert_interrupted_acquire(sem)
    waiter = Thread.new { sem.acquire }
    wait_until_blocked(waiter)
    waiter.raise(IOError, "stop")
    assert_raises(IOError) { waiter.join }
  end

  def test_posix_semaphore_wait_is_woken_by_post
    with_raw_name("raw1") do |name|
      one = posix(name, value: 1)
      one.acquire
      other = posix(name, value: 1)
      waiter = Thread.new { other.acquire(timeout: 30) }
      wait_until_blocked(waiter)
      one.release
      assert waiter.value
      assert_equal 1, other.held
    end
  end

  def test_posix_semaphore_synchronize_and_unlink
    sem = posix("rawsync", value: 1)
    assert_equal(:ok, sem.synchronize { sem.held == 1 ? :ok : :bad })
    assert_equal 0, sem.held
    assert_equal true, XLock::PosixSemaphore.unlink("rawsync", namespace: @ns)
    assert_equal false, XLock::PosixSemaphore.unlink("rawsync", namespace: @ns)
    assert_raises(XLock::InvalidArgument) { XLock::PosixSemaphore.new("bad", value: -1, namespace: @ns) }
  end
end
