# frozen_string_literal: true

require_relative "test_helper"

# Scale (issue 14): the per-use paths make the system calls the spec requires and no more; a counting
# semaphore's round starts at the remembered slot [XL-CSEM-5].
class TestSyscalls < Minitest::Test
  # The system calls between two marks, under strace, in the order the spec requires them in a private
  # namespace whose directory this process already verified (the same sequence as libxlock's
  # c/tests/syscalls_test.py):
  #   per-use: lstat of the namespace path [XL-NS-16], geteuid, openat of the lock file [XL-LOCK-1],
  #            fstat [XL-LOCK-5], flock(LOCK_EX|LOCK_NB) [XL-LOCK-7], fstat st_nlink [XL-LOCK-8],
  #            flock(LOCK_UN) with no ring as nobody waits [XL-BELL-6], close
  #   reused, timed (10 s): flock(LOCK_EX|LOCK_NB), fstat, flock(LOCK_UN) — the timed acquire touches
  #            the bell only when its first try fails [XL-WAIT-12]
  #   semaphore (capacity 256, 255 permits held by another object): the same three [XL-CSEM-5]
  SYSCALL_SCRIPT = <<~RUBY
    require "xlock"
    ns, which = ARGV
    mark = ->(what) { File.exist?("/xlock-syscalls-mark/\#{what}") }
    if which == "semaphore"
      held = XLock::Semaphore.new("s", 256, namespace: ns)
      255.times { held.acquire(timeout: 0) }
      s = XLock::Semaphore.new("s", 256, namespace: ns)
      s.acquire
      s.release
      mark.call("begin")
      s.acquire
      s.release
      mark.call("end")
      exit
    end
    l = XLock::Lock.new("x", namespace: ns)
    l.lock(timeout: 10)
    l.unlock
    if which == "per-use"
      l.close
      mark.call("begin")
      l = XLock::Lock.new("x", namespace: ns)
      l.lock
      l.unlock
      l.close
    else
      mark.call("begin")
      which == "timed" ? l.lock(timeout: 10) : l.lock
      l.unlock
    end
    mark.call("end")
  RUBY
  FSTAT = /\A(fstat\(\d+, |newfstatat\(\d+, "", .*AT_EMPTY_PATH)/
  CYCLE = [/\Aflock\(\d+, LOCK_EX\|LOCK_NB\) = 0/, FSTAT, /\Aflock\(\d+, LOCK_UN\) = 0/].freeze

  TRACED = "trace=openat,open,newfstatat,fstat,stat,lstat,statx,flock,close,geteuid,fstatfs,mmap,munmap"

  # The system calls SYSCALL_SCRIPT makes in the case +which+ between its two marks, under strace.
  def traced(which)
    unless system("command -v strace >/dev/null")
      flunk "strace is not installed: run ./bootstrap (it installs it)"
    end
    Dir.mkdir(@ns, 0o700) unless File.directory?(@ns)
    out = File.join(@tmp, "strace.txt")
    assert system("strace", "-f", "-qq", "-o", out, "-e", TRACED,
                  RUBY, "-I", LIB, "-e", SYSCALL_SCRIPT, @ns, which)
    between_the_marks(File.readlines(out).map { |l| l.sub(/\A\d+ +/, "").gsub(/\s+/, " ").strip })
  end

  def between_the_marks(lines)
    first = lines.index { |l| l.include?("xlock-syscalls-mark/begin") }
    last = lines.index { |l| l.include?("xlock-syscalls-mark/end") }
    lines[first + 1...last]
  end

  def assert_calls(expected, calls)
    assert_equal expected.size, calls.size, "system calls:\n#{calls.join("\n")}"
    expected.zip(calls).each { |pattern, call| assert_match pattern, call }
  end

  def test_object_per_use_makes_the_minimum_system_calls
    assert_calls([/\Anewfstatat\(AT_FDCWD, "#{Regexp.escape(@ns)}", .*AT_SYMLINK_NOFOLLOW\) = 0/,
                  /\Ageteuid\(\)/,
                  /\Aopenat\(\d+, "x\.lock", O_RDONLY\|O_NOCTTY\|O_NONBLOCK\|O_NOFOLLOW\|O_CLOEXEC\) = \d+/,
                  FSTAT, *CYCLE, /\Aclose\(\d+\) = 0/], traced("per-use"))
  end

  def test_reused_lock_makes_the_minimum_system_calls
    assert_calls(CYCLE, traced("reused"))
  end

  def test_timed_uncontended_acquire_costs_what_an_untimed_one_costs
    assert_calls(CYCLE, traced("timed"))
  end

  def test_semaphore_with_255_of_256_held_makes_the_minimum_system_calls
    assert_calls(CYCLE, traced("semaphore"))
  end
end
