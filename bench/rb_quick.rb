# frozen_string_literal: true

# Uncontended acquire+release of XLock::Lock against Ruby's own File#flock(LOCK_EX)/flock(LOCK_UN) pair on
# a file in the same directory, in the same run; plus how fast Thread#raise reaches a waiting thread.
#
#   ruby/bin/build-ext && ruby -I ruby/lib bench/rb_quick.rb [--quick]
#
# Prints ns per pair (median of the repeats) and the ratio; the goal (PRODUCT.md) is within 2x of the raw
# system calls.
require "xlock"
require "tmpdir"
require "rbconfig"

QUICK = ARGV.include?("--quick")
ROUNDS = QUICK ? 20_000 : 200_000
REPEATS = QUICK ? 3 : 7

def ns_per_round(rounds)
  started = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
  rounds.times { yield }
  (Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond) - started).fdiv(rounds)
end

def median(values)
  sorted = values.sort
  sorted[sorted.size / 2]
end

Dir.mktmpdir("xlock-bench-") do |dir|
  ns = File.join(dir, "ns")
  lock = XLock::Lock.new("bench", namespace: ns)
  file = File.open(File.join(ns, "raw.lock"), File::RDONLY | File::CREAT)

  cases = {
    "File#flock(LOCK_EX) + flock(LOCK_UN)" => -> { file.flock(File::LOCK_EX); file.flock(File::LOCK_UN) },
    "XLock::Lock#lock + #unlock" => -> { lock.lock; lock.unlock },
    "XLock::Lock#lock(timeout: 1) + #unlock" => -> { lock.lock(timeout: 1); lock.unlock },
    "XLock::Lock#try_lock + #unlock" => -> { lock.try_lock; lock.unlock },
    "XLock::Lock#synchronize {}" => -> { lock.synchronize {} }
  }
  cases.each_value { |body| ns_per_round(ROUNDS / 10, &body) } # warm up
  # Each repeat runs every case once, so a load change on the machine hits all cases alike.
  samples = Hash.new { |h, k| h[k] = [] }
  REPEATS.times { cases.each { |label, body| samples[label] << ns_per_round(ROUNDS, &body) } }
  results = samples.transform_values { |values| median(values) }
  base = results.values.first
  puts "ruby #{RUBY_VERSION}, libxlock #{XLock::LIBXLOCK_VERSION}; #{ROUNDS} rounds, median of #{REPEATS}"
  results.each { |label, ns| puts format("%-42s %8.0f ns/pair  %5.2fx", label, ns, ns / base) }

  # Thread#raise reaching a waiter blocked in an untimed lock (median of the repeats).
  holder = XLock::Lock.new("held", namespace: ns)
  holder.lock
  waiter = XLock::Lock.new("held", namespace: ns)
  latencies = Array.new(QUICK ? 5 : 21) do
    thread = Thread.new { waiter.lock rescue IOError }
    Thread.pass until thread.status == "sleep"
    sleep 0.005 # let it settle into the wait; a benchmark, not a test
    started = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
    thread.raise(IOError, "stop")
    thread.join
    Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond) - started
  end
  puts format("%-42s %8.0f us (median), %.0f us (max)", "Thread#raise reaching an untimed wait",
              median(latencies) / 1000.0, latencies.max / 1000.0)

  # SIGINT (Ctrl-C) reaching a process blocked in an untimed lock, until it reports Interrupt.
  script = <<~RUBY
    require "xlock"
    lock = XLock::Lock.new("held", namespace: #{ns.dump})
    loop do
      $stdout.puts "waiting"; $stdout.flush
      begin
        lock.lock
      rescue Interrupt
        $stdout.puts "interrupted"; $stdout.flush
      end
    end
  RUBY
  IO.popen([RbConfig.ruby, "-I", File.expand_path("../lib", __dir__), "-e", script], "r") do |child|
    blocked = lambda do
      File.read("/proc/#{child.pid}/syscall").split.first.then { |n| %w[73 202].include?(n) }
    rescue Errno::ENOENT
      false
    end
    latencies = Array.new(QUICK ? 5 : 21) do
      child.gets
      Thread.pass until blocked.call
      sleep 0.005
      started = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
      Process.kill(:INT, child.pid)
      child.gets
      Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond) - started
    end
    Process.kill(:KILL, child.pid)
    puts format("%-42s %8.0f us (median), %.0f us (max)", "SIGINT reaching an untimed wait (process)",
                median(latencies) / 1000.0, latencies.max / 1000.0)
  end
  file.close
  lock.close
  holder.close
  waiter.close
end
