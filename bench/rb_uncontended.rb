# Uncontended acquire+release in Ruby: XLock::Lock against a bare File#flock pair, and XLock's two
# semaphores.
#
#   ruby bench/rb_uncontended.rb NAMESPACE
#   ruby bench/rb_uncontended.rb NAMESPACE objects N   (N lock objects open at once; the harness sets
#                                                       the descriptor limit)
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

# A loop of n acquire+release pairs of a semaphore (counting or raw).
def semaphore_pairs(sem)
  lambda do |n|
    n.times do
      sem.acquire
      sem.release
    end
  end
end

namespace = ARGV.fetch(0)

# N lock objects open at once: one JSON line with how many opened and the time per open.
def many_objects(namespace, wanted)
  require "xlock"
  locks = []
  error = ""
  t0 = now
  begin
    wanted.times { |i| locks << XLock::Lock.new("many-#{i}", namespace: namespace) }
  rescue XLock::Error => e
    error = e.message
  end
  took = now - t0
  puts JSON.generate(objects: locks.size, wanted: wanted, ns_per_open: locks.empty? ? 0 : took.to_f / locks.size,
                     error: error)
  locks.each(&:close)
  exit(locks.size == wanted ? 0 : 1)
end
many_objects(namespace, Integer(ARGV.fetch(2))) if ARGV[1] == "objects"

results = {}
loops = {}
raw_path = File.join(namespace, "raw-rb.lock")
f = File.open(raw_path, File::RDWR | File::CREAT, 0o600)
loops[:raw] = lambda do |n|
  n.times do
    f.flock(File::LOCK_EX)
    f.flock(File::LOCK_UN)
  end
end
# The raw cycle an object per use is compared with: open + flock + flock(LOCK_UN) + close.
loops[:"raw-cycle"] = lambda do |n|
  n.times do
    g = File.open(raw_path, File::RDONLY)
    g.flock(File::LOCK_EX)
    g.flock(File::LOCK_UN)
    g.close
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
  loops[:"xlock-timed"] = lambda do |n|
    n.times do
      lock.lock(timeout: 10)
      lock.unlock
    end
  end
  loops[:"xlock-per-use"] = lambda do |n|
    n.times do
      l = XLock::Lock.new("bench-per-use-rb", namespace: namespace)
      l.lock
      l.unlock
      l.close
    end
  end
  loops[:"xlock-semaphore-cap1"] =
    semaphore_pairs(XLock::Semaphore.new("bench-sem-1", 1, namespace: namespace))
  # Capacity 256 with 255 permits held by another object: the acquire+release of the free one.
  held = XLock::Semaphore.new("bench-sem-256", 256, namespace: namespace)
  255.times { held.acquire(timeout: 0) }
  loops[:"xlock-semaphore-256-255-held"] =
    semaphore_pairs(XLock::Semaphore.new("bench-sem-256", 256, namespace: namespace))
  loops[:"xlock-semaphore"] =
    semaphore_pairs(XLock::Semaphore.new("bench-uncontended-rb", 4, namespace: namespace))
  loops[:"xlock-posix-semaphore"] =
    semaphore_pairs(XLock::PosixSemaphore.new("bench-uncontended-rb", value: 1, namespace: namespace))
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
