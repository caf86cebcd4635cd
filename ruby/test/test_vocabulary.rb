# frozen_string_literal: true

require_relative "test_helper"
require "open3"

# The spec's vocabulary, the same as the other bindings' (Python's xlock.semaphore_name(kind, dev, ino,
# name)), the order in which arguments are checked, and the old spellings kept as deprecated aliases while
# the gem is 0.x. XLock.remove(name, *, namespace, kind, capacity): test_remove.rb.
class TestVocabulary < Minitest::Test
  DEV = 2049
  INO = 131_073

  # Uses each deprecated spelling twice (argv: namespace); the test expects the warnings at lines 3 and 4.
  DEPRECATED = <<~RUBY
    require "xlock"
    lock = XLock::Lock.new("dep", namespace: ARGV[0])
    2.times { lock.doorbell }
    2.times { XLock.semaphore_name(:posix_semaphore, "dep", dev: 1, ino: 2) }
    lock.close
  RUBY

  # Each entry point, called with an invalid name and every other argument wrong too.
  BAD_NAME_CALLS = [
    ->(bad, _nowhere) { XLock::Lock.new(bad, namespace: 3) },
    ->(bad, nowhere) { XLock::Lock.new(bad, namespace: nowhere, shared: true, reentrant: true) },
    ->(bad, nowhere) { XLock::Semaphore.new(bad, "two", namespace: nowhere) },
    ->(bad, nowhere) { XLock::Semaphore.new(bad, 0, namespace: nowhere) },
    ->(bad, nowhere) { XLock::Semaphore.remove(bad, nil, namespace: nowhere) },
    ->(bad, nowhere) { XLock::PosixSemaphore.new(bad, value: -1, namespace: nowhere) },
    ->(bad, nowhere) { XLock.remove(bad, kind: :file, capacity: "x", namespace: nowhere) },
    ->(bad, _nowhere) { XLock.semaphore_name(:bogus, -1, nil, bad) },
    ->(bad, _nowhere) { XLock.map(bad, dev: -1, ino: nil) },
    ->(bad, _nowhere) { XLock.slot_file_name(bad, 5000) }
  ].freeze

  def test_semaphore_name_takes_kind_dev_ino_name
    # [XL-SEM-1, XL-SEM-6]
    name = XLock.semaphore_name(:posix_semaphore, DEV, INO, "billing-export")
    assert_match(%r{\A/xl1p[a-z2-7]{25}\z}, name)
    assert_equal name, XLock.semaphore_name("p", DEV, INO, "billing-export"),
                 "the spec's letter is a kind too"
    assert_equal name, XLock.map("billing-export", dev: DEV, ino: INO).semaphores[:p]
  end

  def test_semaphore_name_refuses_the_withdrawn_kinds
    # [XL-SEM-2]
    [:lock, :semaphore, "l", "s"].each do |withdrawn|
      error = assert_raises(XLock::InvalidArgument) { XLock.semaphore_name(withdrawn, DEV, INO, "a") }
      assert_includes error.message, "XL-SEM-2"
    end
  end

  def test_semaphore_name_checks_its_arguments
    assert_raises(XLock::InvalidArgument) { XLock.semaphore_name(:bogus, DEV, INO, "a") }
    assert_raises(XLock::InvalidArgument) { XLock.semaphore_name("x", DEV, INO, "a") }
    assert_raises(XLock::InvalidArgument) { XLock.semaphore_name(:posix_semaphore, -1, INO, "a") }
    assert_raises(ArgumentError) { XLock.semaphore_name(:posix_semaphore, DEV, "a") }
  end

  def test_the_old_semaphore_name_order_is_a_deprecated_alias
    capture_io do # the warning itself: test_deprecated_spellings_warn_once_at_the_caller_as_deprecated
      assert_equal XLock.semaphore_name(:posix_semaphore, DEV, INO, "old"),
                   XLock.semaphore_name(:posix_semaphore, "old", dev: DEV, ino: INO)
    end
  end

  def test_deprecated_spellings_warn_once_at_the_caller_as_deprecated
    _out, err, status = Open3.capture3(RUBY, "-W:deprecated", "-I", LIB, "-e", DEPRECATED, @ns)
    assert status.success?, err
    lines = err.lines
    assert_equal 2, lines.size, err
    assert_match(/\A-e:3: warning: xlock: XLock::Lock#doorbell is deprecated .*; use XLock::Lock#bell_word$/,
                 lines[0])
    assert_match(/\A-e:4: warning: xlock: XLock\.semaphore_name\(kind, name, dev:, ino:\) is deprecated/,
                 lines[1])
  end

  def test_deprecated_spellings_are_silent_by_default
    # Without -W:deprecated (Ruby's default) the aliases are silent.
    _out, err, status = Open3.capture3(RUBY, "-I", LIB, "-e", DEPRECATED, @ns)
    assert status.success?, err
    assert_empty err
  end

  def test_the_name_is_checked_before_every_other_argument
    # [XL-NAME-6]: INVALID_NAME first, then INVALID_ARGUMENT, all before any file-system operation.
    nowhere = File.join(@tmp, "never-made")
    BAD_NAME_CALLS.each_with_index do |call, i|
      error = assert_raises(XLock::InvalidName, "call #{i}") { call.call("a\u0001b", nowhere) }
      assert_equal "INVALID_NAME", error.kind
    end
    refute File.exist?(nowhere)
  end
end
