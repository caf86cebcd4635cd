# frozen_string_literal: true

require_relative "test_helper"

# XLock::Lock in one process: acquisition, modes, threads, the block forms, introspection, bad input.
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

  def test_shared_locks_share_and_exclude_exclusive
    readers = [new_lock(shared: true), new_lock(shared: true)]
    writer = new_lock
    readers.each { |r| assert r.try_lock }
    refute writer.try_lock
    readers.first.unlock
    refute writer.try_lock
    readers.last.unlock
    assert writer.try_lock
    refute readers.first.try_lock
    assert readers.first.shared?
    refute writer.shared?
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

  def test_unlock_when_not_held_raises_not_held
    # [XL-HOLD-6]
    error = assert_raises(XLock::NotHeld) { new_lock.unlock }
    assert_equal "NOT_HELD", error.kind
    assert_kind_of ThreadError, error
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
    counter = 0
    inside = 0
    overlaps = 0
    threads = 4.times.map do
      Thread.new do
        lock = XLock::Lock.new("counter", namespace: @ns)
        100.times do
          lock.synchronize do
            inside += 1
            overlaps += 1 if inside > 1
            value = counter
            Thread.pass
            counter = value + 1
            inside -= 1
          end
        end
        lock.close
      end
    end
    threads.each(&:join)
    assert_equal 0, overlaps
    assert_equal 400, counter
  end

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

  # Mutex's conventions (issue 15): try_lock is a boolean, owned? is true only in the thread that holds it.
  def test_try_lock_is_boolean_and_owned_follows_the_holding_thread
    lock = new_lock("owned")
    refute lock.owned?
    assert_equal true, lock.try_lock
    assert lock.owned?
    refute Thread.new { lock.owned? }.value, "another thread does not own it"
    assert_equal false, new_lock("owned").try_lock, "a second object finds it held"
    lock.unlock
    refute lock.owned?
    lock.synchronize { assert lock.owned? }
    refute lock.owned?
    sem = track(XLock::Semaphore.new("owned-sem", 2, namespace: @ns))
    sem.acquire
    assert sem.owned?
    sem.release
    refute sem.owned?
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

  def test_close_releases_and_is_idempotent
    # [XL-HOLD-10]
    lock = new_lock
    lock.lock
    lock.close
    lock.close
    assert lock.closed?
    refute lock.locked?
    assert new_lock.try_lock
    error = assert_raises(XLock::InvalidArgument) { lock.lock }
    assert_includes error.message, "closed"
    assert_equal "t", lock.name, "introspection still works after close"
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

  def test_introspection
    # [XL-INTRO-1]
    lock = new_lock("Billing export")
    assert_equal "Billing export", lock.name
    assert_equal Encoding::UTF_8, lock.name.encoding
    assert_equal File.realpath(@ns), File.realpath(lock.namespace)
    assert_equal File.join(lock.namespace, "!billing%20export.lock"), lock.path
    assert File.file?(lock.path)
    stat = File.stat(@ns)
    assert_equal [stat.dev, stat.ino], lock.namespace_identity
    assert_equal :private, lock.sharing # [XL-NS-15]
    assert_equal File.join(lock.namespace, ".xlock-bell"), lock.bell # [XL-BELL-1]
    assert_equal XLock.bell_word(:lock, "Billing export"), lock.bell_word # [XL-SEM-7]
    assert_equal "usable", lock.bell_status
    assert_equal 4096, File.size(lock.bell)
    assert_equal 0o600, File.stat(lock.bell).mode & 0o7777 # the file mode of a private namespace [XL-NS-13]
    assert_includes lock.inspect, lock.path
  end

  def test_namespace_from_environment_and_default
    # [XL-NS-1]
    script = 'require "xlock"; l = XLock::Lock.new("envns"); puts l.namespace; l.close'
    out = IO.popen({ "XLOCK_NAMESPACE" => @ns }, [RUBY, "-I", LIB, "-e", script], &:read)
    assert_equal @ns, out.chomp
    out = IO.popen({ "XLOCK_NAMESPACE" => nil }, [RUBY, "-I", LIB, "-e", script], &:read)
    assert_equal XLock.default_namespace, out.chomp
  end

  def test_namespace_accepts_pathname
    require "pathname"
    assert_equal @ns, track(XLock::Lock.new("p", namespace: Pathname(@ns))).namespace
  end

  def test_bad_input_raises_typed_errors
    assert_raises(XLock::InvalidName) { XLock::Lock.new(nil, namespace: @ns) }
    assert_raises(XLock::InvalidName) { XLock::Lock.new(42, namespace: @ns) }
    assert_raises(XLock::InvalidName) { XLock::Lock.new("x" * 81, namespace: @ns) }
    assert_raises(XLock::InvalidName) { XLock::Lock.new("a\0b", namespace: @ns) }
    assert_raises(XLock::InvalidArgument) { XLock::Lock.new("x", namespace: "") }
    assert_raises(XLock::InvalidArgument) { XLock::Lock.new("x", namespace: "rel") }
    error = assert_raises(XLock::InvalidArgument) { XLock::Lock.new("x", namespace: "/tmp/a\0b") }
    assert_includes error.message, "NUL"
    assert_raises(XLock::InvalidArgument) { XLock::Lock.new("x", namespace: 3) }
    lock = new_lock
    assert_raises(XLock::InvalidArgument) { lock.lock(timeout: "1") }
    assert_raises(XLock::InvalidArgument) { lock.lock(timeout: Float::NAN) }
    assert_raises(ArgumentError) { lock.lock(wait: 1) }
    refute lock.locked?
  end

  def test_objects_cannot_be_copied
    assert_raises(TypeError) { new_lock.dup }
    assert_raises(TypeError) { new_lock.clone }
    assert_raises(TypeError) { track(XLock::Semaphore.new("s", 1, namespace: @ns)).dup }
    assert_raises(TypeError) { Marshal.dump(new_lock) }
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

  def test_insecure_lock_file_symlink_is_refused
    # [XL-LOCK-4]
    new_lock("x") # creates the namespace
    target = File.join(@tmp, "target")
    File.write(target, "keep")
    File.symlink(target, File.join(@ns, "link.lock"))
    error = assert_raises(XLock::InsecureNamespace) { XLock::Lock.new("link", namespace: @ns) }
    assert_equal "INSECURE_NAMESPACE", error.kind
    assert_equal "keep", File.read(target)
  end

  def test_remove_idle_lock_file
    # [XL-RM-2]
    removed_name(:l, "gone")
    lock = new_lock("gone")
    lock.lock
    assert_raises(XLock::WouldBlock) { XLock::Lock.remove("gone", namespace: @ns) }
    assert File.exist?(lock.path)
    lock.unlock
    assert_equal true, XLock::Lock.remove("gone", namespace: @ns)
    refute File.exist?(lock.path)
    assert_equal false, XLock::Lock.remove("gone", namespace: @ns)
    assert lock.try_lock, "a lock object reopens a removed path [XL-RM-4]"
    assert File.exist?(lock.path)
  end
end
