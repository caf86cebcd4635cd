# frozen_string_literal: true

# Shared by every test: the gem from this checkout (lib/ with the extension built by bin/build-ext), a
# fresh private namespace per test, and helpers for child processes and blocked waiters. Synchronisation
# is by pipes and by observing the waiter (its thread status and the system call it sleeps in), never by
# sleeping.
$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))
require "minitest/autorun"
require "tmpdir"
require "fileutils"
require "json"
require "rbconfig"
require "xlock"

Thread.report_on_exception = false # tests check thread outcomes with Thread#value

module XLockTestHelper
  RUBY_DIR = File.expand_path("..", __dir__)
  REPO = File.expand_path("..", RUBY_DIR)
  LIB = File.join(RUBY_DIR, "lib")
  RUBY = RbConfig.ruby
  # x86_64 and aarch64 numbers of the system calls a waiter sleeps in: futex, flock, and clock_nanosleep
  # (the safety poll of a wait whose bell is unusable [XL-BELL-8]).
  WAIT_SYSCALLS = { "x86_64" => [202, 73, 230], "aarch64" => [98, 32, 115] }.fetch(
    RbConfig::CONFIG["host_cpu"], []
  )

  def setup
    super
    @tmp = Dir.mktmpdir("xlock-rb-")
    @ns = File.join(@tmp, "ns")
    @objects = []
  end

  def teardown
    @objects.each(&:close)
    assert_no_doorbells(@tmp)
    FileUtils.rm_rf(@tmp)
    super
  end

  # Notes a lock (:l) or counting semaphore (:s) the test removes, for assert_no_doorbells.
  def removed_name(kind, name)
    (@removed_names ||= []) << [kind, name]
  end

  # Locks and counting semaphores create nothing in /dev/shm [XL-SEM-2]: for every namespace the test made
  # under +root+, neither draft 1's doorbell of any name found in its lock and capacity files (or noted by
  # removed_name) nor anything else of theirs is there. Computed names, never a pattern: other processes
  # use /dev/shm meanwhile.
  def assert_no_doorbells(root)
    Dir.glob("**/", base: root).map { |d| File.join(root, d) }.push(root).each do |dir|
      st = File.stat(dir)
      names = Dir.children(dir).filter_map do |file|
        kind = { ".lock" => :l, ".sem" => :s }[File.extname(file)]
        [kind, decode_file_stem(File.basename(file, ".*"))] if kind
      end
      (names + (@removed_names || [])).each do |kind, name|
        # libxlock still computes the withdrawn names, "useful only to unlink leftovers" (xlock.h).
        sem = XLock.__send__(:_semaphore_name, kind.to_s.ord, st.dev, st.ino, name)
        path = "/dev/shm/sem.#{sem.delete_prefix('/')}"
        refute File.exist?(path),
               "#{kind == :l ? 'lock' : 'semaphore'} #{name.inspect} of #{dir} created #{path}"
      end
    end
  end

  # The inverse of enc() [XL-ENC-1], for the teardown check only.
  def decode_file_stem(stem)
    stem.b.gsub(/%(\h\h)|!(.)/) do
      Regexp.last_match(1) ? Regexp.last_match(1).hex.chr : Regexp.last_match(2).upcase
    end
        .force_encoding(Encoding::UTF_8)
  end

  # A lock in this test's namespace, closed at teardown.
  def new_lock(name = "t", **options)
    track(XLock::Lock.new(name, namespace: @ns, **options))
  end

  def track(object)
    @objects << object
    object
  end

  # Polls +condition+ until it holds or +seconds+ pass (then fails with +what+). For observing state
  # another process or thread reaches, never as a delay.
  def wait_for(what, seconds: 10)
    deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + seconds
    until yield
      if Process.clock_gettime(Process::CLOCK_MONOTONIC) > deadline
        flunk("timed out after #{seconds} s waiting for #{what}")
      end
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

  # Starts `ruby -I lib -e script` with pipes; yields [stdin, stdout, pid] and reaps it afterwards.
  def ruby_child(script, env: {})
    stdin_r, stdin_w = IO.pipe
    stdout_r, stdout_w = IO.pipe
    pid = Process.spawn(env, RUBY, "-I", LIB, "-e", script, in: stdin_r, out: stdout_w)
    stdin_r.close
    stdout_w.close
    begin
      yield stdin_w, stdout_r, pid
    ensure
      stdin_w.close unless stdin_w.closed?
      begin
        Process.kill(:KILL, pid)
      rescue Errno::ESRCH
        nil
      end
      Process.wait(pid)
      stdout_r.close
    end
  end

  # Runs the block in a forked child and returns the Hash it returns, sent back as JSON over a pipe. A child
  # that raises sends nothing, and the parse fails the test.
  def in_forked_child
    reader, writer = IO.pipe
    pid = fork do
      reader.close
      writer.write(JSON.generate(yield))
    ensure
      exit!(0) # no at_exit of the parent's Minitest in the child
    end
    writer.close
    report = JSON.parse(reader.read)
    Process.wait(pid)
    report
  ensure
    reader&.close
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
    script = <<~RUBY
      require "xlock"
      lock = XLock::Lock.new(#{name.dump}, namespace: #{@ns.dump}, shared: #{shared})
      lock.lock
      $stdout.puts "held"; $stdout.flush
      $stdin.read
    RUBY
    ruby_child(script) do |stdin, stdout, pid|
      assert_equal "held", stdout.gets&.chomp, "the holder process did not take the lock"
      yield pid, stdin
    end
  end

  # True if another process can take the lock +name+ right now (one try, then release).
  def free_for_another_process?(name = "t", shared: false)
    script = <<~RUBY
      require "xlock"
      lock = XLock::Lock.new(#{name.dump}, namespace: #{@ns.dump}, shared: #{shared})
      $stdout.puts lock.try_lock
    RUBY
    out = IO.popen([RUBY, "-I", LIB, "-e", script], &:read)
    assert $?.success?, "the probe process failed"
    out.chomp == "true"
  end
end

module Minitest
  class Test
    include XLockTestHelper
  end
end
