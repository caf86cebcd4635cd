# frozen_string_literal: true

require_relative "test_helper"

# spec/vectors/errors.json reproduced through the gem's error classes [XL-ERR-1], and libxlock's errors
# raised as those classes.
class TestErrorVectors < Minitest::Test
  ERRORS = JSON.parse(File.read(File.join(XLockTestHelper::REPO, "spec", "vectors", "errors.json")))

  def test_every_error_kind_has_its_class_with_its_kind
    ERRORS["errors"].each { |entry| assert_error_class(entry["kind"], XLock.const_get(entry["ruby"])) }
    assert_equal ERRORS["errors"].size, ERRORS["errors"].map { |e| e["ruby"] }.uniq.size
  end

  def assert_error_class(kind, klass)
    assert_same klass, XLock.error_class(kind)
    assert_equal kind, klass::KIND
    error = klass.new("message")
    assert_equal kind, error.kind
    assert_kind_of XLock::Error, error
    assert_kind_of StandardError, error
  end

  def test_errors_subclass_the_builtins_ruby_users_rescue
    assert_operator XLock::Timeout, :<, ::Timeout::Error
    assert_operator XLock::InvalidName, :<, ArgumentError
    assert_operator XLock::InvalidArgument, :<, ArgumentError
    assert_operator XLock::CapacityMismatch, :<, ArgumentError
    assert_operator XLock::NotHeld, :<, ThreadError
    assert_operator XLock::AlreadyHeld, :<, ThreadError
  end

  # Each line of the next three tests provokes one kind through libxlock itself, so the C-code-to-class
  # mapping is exercised.
  def test_libxlock_raises_the_holding_errors_as_their_classes
    lock = new_lock
    assert_raises(XLock::NotHeld) { lock.unlock }
    lock.lock
    assert_raises(XLock::AlreadyHeld) { lock.lock }
    other = new_lock
    assert_raises(XLock::Timeout) { other.lock(timeout: 0) }
  end

  def test_libxlock_raises_the_argument_errors_as_their_classes
    assert_raises(XLock::InvalidName) { new_lock("") }
    assert_raises(XLock::InvalidArgument) { XLock::Lock.new("x", namespace: "relative/path") }
    assert_raises(XLock::CapacityMismatch) do
      track(XLock::Semaphore.new("s", 2, namespace: @ns))
      track(XLock::Semaphore.new("s", 3, namespace: @ns))
    end
  end

  def test_libxlock_raises_the_namespace_errors_as_their_classes
    FileUtils.mkdir_p(File.join(@tmp, "open"))
    File.chmod(0o777, File.join(@tmp, "open"))
    assert_raises(XLock::InsecureNamespace) { XLock::Lock.new("x", namespace: File.join(@tmp, "open")) }
    error = assert_raises(XLock::OSError) do
      XLock::Lock.new("x", namespace: File.join(@tmp, "missing", "ns"))
    end
    assert_equal Errno::ENOENT::Errno, error.errno
  end
end
