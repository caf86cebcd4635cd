# Uncontended acquire+release in Ruby: XLock::Lock against a bare File#flock pair.
#
#   ruby bench/rb_uncontended.rb NAMESPACE
# Prints one JSON object: for each case the median nanoseconds per pair over REPEATS runs, each run
# calibrated to last about RUN_NS. XLock is left out (with the reason) when it cannot be loaded.
require "json"

REPEATS = 7
RUN_NS = 40_000_000

def now
  Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
end

def measure(loop)
  n = 8
  took = 0
  loop do
    t0 = now
    loop.call(n)
    took = now - t0
    break if took >= RUN_NS / 4
    n *= 2
  end
  n = [1, n * RUN_NS / [took, 1].max].max
  per = Array.new(REPEATS) do
    t0 = now
    loop.call(n)
    (now - t0).to_f / n
  end
  { ns_per_pair: per.sort[REPEATS / 2], repeats: per, pairs_per_repeat: n }
end

namespace = ARGV.fetch(0)
results = {}
f = File.open(File.join(namespace, "raw-rb.lock"), File::RDWR | File::CREAT, 0o600)
results[:raw] = measure(lambda do |n|
  n.times do
    f.flock(File::LOCK_EX)
    f.flock(File::LOCK_UN)
  end
end)
begin
  require "xlock"
  lock = XLock::Lock.new("bench-uncontended-rb", namespace: namespace)
  results[:xlock] = measure(lambda do |n|
    n.times do
      lock.lock
      lock.unlock
    end
  end)
rescue LoadError => e
  results[:xlock] = { skipped: "not loadable: #{e.message}" }
end
puts JSON.generate(results)
