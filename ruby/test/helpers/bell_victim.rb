# frozen_string_literal: true

module XLockTestHelper
  # The victim process of test_planted_bell.rb (argv: namespace, the wait system calls as JSON, the
  # timeout in ms).
  module BellVictim
    # Runs in the victim: for a lock and a counting semaphore, a timed wait that must time out, a wait that a
    # release must end, and a wait that Thread#raise must end. One JSON line per object kind.
    SCRIPT = <<~'RUBY'
      require "xlock"
      require "json"
      ns = ARGV[0]
      wait_calls = JSON.parse(ARGV[1])
      def now = Process.clock_gettime(Process::CLOCK_MONOTONIC)
      def blocked?(thread, calls)
        number = File.read("/proc/self/task/#{thread.native_thread_id}/syscall").split.first
        thread.status == "sleep" && calls.include?(Integer(number, exception: false))
      rescue Errno::ENOENT, Errno::ESRCH
        false
      end
      def wait_blocked(thread, calls)
        deadline = now + 10
        Thread.pass until blocked?(thread, calls) || !thread.alive? || now > deadline
        raise "the waiter never blocked: #{thread.alive? ? 'still running' : thread.value.inspect}" unless blocked?(thread, calls)
      end
      # A lock stays open the whole time: the process keeps the bell mapped while the member truncates it.
      keeper = XLock::Lock.new("keeper", namespace: ns)
      $stdout.puts JSON.generate("ready" => keeper.bell_status); $stdout.flush
      $stdin.gets # the member acts now (truncation case)
      %w[lock semaphore].each do |kind|
        open = -> { kind == "lock" ? XLock::Lock.new("w", namespace: ns) : XLock::Semaphore.new("w", 1, namespace: ns) }
        take = kind == "lock" ? :lock : :acquire
        give = kind == "lock" ? :unlock : :release
        holder = open.call
        waiter = open.call
        holder.public_send(take)
        report = { "kind" => kind, "bell_status" => waiter.bell_status, "sharing" => waiter.sharing.to_s }
        started = now
        begin
          waiter.public_send(take, timeout: Rational(ARGV[2].to_i, 1000))
          report["timed"] = "acquired"
        rescue XLock::Timeout
          report["timed"] = "TIMEOUT"
        end
        report["timed_ms"] = (now - started) * 1000
        thread = Thread.new { waiter.public_send(take, timeout: 10) && now }
        wait_blocked(thread, wait_calls)
        released = now
        holder.public_send(give) # the ring finds no usable bell: nothing fails
        report["woken_after_ms"] = (thread.value - released) * 1000
        waiter.public_send(give)
        holder.public_send(take)
        thread = Thread.new { waiter.public_send(take, timeout: 10) }
        wait_blocked(thread, wait_calls)
        raised = now
        thread.raise(IOError, "stop")
        report["raise"] = begin
          thread.join
          "not raised"
        rescue IOError
          "IOError"
        end
        report["raise_ms"] = (now - raised) * 1000
        report["held_after_raise"] = kind == "lock" ? waiter.locked? : waiter.held.positive?
        holder.close
        waiter.close
        $stdout.puts JSON.generate(report); $stdout.flush
      end
      keeper.close
    RUBY
  end
end
