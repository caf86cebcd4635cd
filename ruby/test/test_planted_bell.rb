# frozen_string_literal: true

require_relative "test_helper"
require_relative "helpers/planted_bell"

# A member of a world-shared namespace (another uid, through setpriv) plants a bad .xlock-bell before we
# open it, or truncates a valid one while we have it mapped. Neither may crash us, make a wait overrun its
# deadline by more than 50 ms, or stop wake-ups: waits fall back to the safety poll [XL-BELL-3, XL-BELL-5,
# XL-BELL-8, XL-THREAT-3]. The victim is a child process, so that a crash (SIGBUS) is seen as such.
class TestPlantedBell < Minitest::Test
  include XLockTestHelper::PlantedBell

  def setup
    super
    skip "needs root and setpriv to act as another user" unless Process.euid.zero? && system(
      "setpriv --version", out: File::NULL
    )
    File.chmod(0o711, @tmp) # the member may traverse, not list
    @world = File.join(@tmp, "world")
    Dir.mkdir(@world)
    File.chmod(0o1777, @world) # world-shared, owned by root, like /tmp [XL-NS-9]
    @bell = File.join(@world, ".xlock-bell")
  end

  def test_empty_bell_planted_by_a_member
    as_member("sh", "-c", ': > "$1"', "sh", @bell)
    assert_waits_survive(run_victim)
    assert_equal 0, File.size(@bell), "xlock modified the planted file [XL-BELL-3]"
    assert_equal 65_534, File.stat(@bell).uid
  end

  def test_wrong_size_bells_planted_by_a_member
    [100, 8192].each do |size|
      File.unlink(@bell) if File.exist?(@bell)
      as_member("truncate", "-s", size.to_s, @bell)
      assert_waits_survive(run_victim)
      assert_equal size, File.size(@bell), "xlock modified the planted file [XL-BELL-3]"
    end
  end

  def test_fifo_bell_planted_by_a_member
    as_member("mkfifo", "-m", "666", @bell)
    assert_waits_survive(run_victim) # the open does not block: O_NONBLOCK [XL-BELL-2]
    assert File.pipe?(@bell)
  end

  def test_valid_bell_truncated_while_mapped
    reports = run_victim do |ready|
      assert_equal "usable", ready["ready"], "the bell was not created and mapped"
      assert_equal 4096, File.size(@bell)
      assert_equal 0o666, File.stat(@bell).mode & 0o7777, "the world-shared file mode [XL-NS-13]"
      as_member("truncate", "--no-create", "-s", "0", @bell)
      assert_equal 0, File.size(@bell)
    end
    # Only kernel calls touch a shared namespace's bell, which fail with EFAULT instead of SIGBUS
    # [XL-BELL-5]; the status may still say usable until a futex call fails.
    assert_waits_survive(reports, bell_usable: true)
  end
end
