# frozen_string_literal: true

require_relative "test_helper"

# Bad input to XLock::Lock raises a typed error; a lock object cannot be copied.
class TestLockInput < Minitest::Test
  def test_bad_names_raise_invalid_name
    [nil, 42, "x" * 81, "a\0b"].each do |name|
      assert_raises(XLock::InvalidName) { XLock::Lock.new(name, namespace: @ns) }
    end
  end

  def test_bad_namespaces_raise_invalid_argument
    ["", "rel", 3].each do |namespace|
      assert_raises(XLock::InvalidArgument) { XLock::Lock.new("x", namespace: namespace) }
    end
    error = assert_raises(XLock::InvalidArgument) { XLock::Lock.new("x", namespace: "/tmp/a\0b") }
    assert_includes error.message, "NUL"
  end

  def test_bad_timeouts_raise_typed_errors
    lock = new_lock
    assert_raises(XLock::InvalidArgument) { lock.lock(timeout: "1") }
    assert_raises(XLock::InvalidArgument) { lock.lock(timeout: Float::NAN) }
    assert_raises(ArgumentError) { lock.lock(wait: 1) }
    refute lock.locked?
  end

  def test_objects_cannot_be_copied
    assert_raises(TypeError) { new_lock.dup }
    assert_raises(TypeError) { new_lock.clone }
    assert_raises(TypeError) { track(XLock::Semaphore.new("s", 1, namespace: @ns)).dup }
    assert_raises(TypeError) { Marshal.dump(new_lock) }
  end
end
