# frozen_string_literal: true

require_relative "test_helper"

# XLock::Semaphore (crash-safe, slot files) and XLock::PosixSemaphore (raw sem_open).
class TestSemaphores < Minitest::Test
  def semaphore(name = "pool", capacity = 2)
    track(XLock::Semaphore.new(name, capacity, namespace: @ns))
  end

  def posix(name = "raw", value: 1)
    track(XLock::PosixSemaphore.new(name, value: value, namespace: @ns))
  end

  def test_permits_are_slots_in_order
    # [XL-CSEM-5]
    a = semaphore
    b = semaphore
    assert_equal 0, a.acquire
    assert_equal 1, b.acquire
    assert_nil semaphore.try_acquire
    assert_raises(XLock::Timeout) { semaphore.acquire(timeout: 0.02) }
    a.release
    assert_equal 0, semaphore.try_acquire
    assert_equal 2, a.capacity
    assert_equal File.join(a.namespace, "pool.sem"), a.path
    assert_equal "xlock/1 semaphore capacity=2\n", File.read(a.path)
    assert File.exist?(File.join(a.namespace, "pool.1.slot"))
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
    script = <<~RUBY
      require "xlock"
      sem = XLock::Semaphore.new("crash", 1, namespace: #{@ns.dump})
      $stdout.puts sem.acquire; $stdout.flush
      $stdin.read
    RUBY
    ruby_child(script) do |_stdin, stdout, pid|
      assert_equal "0", stdout.gets.chomp
      sem = semaphore("crash", 1)
      assert_nil sem.try_acquire
      waiter = Thread.new { sem.acquire(timeout: 30) }
      wait_until_blocked(waiter)
      Process.kill(:KILL, pid)
      assert_equal 0, waiter.value
    end
  end

  def test_thread_raise_reaches_a_semaphore_wait
    semaphore("busy", 1).acquire
    sem = semaphore("busy", 1)
    waiter = Thread.new { sem.acquire }
    wait_until_blocked(waiter)
    waiter.raise(IOError, "stop")
    assert_raises(IOError) { waiter.join }
    assert_equal 0, sem.held
  end

  def test_fork_child_holds_no_permit
    sem = semaphore("forked", 1)
    sem.acquire
    pid = fork do
      code = sem.held.zero? ? 0 : 1
      begin
        sem.release
        code = 2
      rescue XLock::NotHeld
        nil
      end
      exit!(code)
    end
    Process.wait(pid)
    assert_equal 0, $?.exitstatus
    assert_equal 1, sem.held
    assert_nil semaphore("forked", 1).try_acquire, "the child released the parent's permit"
  end

  # A raw semaphore name of this process, unlinked before and after the block (raw semaphores outlive
  # the namespace directory) [XL-PSEM-5].
  def with_raw_name(stem)
    name = "#{stem}-#{Process.pid}"
    XLock.remove(name, kind: :posix_semaphore, namespace: @ns)
    yield name
  ensure
    XLock.remove(name, kind: :posix_semaphore, namespace: @ns)
  end

  def test_closing_a_raw_semaphore_posts_back_its_permits
    # [XL-PSEM-6]
    with_raw_name("raw-close") do |name|
      a = posix(name, value: 2)
      2.times { a.acquire }
      assert_equal 0, a.value
      a.close
      b = posix(name, value: 2)
      assert_equal 2, b.value, "close lost the permits it held"
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
      report = in_forked_child do
        { "held" => sem.held, "release" => error_kind { sem.release } }.tap { sem.close }
      end
      assert_equal({ "held" => 0, "release" => "NOT_HELD" }, report)
      assert_equal 1, sem.held, "the parent still holds its permit"
      assert_equal 1, sem.value, "the child posted the parent's permit"
      sem.release
      assert_equal 2, sem.value
    end
  end

  def test_remove_semaphore_files
    # [XL-RM-3]
    removed_name(:s, "rm")
    sem = semaphore("rm", 2)
    sem.acquire
    assert_raises(XLock::WouldBlock) { XLock::Semaphore.remove("rm", 2, namespace: @ns) }
    sem.release
    sem.close
    assert_equal true, XLock::Semaphore.remove("rm", 2, namespace: @ns)
    refute File.exist?(File.join(@ns, "rm.sem"))
    assert_equal false, XLock::Semaphore.remove("rm", 2, namespace: @ns)
  end

  def test_remove_takes_the_capacity_from_the_file
    # [XL-RM-3, XL-RM-7]
    removed_name(:s, "rm3")
    semaphore("rm3", 3).close
    assert_raises(XLock::CapacityMismatch) { XLock::Semaphore.remove("rm3", 2, namespace: @ns) }
    assert File.exist?(File.join(@ns, "rm3.sem")), "a mismatch removed something"
    assert_equal true, XLock.remove("rm3", kind: :semaphore, namespace: @ns)
    refute File.exist?(File.join(@ns, "rm3.sem"))
    assert_equal false, XLock.remove("rm3", kind: :semaphore, namespace: @ns)
  end

  def test_remove_refuses_a_malformed_capacity_file
    # Decided: CAPACITY_MISMATCH naming the file; nothing is removed [XL-RM-3].
    removed_name(:s, "bad")
    sem = semaphore("bad", 2)
    sem.synchronize { nil } # creates slot 0
    sem.close
    path = File.join(@ns, "bad.sem")
    File.write(path, "not a capacity\n")
    error = assert_raises(XLock::CapacityMismatch) { XLock.remove("bad", kind: :semaphore, namespace: @ns) }
    assert_includes error.message, path
    assert File.exist?(path)
    assert File.exist?(File.join(@ns, "bad.0.slot"))
  end

  def test_posix_semaphore_counts_and_refuses_over_release
    # [XL-PSEM-2, XL-PSEM-4]
    XLock::PosixSemaphore.unlink("raw", namespace: @ns)
    sem = posix(value: 2)
    assert_match(%r{\A/xl1p[a-z2-7]{25}\z}, sem.semaphore_name)
    assert_equal 2, sem.value
    assert sem.acquire
    assert sem.try_acquire
    refute sem.try_acquire
    assert_raises(XLock::Timeout) { sem.acquire(timeout: 0.02) }
    assert_equal 2, sem.held
    sem.release
    sem.release
    assert_raises(XLock::NotHeld) { sem.release }
    assert_equal 2, sem.value
  ensure
    XLock::PosixSemaphore.unlink("raw", namespace: @ns)
  end

  def test_posix_semaphore_wait_is_interruptible_and_woken_by_post
    XLock::PosixSemaphore.unlink("raw0", namespace: @ns)
    a = posix("raw0", value: 0)
    waiter = Thread.new { a.acquire }
    wait_until_blocked(waiter)
    waiter.raise(IOError, "stop")
    assert_raises(IOError) { waiter.join }
    assert_equal 0, a.held
    b = posix("raw0", value: 0)
    assert_raises(XLock::NotHeld) { b.release } # b holds nothing: no over-release [XL-PSEM-4]
    assert_equal 0, b.value
    one = posix("raw1", value: 1)
    one.acquire
    other = posix("raw1", value: 1)
    waiter = Thread.new { other.acquire(timeout: 30) }
    wait_until_blocked(waiter)
    one.release
    assert waiter.value
    assert_equal 1, other.held
  ensure
    XLock::PosixSemaphore.unlink("raw0", namespace: @ns)
    XLock::PosixSemaphore.unlink("raw1", namespace: @ns)
  end

  def test_posix_semaphore_synchronize_and_unlink
    sem = posix("rawsync", value: 1)
    assert_equal(:ok, sem.synchronize { sem.held == 1 ? :ok : :bad })
    assert_equal 0, sem.held
    assert_equal true, XLock::PosixSemaphore.unlink("rawsync", namespace: @ns)
    assert_equal false, XLock::PosixSemaphore.unlink("rawsync", namespace: @ns)
    assert_raises(XLock::InvalidArgument) { XLock::PosixSemaphore.new("bad", value: -1, namespace: @ns) }
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
