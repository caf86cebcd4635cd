# frozen_string_literal: true

require_relative "test_helper"
require_relative "helpers/driver"

# exe/xlock-driver's fork_check: a child forked while the driver holds a lock.
class TestDriverFork < Minitest::Test
  include XLockTestHelper::Driver

  # Driver +a+ holds the lock "forked" and runs fork_check on it; yields the handle and the reply, then
  # kills the forked child.
  def with_fork_check(driver)
    h = held_by(driver, "forked")
    reply = driver.call("fork_check", handle: h)
    yield h, reply
  ensure
    child = reply && reply["child_pid"]
    Process.kill(:KILL, child) if child.is_a?(Integer) && child.positive?
  end

  # The forked child holds nothing [XL-HOLD-7]...
  def test_fork_check_child_holds_nothing
    a = session
    with_fork_check(a) do |h, reply|
      assert_equal({ "release" => "NOT_HELD", "locked" => false, "try_acquire" => "WOULD_BLOCK" },
                   reply.slice("release", "locked", "try_acquire"))
      assert_equal true, a.call("locked", handle: h)["locked"], "the driver serves on after the fork"
    end
  end

  # ...and keeps nothing alive once the driver is killed [XL-HOLD-8].
  def test_fork_check_child_keeps_nothing_once_the_driver_is_killed
    a = session
    with_fork_check(a) do |_h, reply|
      Process.kill(:KILL, a.pid)
      a.close # waits for the driver's death
      refute_includes %w[Z X], File.read("/proc/#{reply['child_pid']}/stat").split(")").last.split.first,
                      "the child must still live"
      b = session
      assert ok?(b, "try_acquire", handle: open_lock(b, "forked")),
             "the lingering child keeps the dead driver's lock"
    end
  end
end
