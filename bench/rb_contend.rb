# One contention worker in Ruby: COUNT rounds of acquire / increment a counter file / release.
#
#   ruby bench/rb_contend.rb raw LOCKFILE COUNTER COUNT          (bare File#flock)
#   ruby bench/rb_contend.rb xlock NAMESPACE NAME COUNTER COUNT  (XLock::Lock)
#   ruby bench/rb_contend.rb xlock-timed NAMESPACE ...           (XLock::Lock#lock(timeout: 60))
# Prints "ready", waits for end of file on stdin (the start gate shared by all workers), runs, and prints
# {"start_ns", "end_ns", "max_wait_ns", "ops"}. The increment is pread, parse, pwrite of the digits,
# as in bench/c/contend.c and bench/py_contend.py.
require "json"

impl = ARGV[0]
if impl == "raw"
  lock_file, counter, count = ARGV[1], ARGV[2], Integer(ARGV[3])
  f = File.open(lock_file, File::RDWR | File::CREAT, 0o600)
  acquire = -> { f.flock(File::LOCK_EX) }
  release = -> { f.flock(File::LOCK_UN) }
else
  require "xlock"
  namespace, name, counter, count = ARGV[1], ARGV[2], ARGV[3], Integer(ARGV[4])
  lock = XLock::Lock.new(name, namespace: namespace)
  acquire = impl == "xlock-timed" ? -> { lock.lock(timeout: 60) } : -> { lock.lock }
  release = -> { lock.unlock }
end
cf = File.open(counter, File::RDWR)
$stdout.sync = true
puts "ready"
$stdin.read # the start gate: end of file, when the harness closes the shared pipe
max_wait = 0
start = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
count.times do
  t0 = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
  acquire.call
  wait = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond) - t0
  max_wait = wait if wait > max_wait
  data = begin
    cf.pread(32, 0)
  rescue EOFError # the counter file starts empty
    ""
  end
  cf.pwrite((data.to_i + 1).to_s, 0)
  release.call
end
finish = Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
puts JSON.generate(start_ns: start, end_ns: finish, max_wait_ns: max_wait, ops: count)
