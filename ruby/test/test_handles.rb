# frozen_string_literal: true

require_relative "test_helper"

# What XLock::Lock, XLock::Semaphore and XLock::PosixSemaphore share: one handle type, timeouts, the
# namespace path and its sharing.
class TestHandles < Minitest::Test
  # The file mode of a namespace's files by its sharing [XL-NS-13].
  FILE_MODES = { private: 0o600, group_shared: 0o660, world_shared: 0o666 }.freeze

  def test_timeouts_too_large_or_infinite_wait_for_ever
    holder = new_lock
    holder.lock
    waiter = new_lock
    [Float::INFINITY, 1e300, 2**200, Rational(2**100, 3)].each do |timeout|
      thread = Thread.new { waiter.lock(timeout: timeout) }
      wait_until_blocked(thread)
      thread.raise(IOError, "enough")
      assert_raises(IOError) { thread.join }
    end
    refute waiter.locked?
  end

  def test_nan_timeout_is_invalid
    waiter = new_lock
    [Float::NAN, -Float::NAN].each do |nan|
      error = assert_raises(XLock::InvalidArgument) { waiter.lock(timeout: nan) }
      assert_includes error.message, "NaN"
    end
    sem = track(XLock::Semaphore.new("nan", 1, namespace: @ns))
    assert_raises(XLock::InvalidArgument) { sem.acquire(timeout: Float::NAN) }
    assert_equal 0, sem.held
    refute waiter.locked?
  end

  def test_namespace_path_loses_its_trailing_slashes_only
    # [XL-NS-14] trailing '/' removed, nothing else normalised
    lock = track(XLock::Lock.new("slash", namespace: "#{@ns}//"))
    assert_equal @ns, lock.namespace
    assert_equal File.join(@ns, "slash.lock"), lock.path
    assert_equal "#{@ns}/./slash.lock", track(XLock::Lock.new("slash", namespace: "#{@ns}/.")).path
  end

  # A lock, a counting semaphore and a raw semaphore of a new namespace with the directory mode +mode+.
  def objects_in_a_namespace_of_mode(mode)
    dir = mode_dir(mode)
    Dir.mkdir(dir)
    File.chmod(mode, dir)
    [XLock::Lock.new("s", namespace: dir), XLock::Semaphore.new("s", 1, namespace: dir),
     XLock::PosixSemaphore.new("s-#{Process.pid}", namespace: dir)].each { |o| track(o) }
  end

  def mode_dir(mode)
    File.join(@tmp, format("m%o", mode))
  end

  # [XL-NS-15] private, group- or world-shared.
  { 0o1770 => :group_shared, 0o1777 => :world_shared, 0o700 => :private }.each do |mode, sharing|
    define_method("test_namespace_of_mode_#{format('%o', mode)}_is_#{sharing}") do
      lock, sem, raw = objects_in_a_namespace_of_mode(mode)
      assert_equal [sharing] * 3, [lock, sem, raw].map(&:sharing), format("mode %o", mode)
      # The file mode of the namespace [XL-NS-13]: bell and lock file alike.
      file_mode = FILE_MODES.fetch(sharing)
      assert_equal([file_mode] * 2, [lock.bell, lock.path].map { |f| File.stat(f).mode & 0o777 })
    ensure
      raw&.close
      XLock.remove("s-#{Process.pid}", kind: :posix_semaphore, namespace: mode_dir(mode))
    end
  end

  def test_the_three_classes_share_one_handle_type
    lock = new_lock
    raw = track(XLock::PosixSemaphore.new("one-#{Process.pid}", value: 1, namespace: @ns))
    [lock, track(XLock::Semaphore.new("one", 1, namespace: @ns)), raw].each { |object| assert_handle(object) }
    assert_respond_to lock, :path
    refute_respond_to raw, :path
  ensure
    XLock.remove("one-#{Process.pid}", kind: :posix_semaphore, namespace: @ns)
  end

  # +object+ has its namespace's identity, synchronize, and the close of every handle.
  def assert_handle(object)
    stat = File.stat(@ns)
    assert_equal [stat.dev, stat.ino], object.namespace_identity
    assert_equal(:ok, object.synchronize { :ok })
    refute object.closed?
    object.close
    object.close
    assert object.closed?
    assert_raises(XLock::InvalidArgument) { object.synchronize { flunk } }
  end
end
