# frozen_string_literal: true

module XLock
  class Driver
    # The op fork_check (conformance/PROTOCOL.md): fork(2) and report what the child sees of the held
    # object [XL-HOLD-7, XL-HOLD-8].
    module ForkCheck
      FORK_REPORT_S = 5

      private

      def op_fork_check(request)
        handle = handle_arg(request)
        reader, writer = IO.pipe
        pid = Process.fork { fork_child(handle, reader, writer) }
        writer.close
        { "child_pid" => pid }.merge(child_report(reader, pid))
      end

      # In the forked child: leave the protocol streams alone, release, ask locked, try to acquire, write one
      # JSON line to the pipe, then linger until killed (the runner checks the parent's lock dies with it).
      def fork_child(handle, reader, writer)
        reader.close
        $stdin.reopen(File::NULL)
        $stdout.reopen(File::NULL, "w")
        writer.write(JSON.generate(child_view(handle)) << "\n")
      rescue Exception => e # rubocop:disable Lint/RescueException -- say what went wrong, then linger all the same
        writer.write("ruby driver child failed: #{e.inspect}\n")
      ensure
        writer.flush
        loop { sleep }
      end

      def child_view(handle)
        { "release" => outcome { handle.release }, "locked" => handle.locked?,
          "try_acquire" => outcome { handle.try_acquire } }
      end

      def outcome
        yield
        "ok"
      rescue XLock::Error => e
        e.kind
      end

      # The child's report; a child that fails to give one is killed, not left behind.
      def child_report(reader, pid)
        JSON.parse(read_child_line(reader, pid))
      rescue XLock::OSError, JSON::ParserError => e
        Process.kill(:KILL, pid)
        Process.wait(pid)
        raise XLock::OSError, "the forked child #{pid}: #{e.message}"
      ensure
        reader.close
      end

      def read_child_line(reader, pid)
        line = +""
        deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + FORK_REPORT_S
        until line.end_with?("\n")
          wait_readable(reader, deadline)
          line << reader.readpartial(4096)
        end
        line
      rescue EOFError
        raise XLock::OSError, "child #{pid} closed its pipe after #{line.inspect}"
      end

      def wait_readable(reader, deadline)
        left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        return if left.positive? && IO.select([reader], nil, nil, left)

        raise XLock::OSError, "no report within #{FORK_REPORT_S} s"
      end
    end
  end
end
