# frozen_string_literal: true

module XLockTestHelper
  # Child processes: Ruby scripts with pipes, forked children that report back, a holder of a lock.
  module Children
    # Run by with_holder (argv: name namespace exclusive|shared): holds the lock until stdin closes.
    HOLDER = <<~RUBY
      require "xlock"
      lock = XLock::Lock.new(ARGV[0], namespace: ARGV[1], shared: ARGV[2] == "shared")
      lock.lock
      $stdout.puts "held"; $stdout.flush
      $stdin.read
    RUBY

    # Run by free_for_another_process? (argv: name namespace exclusive|shared): one try, then release.
    PROBE = <<~RUBY
      require "xlock"
      lock = XLock::Lock.new(ARGV[0], namespace: ARGV[1], shared: ARGV[2] == "shared")
      $stdout.puts lock.try_lock
    RUBY

    # Starts `ruby -I lib -e script args...` with pipes; yields [stdin, stdout, pid] and reaps it afterwards.
    def ruby_child(script, args: [], env: {})
      stdin, stdout, pid = spawn_ruby(script, args, env)
      begin
        yield stdin, stdout, pid
      ensure
        stdin.close unless stdin.closed?
        kill_and_reap(pid)
        stdout.close
      end
    end

    # The parent's ends of the child's stdin and stdout, and its pid.
    def spawn_ruby(script, args, env)
      stdin_r, stdin_w = IO.pipe
      stdout_r, stdout_w = IO.pipe
      pid = Process.spawn(env, RUBY, "-I", LIB, "-e", script, *args, in: stdin_r, out: stdout_w)
      [stdin_w, stdout_r, pid]
    ensure
      stdin_r&.close
      stdout_w&.close
    end

    def kill_and_reap(pid)
      Process.kill(:KILL, pid)
    rescue Errno::ESRCH
      nil
    ensure
      Process.wait(pid)
    end

    # Runs the block in a forked child and returns the Hash it returns, sent back as JSON over a pipe. A
    # child that raises sends nothing, and the parse fails the test.
    def in_forked_child(&report)
      reader, writer = IO.pipe
      pid = fork { send_report(reader, writer, &report) }
      writer.close
      JSON.parse(reader.read).tap { Process.wait(pid) }
    ensure
      reader&.close
    end

    # In the forked child: writes what the block returns as JSON, then exits without the parent's at_exit.
    def send_report(reader, writer)
      reader.close
      writer.write(JSON.generate(yield))
    ensure
      exit!(0) # no at_exit of the parent's Minitest in the child
    end

    # The kind of the XLock::Error the block raises ("NOT_HELD"), nil if it returns.
    def error_kind
      yield
      nil
    rescue XLock::Error => e
      e.kind
    end

    # A child process that holds the lock +name+ until its stdin closes (or it is killed); yields its pid.
    def with_holder(name = "t", shared: false)
      ruby_child(HOLDER, args: [name, @ns, shared ? "shared" : "exclusive"]) do |stdin, stdout, pid|
        assert_equal "held", stdout.gets&.chomp, "the holder process did not take the lock"
        yield pid, stdin
      end
    end

    # True if another process can take the lock +name+ right now (one try, then release).
    def free_for_another_process?(name = "t", shared: false)
      out = IO.popen([RUBY, "-I", LIB, "-e", PROBE, name, @ns, shared ? "shared" : "exclusive"], &:read)
      assert $?.success?, "the probe process failed"
      out.chomp == "true"
    end
  end
end
