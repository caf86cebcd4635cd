# frozen_string_literal: true

require_relative "test_helper"

# Real processes: exclusion, release on death, fork.
class TestProcesses < Minitest::Test
  def test_processes_never_overlap
    counter = File.join(@tmp, "counter")
    File.write(counter, "0")
    new_lock("counter") # creates the namespace before the children race for it
    pids = Array.new(4) { fork { count_in_child(counter, 150) } }
    pids.each do |pid|
      Process.wait(pid)
      assert $?.success?
    end
    assert_equal 600, Integer(File.read(counter))
  end

  # In a forked child: +rounds+ increments of the counter file under the lock "counter", then exit.
  def count_in_child(counter, rounds)
    lock = XLock::Lock.new("counter", namespace: @ns)
    rounds.times { lock.synchronize { File.write(counter, (Integer(File.read(counter)) + 1).to_s) } }
    exit!(0)
  end

  def test_lock_held_by_another_process
    with_holder("p") do
      lock = new_lock("p")
      refute lock.try_lock
      assert_raises(XLock::Timeout) { lock.lock(timeout: 0.05) }
      shared = new_lock("p", shared: true)
      refute shared.try_lock
    end
  end

  def test_shared_lock_held_by_another_process
    with_holder("s", shared: true) do
      assert new_lock("s", shared: true).try_lock
      refute new_lock("s").try_lock
    end
  end

  def test_kill_9_of_the_holder_releases_at_once
    # [XL-HOLD-10]
    with_holder("crash") do |pid|
      lock = new_lock("crash")
      waiter = Thread.new { lock.lock(timeout: 30) }
      wait_until_blocked(waiter)
      Process.kill(:KILL, pid)
      assert_same lock, waiter.value
      assert lock.locked?
    end
  end

  def test_kill_9_of_the_holder_wakes_an_untimed_waiter
    with_holder("crash2") do |pid|
      lock = new_lock("crash2")
      waiter = Thread.new { lock.lock }
      wait_until_blocked(waiter)
      Process.kill(:KILL, pid)
      waiter.join
      assert lock.locked?
    end
  end

  def test_fork_child_holds_nothing_and_cannot_release_the_parents_lock
    # [XL-HOLD-7, XL-HOLD-8]
    lock = new_lock("forked")
    lock.lock
    report = in_forked_child do
      # try_lock: the parent holds it, a fresh descriptor must see that
      { "locked" => lock.locked?, "unlock" => error_kind { lock.unlock }, "try_lock" => lock.try_lock }
    end
    assert_equal({ "locked" => false, "unlock" => "NOT_HELD", "try_lock" => false }, report)
    assert lock.locked?
    refute free_for_another_process?("forked"), "the child released the parent's lock"
    lock.unlock
    assert free_for_another_process?("forked")
  end

  def test_fork_child_can_take_the_lock_after_the_parent_releases
    lock = new_lock("handover")
    lock.lock
    reader, writer = IO.pipe
    go_r, go_w = IO.pipe
    pid = fork { try_lock_when_told(lock, go_r, writer, close: [reader, go_w]) }
    [writer, go_r].each(&:close)
    lock.unlock
    go_w.close
    assert_equal "true", reader.read.chomp
    Process.wait(pid)
  end

  # In the forked child: closes the parent's ends +close+, waits until +signal+ reaches EOF (the parent
  # released), then writes lock.try_lock to +out+.
  def try_lock_when_told(lock, signal, out, close:)
    close.each(&:close)
    signal.read
    out.puts lock.try_lock
    out.close
    exit!(0)
  end

  def test_block_form_in_child_after_fork_of_a_holding_synchronize
    lock = new_lock("nested-fork")
    lock.synchronize do
      pid = fork { exit!(timed_out_in_synchronize?(lock) ? 2 : 1) }
      Process.wait(pid)
      assert_equal 2, $?.exitstatus
      assert lock.locked?
    end
    refute lock.locked?
  end

  # The parent holds +lock+: in the child, synchronize(timeout: 0) times out and holds nothing.
  def timed_out_in_synchronize?(lock)
    lock.synchronize(timeout: 0) { false }
  rescue XLock::Timeout
    true
  end
end
