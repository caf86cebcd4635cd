# frozen_string_literal: true

require_relative "test_helper"
require_relative "helpers/interrupts"

# Ctrl-C (SIGINT) reaches a process waiting for a lock or a semaphore, promptly, and it holds nothing
# afterwards [XL-WAIT-9, XL-WAIT-10].
class TestCtrlC < Minitest::Test
  include XLockTestHelper::Interrupts

  # Untimed: a blocking flock(2) [XL-WAIT-2]; timed: FUTEX_WAIT on the bell word [XL-WAIT-12].
  { "untimed" => "nil", "timed" => "30" }.each do |kind, timeout|
    define_method("test_ctrl_c_reaches_a_process_in_an_#{kind}_wait") do
      hold
      ctrl_c_child("XLock::Lock.new(\"t\", namespace: #{@ns.dump})", "object.lock(timeout: #{timeout})",
                   "locked", "object.locked?") do |line, seconds|
        assert_equal "Interrupt locked=false", line
        assert_operator seconds, :<, PROMPT
        @holder.unlock
        assert free_for_another_process?, "the interrupted process holds the lock"
      end
    end
  end

  def test_ctrl_c_reaches_a_semaphore_wait
    sem = track(XLock::Semaphore.new("sem", 1, namespace: @ns))
    sem.acquire
    ctrl_c_child("XLock::Semaphore.new(\"sem\", 1, namespace: #{@ns.dump})", "object.acquire",
                 "held", "object.held") do |line, _seconds|
      assert_equal "Interrupt held=0", line
      sem.release
      other = track(XLock::Semaphore.new("sem", 1, namespace: @ns))
      assert_equal 0, other.try_acquire
    end
  end
end
