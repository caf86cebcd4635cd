# Uncontended acquire+release in Ruby: XLock::Lock against a bare File#flock pair, and XLock's two
# semaphores.
#
#   ruby bench/rb_uncontended.rb NAMESPACE
# Prints one JSON object: for each case the median nanoseconds per pair over REPEATS runs, each run
# calibrated to last about RUN_NS; the repeats of all cases are interleaved. XLock is left out (with
# the reason) when it cannot be loaded.
require "json"

REPEATS = 7
RUN_NS = 40_000_000

def now
  Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
end

def calibrate(loop)
  n = 8
  loop do
    t0 = now
    loop.call(n)
    took = now - t0
    return [1, n * RUN_NS / [took, 1].max].max if took >= RUN_NS / 4
    n *= 2
  end
end

namespace = ARGV.fetch(0)
results = {}
loops = {}
f = File.open(File.join(namespace, "raw-rb.lock"), File::RDWR | File::CREAT, 0o600)
loops[:raw] = lambda do |n|
  n.times do
    f.flock(File::LOCK_EX)
    f.flock(File::LOCK_UN)
  end
end
begin
  require "xlock"
  lock = XLock::Lock.new("bench-uncontended-rb", namespace: namespace)
  loops[:xlock] = lambda do |n|
    n.times do
      lock.lock
      lock.unlock
    end
  end
  sem = XLock::Semaphore.new("bench-uncontended-rb", 4, namespace: namespace)
  loops[:"xlock-semaphore"] = lambda do |n|
    n.times do
      sem.acquire
      sem.release
    end
  end
  psem = XLock::PosixSemaphore.new("bench-uncontended-rb", value: 1, namespace: namespace)
  loops[:"xlock-posix-semaphore"] = lambda do |n|
    n.times do
      psem.acquire
      psem.release
    end
  end
rescue LoadError => e
  results[:xlock] = { skipped: "not loadable: #{e.message}" }
end
sizes = loops.transform_values { |l| calibrate(l) }
per = loops.transform_values { [] }
# Repeats interleave the implementations, so background load hits them alike.
REPEATS.times do
  loops.each do |name, l|
    t0 = now
    l.call(sizes[name])
    per[name] << (now - t0).to_f / sizes[name]
  end
end
loops.each_key do |name|
  results[name] = { ns_per_pair: per[name].sort[REPEATS / 2], repeats: per[name], pairs_per_repeat: sizes[name] }
end
XLock::PosixSemaphore.unlink("bench-uncontended-rb", namespace: namespace) if loops.key?(:"xlock-posix-semaphore")
puts JSON.generate(results)
