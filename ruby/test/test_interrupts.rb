# frozen_string_literal: true

require_relative "test_helper"
require "timeout"

# A waiting thread is reached by Thread#raise, Thread#kill, Timeout.timeout and Ctrl-C, promptly, and holds
# nothing afterwards [XL-WAIT-9, XL-WAIT-10]. "Promptly" is asserted with a generous bound (1 s); the
# measured figures are in bench/rb_quick.rb (at the repository root).
class TestInterrupts < Minitest::Test
  PROMPT = 1.0

  def blocked_waiter(lock, timeout)
    thread = Thread.new { lock.lock(timeout: timeout) }
    wait_until_blocked(thread)
    thread
  end

  def assert_free_afterwards(waiter)
    refute waiter.locked?
    @holder.unlock
    assert free_for_another_process?, "the interrupted waiter holds the lock"
  end

  def hold
    @holder = new_lock
    @holder.lock
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
    races.each do |t|
      t.join
    rescue StandardError
      nil # the IOError, when it landed: what counts is what is held afterwards
    end
  end

  # A Ruby process that opens +open+ (Ruby code) as `object`, waits by +wait+ and, on Ctrl-C, prints
  # "Interrupt NAME=VALUE" of the Ruby expression +value+. Once it waits in the kernel it gets SIGINT;
  # yields the line it printed and the seconds that took.
  def ctrl_c_child(open, wait, name, value)
    script = <<~RUBY
      require "xlock"
      object = #{open}
      $stdout.puts "waiting"; $stdout.flush
      begin
        #{wait}
        $stdout.puts "acquired"
      rescue Interrupt
        $stdout.puts "Interrupt #{name}=\#{#{value}}"
      end
      $stdout.flush
      $stdin.read
    RUBY
    ruby_child(script) do |_stdin, stdout, pid|
      assert_equal "waiting", stdout.gets.chomp
      wait_until_process_blocked(pid)
      started = monotonic
      Process.kill(:INT, pid)
      yield stdout.gets.chomp, monotonic - started
    end
  end

  [nil, 30].each do |timeout|
    kind = timeout ? "timed" : "untimed"

    define_method("test_thread_raise_reaches_#{kind}_wait") do
      hold
      waiter = new_lock
      thread = blocked_waiter(waiter, timeout)
      started = monotonic
      thread.raise(IOError, "stop")
      assert_raises(IOError) { thread.join }
      assert_operator monotonic - started, :<, PROMPT
      assert_free_afterwards(waiter)
    end

    define_method("test_thread_kill_reaches_#{kind}_wait") do
      hold
      waiter = new_lock
      thread = blocked_waiter(waiter, timeout)
      started = monotonic
      thread.kill
      assert thread.join(5), "the killed thread did not end"
      assert_operator monotonic - started, :<, PROMPT
      assert_free_afterwards(waiter)
    end

    define_method("test_timeout_timeout_reaches_#{kind}_wait") do
      hold
      waiter = new_lock
      started = monotonic
      assert_raises(::Timeout::Error) { Timeout.timeout(0.05) { waiter.lock(timeout: timeout) } }
      assert_operator monotonic - started, :<, PROMPT
      assert_free_afterwards(waiter)
    end
  end

  # Counting-semaphore waits, timed or not, sleep in FUTEX_WAIT on the semaphore's bell word [XL-WAIT-11,
  # XL-WAIT-12]: the same interrupts reach them.
  [nil, 30].each do |timeout|
    kind = timeout ? "timed" : "untimed"

    define_method("test_interrupts_reach_#{kind}_semaphore_wait") do
      holder = track(XLock::Semaphore.new("sem-int", 1, namespace: @ns))
      holder.acquire
      waiter = track(XLock::Semaphore.new("sem-int", 1, namespace: @ns))
      thread = Thread.new { waiter.acquire(timeout: timeout) }
      wait_until_blocked(thread)
      started = monotonic
      thread.raise(IOError, "stop")
      assert_raises(IOError) { thread.join }
      assert_operator monotonic - started, :<, PROMPT
      thread = Thread.new { waiter.acquire(timeout: timeout) }
      wait_until_blocked(thread)
      started = monotonic
      thread.kill
      assert thread.join(5), "the killed thread did not end"
      assert_operator monotonic - started, :<, PROMPT
      started = monotonic
      assert_raises(::Timeout::Error) { Timeout.timeout(0.05) { waiter.acquire(timeout: timeout) } }
      assert_operator monotonic - started, :<, PROMPT
      assert_equal 0, waiter.held
      holder.release
      assert_equal 0, waiter.try_acquire, "an interrupted waiter holds a permit"
    end
  end

  def test_thread_raise_at_any_moment_ends_an_untimed_wait
    # A raise that lands just before the thread enters flock(2) must still end the wait.
    hold
    waiter = new_lock
    100.times do |i|
      thread = Thread.new { waiter.lock }
      (i % 4).times { Thread.pass }
      thread.raise(IOError, "now")
      ended = begin
        thread.join(5)
      rescue IOError
        true
      end
      assert ended, "round #{i}: the raise did not end the wait"
      refute waiter.locked?
    end
    assert_free_afterwards(waiter)
  end

  def test_untimed_waiter_waits_in_flock_visible_in_proc_locks
    # [XL-WAIT-2, XL-INTRO-2]: the kernel queues the waiter, so /proc/locks shows it with "->".
    hold
    waiter = new_lock
    thread = blocked_waiter(waiter, nil)
    inode = File.stat(waiter.path).ino
    waiting = File.readlines("/proc/locks")
                  .grep(/->\s+FLOCK\s+ADVISORY\s+WRITE\s+#{Process.pid}\s+\h+:\h+:#{inode}\s/)
    assert_equal 1, waiting.size, File.read("/proc/locks")
    @holder.unlock
    thread.join
    assert waiter.locked?
  end

  def test_on_blocking_interrupt_ends_the_wait
    hold
    waiter = new_lock
    thread = Thread.new { Thread.handle_interrupt(IOError => :on_blocking) { waiter.lock } }
    wait_until_blocked(thread)
    thread.raise(IOError, "at a blocking point")
    assert_raises(IOError) { thread.join(5) }
    assert_free_afterwards(waiter)
  end

  def test_interrupt_of_one_thread_leaves_another_waiter_on_the_same_object_waiting
    hold
    shared = new_lock
    first = blocked_waiter(shared, 30)
    second = Thread.new { shared.lock(timeout: 30) && :acquired }
    wait_until_blocked(second)
    first.raise(IOError, "only the first")
    assert_raises(IOError) { first.join }
    assert second.alive?, "the cancel aimed at the first thread ended the second wait"
    @holder.unlock
    assert_equal :acquired, second.value
  end

  def test_deferred_interrupt_does_not_end_the_wait
    hold
    waiter = new_lock
    thread = Thread.new do
      Thread.handle_interrupt(IOError => :never) do
        waiter.lock(timeout: 30)
        :acquired_first
      end
    end
    wait_until_blocked(thread)
    thread.raise(IOError, "deferred")
    wait_until_blocked(thread) # the wait resumed with the remaining deadline
    @holder.unlock
    assert_raises(IOError) { thread.join } # raised once the mask ends, after the acquisition
    assert waiter.locked?
  end

  def test_synchronize_under_thread_raise_never_leaks
    # The block form's guarantee: interrupted at any point, nothing stays held.
    lock = new_lock
    entered = Queue.new
    50.times do
      thread = stopped_in_synchronize(lock, entered)
      thread.raise(IOError, "in block")
      assert_raises(IOError) { thread.join }
      refute lock.locked?
    end
    thread = stopped_in_synchronize(lock, entered)
    thread.kill
    thread.join
    refute lock.locked?, "Thread#kill inside synchronize left the lock held"
    race_thread_raise(lock, 200)
    refute lock.locked?, "a Thread#raise during synchronize left the lock held"
    assert free_for_another_process?
  end

  def test_semaphore_synchronize_under_thread_raise_never_leaks
    sem = track(XLock::Semaphore.new("sem-race", 1, namespace: @ns))
    psem = track(XLock::PosixSemaphore.new("psem-race-#{Process.pid}", value: 1, namespace: @ns))
    [sem, psem].each do |object|
      race_thread_raise(object, 100)
      assert_equal 0, object.held, "a Thread#raise during #{object.class}#synchronize left a permit held"
    end
    assert_equal 1, psem.value
  ensure
    XLock::PosixSemaphore.unlink("psem-race-#{Process.pid}", namespace: @ns)
  end

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
