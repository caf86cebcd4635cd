# frozen_string_literal: true

require_relative "test_helper"

# XLock::Semaphore (crash-safe, slot files). Removal: test_semaphore_removal.rb; XLock::PosixSemaphore:
# test_posix_semaphores.rb.
class TestSemaphores < Minitest::Test
  # Run by test_permit_of_a_killed_process_returns_at_once (argv: namespace): takes the permit, prints
  # its slot, then waits to be killed.
  CRASHING_HOLDER = <<~RUBY
    require "xlock"
    sem = XLock::Semaphore.new("crash", 1, namespace: ARGV[0])
    $stdout.puts sem.acquire; $stdout.flush
    $stdin.read
  RUBY

  def semaphore(name = "pool", capacity = 2)
    track(XLock::Semaphore.new(name, capacity, namespace: @ns))
  end

  def test_permits_are_slots_in_order
    # [XL-CSEM-5]
    a = semaphore
    assert_equal 0, a.acquire
    assert_equal 1, semaphore.acquire
    assert_nil semaphore.try_acquire
    assert_raises(XLock::Timeout) { semaphore.acquire(timeout: 0.02) }
    a.release
    assert_equal 0, semaphore.try_acquire
  end

  def test_capacity_file_and_slot_files
    a = semaphore
    2.times { semaphore.acquire }
    ns = a.namespace
    assert_equal 2, a.capacity
    assert_equal File.join(ns, "pool.sem"), a.path
    assert_equal "xlock/1 semaphore capacity=2\n", File.read(a.path)
    assert File.exist?(File.join(ns, "pool.1.slot"))
  end

  def test_one_object_holds_several_permits_and_releases_the_latest
    # [XL-CSEM-6]
    sem = semaphore("multi", 3)
    assert_equal [0, 1], [sem.acquire, sem.acquire]
    assert_equal 2, sem.held
    sem.release
    assert_equal 1, semaphore("multi", 3).try_acquire, "slot 1 was returned"
    sem.release
    assert_equal 0, sem.held
    assert_raises(XLock::NotHeld) { sem.release }
  end

  def test_capacity_mismatch_names_both
    # [XL-CSEM-3]
    semaphore("cap", 2)
    error = assert_raises(XLock::CapacityMismatch) { XLock::Semaphore.new("cap", 5, namespace: @ns) }
    assert_equal "CAPACITY_MISMATCH", error.kind
    assert_includes error.message, "2"
    assert_includes error.message, "5"
  end

  def test_bad_capacity
    # [XL-CSEM-1]
    [0, 1001, -1].each do |capacity|
      assert_raises(XLock::InvalidArgument) { XLock::Semaphore.new("bad", capacity, namespace: @ns) }
    end
    assert_raises(XLock::InvalidArgument) { XLock::Semaphore.new("bad", "2", namespace: @ns) }
    assert_raises(XLock::InvalidArgument) { XLock::Semaphore.new("bad", 2**70, namespace: @ns) }
  end

  def test_synchronize_yields_the_slot_and_releases
    sem = semaphore
    assert_equal(:slot0, sem.synchronize { |slot| :"slot#{slot}" })
    assert_equal 0, sem.held
    assert_raises(IOError) { sem.synchronize { raise IOError } }
    assert_equal 0, sem.held
  end

  def test_release_is_woken_across_threads
    sem = semaphore("one", 1)
    sem.acquire
    other = semaphore("one", 1)
    waiter = Thread.new { other.acquire(timeout: 30) }
    wait_until_blocked(waiter)
    sem.release
    assert_equal 0, waiter.value
  end

  def test_permit_of_a_killed_process_returns_at_once
    # [XL-CSEM-2]
    ruby_child(CRASHING_HOLDER, args: [@ns]) do |_stdin, stdout, pid|
      assert_equal "0", stdout.gets.chomp
      sem = semaphore("crash", 1)
      assert_nil sem.try_acquire
      waiter = Thread.new { sem.acquire(timeout: 30) }
      wait_until_blocked(waiter)
      Process.kill(:KILL, pid)
      assert_equal 0, waiter.value
    end
  end

  def test_fork_child_holds_no_permit
    sem = semaphore("forked", 1)
    sem.acquire
    report = in_forked_child { { "held" => sem.held, "release" => error_kind { sem.release } } }
    assert_equal({ "held" => 0, "release" => "NOT_HELD" }, report)
    assert_equal 1, sem.held
    assert_nil semaphore("forked", 1).try_acquire, "the child released the parent's permit"
  end

  def test_xlock_objects_after_close
    sem = semaphore("closed", 1)
    sem.acquire
    sem.close
    assert_equal 0, semaphore("closed", 1).try_acquire, "close returned the permit"
    assert_raises(XLock::InvalidArgument) { sem.acquire }
    assert sem.closed?
  end
end
