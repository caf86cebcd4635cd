# frozen_string_literal: true

# Shared by every test: the gem from this checkout (lib/ with the extension built by bin/build-ext), a
# fresh private namespace per test, and helpers for child processes and blocked waiters (helpers/).
# Synchronisation is by pipes and by observing the waiter (its thread status and the system call it sleeps
# in), never by sleeping.
$LOAD_PATH.unshift(File.expand_path("../lib", __dir__))
require "minitest/autorun"
require "tmpdir"
require "fileutils"
require "json"
require "rbconfig"
require "xlock"

Thread.report_on_exception = false # tests check thread outcomes with Thread#value

# The processes the tests start get SIGINT, SIGQUIT and SIGHUP at their defaults, as from an interactive
# shell, whatever the runner's were: a background job of a script starts with SIGINT and SIGQUIT ignored,
# nohup ignores SIGHUP, and an ignored disposition is inherited across exec (Ruby then keeps it ignored,
# and the Ctrl-C tests would wait for ever). A handler is reset at exec; this one does nothing, so the
# runner itself still ignores them.
%w[INT QUIT HUP].each do |sig|
  previous = Signal.trap(sig) { nil }
  Signal.trap(sig, previous) unless previous == "IGNORE"
end

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

  # A lock in this test's namespace, closed at teardown.
  def new_lock(name = "t", **options)
    track(XLock::Lock.new(name, namespace: @ns, **options))
  end

  def track(object)
    @objects << object
    object
  end
end

require_relative "helpers/no_doorbells"
require_relative "helpers/waits"
require_relative "helpers/children"

module Minitest
  class Test
    include XLockTestHelper
    include XLockTestHelper::NoDoorbells
    include XLockTestHelper::Waits
    include XLockTestHelper::Children
  end
end
