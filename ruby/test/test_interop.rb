# frozen_string_literal: true

require_relative "test_helper"
require "open3"

# A lock taken in Ruby is the same lock for libxlock (a tiny C program compiled from c/src), for the
# Python package and for Ruby's own File#flock [XL-LOCK-11, XL-FOREIGN-1].
class TestInterop < Minitest::Test
  C_PROBE = <<~C
    /* Opens a lock (argv: namespace name shared) and tries it once; prints OK or the error kind. */
    #include <stdio.h>
    #include <stdlib.h>
    #include <xlock.h>
    int main(int argc, char **argv)
    {
        xlock_options opts;
        xlock_t *l;
        int rc;
        if (argc != 4) return 2;
        xlock_options_init(&opts);
        opts.namespace_path = argv[1];
        opts.shared = atoi(argv[3]);
        rc = xlock_open(&l, argv[2], &opts);
        if (rc == 0) rc = xlock_try_acquire(l);
        printf("%s\\n", rc == 0 ? "OK" : xlock_errname(rc));
        xlock_close(l);
        return 0;
    }
  C

  # Compiles the probe once per run, from libxlock's own sources.
  def self.c_probe
    @c_probe ||= begin
      dir = Dir.mktmpdir("xlock-rb-probe-")
      at_exit { FileUtils.rm_rf(dir) }
      compile_c_probe(dir)
    end
  end

  # Compiles C_PROBE in +dir+; the executable.
  def self.compile_c_probe(dir)
    source = File.join(dir, "probe.c")
    File.write(source, C_PROBE)
    c = File.join(XLockTestHelper::REPO, "c")
    exe = File.join(dir, "probe")
    out, status = Open3.capture2e("cc", "-std=gnu11", "-O1", "-I#{c}/include", "-I#{c}/src", source,
                                  *Dir["#{c}/src/*.c"], "-o", exe, "-pthread")
    raise "compiling the C probe failed:\n#{out}" unless status.success?

    exe
  end

  def c_try(name, shared: false)
    out, status = Open3.capture2(self.class.c_probe, @ns, name, shared ? "1" : "0")
    assert status.success?
    out.chomp
  end

  def test_libxlock_sees_a_ruby_lock
    lock = new_lock("interop-c")
    lock.lock
    assert_equal "WOULD_BLOCK", c_try("interop-c")
    assert_equal "WOULD_BLOCK", c_try("interop-c", shared: true)
    lock.unlock
    assert_equal "OK", c_try("interop-c")
    shared = new_lock("interop-c", shared: true)
    shared.lock
    assert_equal "OK", c_try("interop-c", shared: true)
    assert_equal "WOULD_BLOCK", c_try("interop-c")
  end

  PYTHON_PATH = File.join(XLockTestHelper::REPO, "python", "src")
  PYTHON_PROBE = <<~PY
    import sys, xlock
    lock = xlock.Lock(sys.argv[2], namespace=sys.argv[1], shared=sys.argv[3] == "1")
    try:
        # The threading protocol (issue 15): False when held elsewhere; an older package raised WouldBlock.
        print("OK" if lock.acquire(blocking=False) is not False else "WouldBlock")
    except xlock.XLockError as e:
        print(type(e).__name__)
  PY

  def python_try(name, shared: false)
    env = { "PYTHONPATH" => PYTHON_PATH }
    _, status = Open3.capture2e(env, "python3", "-c", "import xlock")
    unless status.success?
      skip "the Python package does not import (PYTHONPATH=#{PYTHON_PATH}): cross-check with Python skipped"
    end
    out, err, status = Open3.capture3(env, "python3", "-c", PYTHON_PROBE, @ns, name, shared ? "1" : "0")
    assert status.success?, err
    out.chomp
  end

  def test_python_sees_a_ruby_lock
    lock = new_lock("interop-py")
    lock.lock
    assert_equal "WouldBlock", python_try("interop-py")
    lock.unlock
    assert_equal "OK", python_try("interop-py")
    shared = new_lock("interop-py", shared: true)
    shared.lock
    assert_equal "OK", python_try("interop-py", shared: true)
    assert_equal "WouldBlock", python_try("interop-py")
  end

  EXCLUSIVE_NB = File::LOCK_EX | File::LOCK_NB

  def test_ruby_file_flock_excludes_with_xlock
    # [XL-LOCK-11]
    lock = new_lock("foreign")
    File.open(lock.path, "r") do |file|
      assert_equal 0, file.flock(EXCLUSIVE_NB)
      refute lock.try_lock
      waiter = Thread.new { lock.lock(timeout: 30) }
      wait_until_blocked(waiter)
      file.flock(File::LOCK_UN) # rings no bell: the safety poll notices it [XL-WAIT-7]
      assert_same lock, waiter.value
      assert_equal false, file.flock(EXCLUSIVE_NB)
    end
  end
end
