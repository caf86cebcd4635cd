# frozen_string_literal: true

require "timeout"

module XLockTestHelper
  # Waiters to interrupt, and the checks that an interrupted waiter holds nothing [XL-WAIT-9, XL-WAIT-10].
  # "Promptly" is asserted with a generous bound (PROMPT); the measured figures are in bench/rb_quick.rb
  # (at the repository root).
  module Interrupts
    PROMPT = 1.0

    # Run by ctrl_c_child: opens +open+ (Ruby code) as `object`, waits by +wait+ and, on Ctrl-C, prints
    # "Interrupt NAME=VALUE" of the Ruby expression +value+.
    CTRL_C_CHILD = <<~'RUBY'
      require "xlock"
      object = %<open>s
      $stdout.puts "waiting"; $stdout.flush
      begin
        %<wait>s
        $stdout.puts "acquired"
      rescue Interrupt
        $stdout.puts "Interrupt %<name>s=#{%<value>s}"
      end
      $stdout.flush
      $stdin.read
    RUBY

    # Takes the lock "t" with @holder.
    def hold
      @holder = new_lock
      @holder.lock
    end

    def blocked_waiter(lock, timeout)
      thread = Thread.new { lock.lock(timeout: timeout) }
      wait_until_blocked(thread)
      thread
    end

    # Thread#raise reaches +thread+, blocked in a wait, promptly [XL-WAIT-9].
    def assert_raise_reaches(thread)
      started = monotonic
      thread.raise(IOError, "stop")
      assert_raises(IOError) { thread.join }
      assert_operator monotonic - started, :<, PROMPT
    end

    # Thread#kill reaches +thread+, blocked in a wait, promptly [XL-WAIT-10].
    def assert_kill_reaches(thread)
      started = monotonic
      thread.kill
      assert thread.join(5), "the killed thread did not end"
      assert_operator monotonic - started, :<, PROMPT
    end

    # Timeout.timeout reaches the wait the block starts, promptly [XL-WAIT-10].
    def assert_timeout_reaches(&wait)
      started = monotonic
      assert_raises(::Timeout::Error) { Timeout.timeout(0.05, &wait) }
      assert_operator monotonic - started, :<, PROMPT
    end

    def assert_free_afterwards(waiter)
      refute waiter.locked?
      @holder.unlock
      assert free_for_another_process?, "the interrupted waiter holds the lock"
    end

    # A thread stopped inside lock.synchronize.
    def stopped_in_synchronize(lock, entered)
      thread = Thread.new do
        lock.synchronize do
          entered << true
          Thread.stop
        end
      end
      entered.pop
      thread
    end

    # +count+ threads each run object.synchronize and get a Thread#raise at whatever moment it lands.
    def race_thread_raise(object, count)
      races = count.times.map do
        thread = Thread.new { object.synchronize { Thread.pass } }
        Thread.pass
        thread.raise(IOError, "anywhere")
        thread
      end
      races.each { |t| join_past_its_error(t) }
    end

    def join_past_its_error(thread)
      thread.join
    rescue StandardError
      nil # the IOError, when it landed: what counts is what is held afterwards
    end

    # A Ruby process runs CTRL_C_CHILD. Once it waits in the kernel it gets SIGINT; yields the line it
    # printed and the seconds that took.
    def ctrl_c_child(open, wait, name, value)
      script = format(CTRL_C_CHILD, open: open, wait: wait, name: name, value: value)
      ruby_child(script) do |_stdin, stdout, pid|
        assert_equal "waiting", stdout.gets.chomp
        wait_until_process_blocked(pid)
        started = monotonic
        Process.kill(:INT, pid)
        yield stdout.gets.chomp, monotonic - started
      end
    end
  end
end
