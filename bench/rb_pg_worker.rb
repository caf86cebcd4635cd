# frozen_string_literal: true

# The Ruby worker of bench/pg.py: PostgreSQL namespaces (spec §16) through the gem in ruby/lib (RUBYLIB)
# and the pg gem. The roles and output of bench/c/pg_worker.c:
#   ruby rb_pg_worker.rb uncontended URL N | waiter URL NAME | holder URL NAME | timed URL ROUNDS
require "xlock"

def now_ns = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)

# The q-th percentile of sorted values, the index rounded as bench/pg.py's pct.
def pct(sorted, quantile) = sorted[[sorted.size - 1, ((quantile / 100.0) * (sorted.size - 1)).round].min]

def open_lock(name, url) = XLock::Lock.new(name, namespace: url)

def uncontended(url, count)
  lock = open_lock("bench-uncontended", url)
  200.times { lock.lock.unlock }
  times = Array.new(count) do
    t0 = now_ns
    lock.lock
    lock.unlock
    now_ns - t0
  end
  puts format("%.3f", pct(times.sort, 50) / 1000.0)
  lock.close
end

def waiter(url, name)
  lock = open_lock(name, url)
  $stdout.sync = true
  puts lock.backend_pid
  $stdin.each_line do
    lock.lock
    puts now_ns
    lock.unlock
  end
  lock.close
end

def holder(url, name)
  lock = open_lock(name, url).lock
  $stdout.sync = true
  puts lock.backend_pid
  sleep
end

def timed(url, rounds)
  held = open_lock("bench-timed", url).lock
  waiter = open_lock("bench-timed", url)
  over = []
  rounds.times do
    [1, 5, 20, 50].each do |ms|
      t0 = now_ns
      begin
        waiter.lock(timeout: ms / 1000.0)
        abort "rb_pg_worker: a timed acquire of a held lock succeeded"
      rescue XLock::Timeout
        over << (now_ns - t0 - (ms * 1_000_000))
      end
    end
  end
  over.sort!
  puts format("%<earliest>.3f %<p99>.3f", earliest: over.first / 1000.0, p99: pct(over, 99) / 1000.0)
  [waiter, held].each(&:close)
end

role, url, arg = ARGV
case role
when "uncontended" then uncontended(url, Integer(arg))
when "waiter" then waiter(url, arg)
when "holder" then holder(url, arg)
when "timed" then timed(url, Integer(arg))
else abort "usage: ruby rb_pg_worker.rb uncontended URL N | waiter URL NAME | holder URL NAME | " \
           "timed URL ROUNDS"
end
