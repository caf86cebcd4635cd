# frozen_string_literal: true

module XLockTestHelper
  # Observing a waiter reach its wait: its thread status and the system call it sleeps in.
  module Waits
    # Polls +condition+ until it holds or +seconds+ pass (then fails with +what+). For observing state
    # another process or thread reaches, never as a delay.
    def wait_for(what, seconds: 10)
      deadline = monotonic + seconds
      until yield
        flunk("timed out after #{seconds} s waiting for #{what}") if monotonic > deadline
        Thread.pass
      end
    end

    # True once the task +tid+ of +pid+ sleeps in one of WAIT_SYSCALLS (/proc/PID/task/TID/syscall).
    def sleeping_in_wait?(pid, tid)
      number = File.read("/proc/#{pid}/task/#{tid}/syscall").split.first
      WAIT_SYSCALLS.include?(Integer(number, exception: false))
    rescue Errno::ENOENT, Errno::ESRCH
      false
    end

    # Waits until +thread+ is inside a lock wait: outside the GVL (status "sleep") and asleep in the kernel.
    def wait_until_blocked(thread)
      wait_for("#{thread.inspect} to block in a wait") do
        raise "the thread ended: #{thread.value.inspect}" unless thread.alive?

        thread.status == "sleep" && thread.native_thread_id && sleeping_in_wait?(Process.pid,
                                                                                 thread.native_thread_id)
      end
    end

    # Waits until the main thread of process +pid+ sleeps in a wait system call.
    def wait_until_process_blocked(pid)
      wait_for("process #{pid} to block in a wait") { sleeping_in_wait?(pid, pid) }
    end

    def monotonic
      Process.clock_gettime(Process::CLOCK_MONOTONIC)
    end
  end
end
