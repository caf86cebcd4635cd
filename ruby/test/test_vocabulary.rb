# frozen_string_literal: true

require_relative "test_helper"
require "open3"

# The spec's vocabulary, the same as the other bindings' (Python's xlock.semaphore_name(kind, dev, ino,
# name), xlock.remove(name, *, namespace, kind, capacity)), the order in which arguments are checked, and
# the old spellings kept as deprecated aliases while the gem is 0.x.
class TestVocabulary < Minitest::Test
  DEV = 2049
  INO = 131_073

  def test_semaphore_name_takes_kind_dev_ino_name
    # [XL-SEM-1, XL-SEM-6]
    name = XLock.semaphore_name(:posix_semaphore, DEV, INO, "billing-export")
    assert_match(%r{\A/xl1p[a-z2-7]{25}\z}, name)
    assert_equal name, XLock.semaphore_name("p", DEV, INO, "billing-export"),
                 "the spec's letter is a kind too"
    assert_equal name, XLock.map("billing-export", dev: DEV, ino: INO).semaphores[:p]
    [:lock, :semaphore, "l", "s"].each do |withdrawn|
      error = assert_raises(XLock::InvalidArgument) { XLock.semaphore_name(withdrawn, DEV, INO, "a") }
      assert_includes error.message, "XL-SEM-2"
    end
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
    script = <<~RUBY
      require "xlock"
      lock = XLock::Lock.new("dep", namespace: ARGV[0])
      2.times { lock.doorbell }
      2.times { XLock.semaphore_name(:posix_semaphore, "dep", dev: 1, ino: 2) }
      lock.close
    RUBY
    _out, err, status = Open3.capture3(RUBY, "-W:deprecated", "-I", LIB, "-e", script, @ns)
    assert status.success?, err
    lines = err.lines
    assert_equal 2, lines.size, err
    assert_match(/\A-e:3: warning: xlock: XLock::Lock#doorbell is deprecated .*; use XLock::Lock#bell_word$/,
                 lines[0])
    assert_match(/\A-e:4: warning: xlock: XLock\.semaphore_name\(kind, name, dev:, ino:\) is deprecated/,
                 lines[1])
    # Without -W:deprecated (Ruby's default) the aliases are silent.
    _out, err, status = Open3.capture3(RUBY, "-I", LIB, "-e", script, @ns)
    assert status.success?, err
    assert_empty err
  end

  def test_remove_by_kind
    # [XL-RM-2, XL-RM-3, XL-PSEM-5]
    removed_name(:l, "rm-lock")
    removed_name(:s, "rm-sem")
    new_lock("rm-lock").close
    track(XLock::Semaphore.new("rm-sem", 2, namespace: @ns)).close
    raw = track(XLock::PosixSemaphore.new("rm-raw-#{Process.pid}", value: 1, namespace: @ns))
    assert_equal true, XLock.remove("rm-lock", namespace: @ns)
    assert_equal false, XLock.remove("rm-lock", kind: :lock, namespace: @ns)
    assert_equal true, XLock.remove("rm-sem", kind: :semaphore, capacity: 2, namespace: @ns)
    assert_equal false, XLock.remove("rm-sem", kind: "semaphore", capacity: 2, namespace: @ns)
    assert_equal true, XLock.remove(raw.name, kind: :posix_semaphore, namespace: @ns)
    assert_equal false, XLock.remove(raw.name, kind: "posix_semaphore", namespace: @ns)
    refute File.exist?(File.join(@ns, "rm-lock.lock"))
    refute File.exist?(File.join(@ns, "rm-sem.sem"))
  end

  def test_remove_refuses_held_files_and_bad_arguments
    held = new_lock("held")
    held.lock
    assert_raises(XLock::WouldBlock) { XLock.remove("held", namespace: @ns) }
    assert held.locked?
    assert_raises(XLock::InvalidArgument) { XLock.remove("x", kind: :semaphore, capacity: 0, namespace: @ns) }
    assert_raises(XLock::InvalidArgument) { XLock.remove("x", kind: :lock, capacity: 2, namespace: @ns) }
    assert_raises(XLock::InvalidArgument) { XLock.remove("x", kind: :file, namespace: @ns) }
  end

  def test_the_name_is_checked_before_every_other_argument
    # [XL-NAME-6]: INVALID_NAME first, then INVALID_ARGUMENT, all before any file-system operation.
    bad = "a\u0001b"
    nowhere = File.join(@tmp, "never-made")
    [
      -> { XLock::Lock.new(bad, namespace: 3) },
      -> { XLock::Lock.new(bad, namespace: nowhere, shared: true, reentrant: true) },
      -> { XLock::Semaphore.new(bad, "two", namespace: nowhere) },
      -> { XLock::Semaphore.new(bad, 0, namespace: nowhere) },
      -> { XLock::Semaphore.remove(bad, nil, namespace: nowhere) },
      -> { XLock::PosixSemaphore.new(bad, value: -1, namespace: nowhere) },
      -> { XLock.remove(bad, kind: :file, capacity: "x", namespace: nowhere) },
      -> { XLock.semaphore_name(:bogus, -1, nil, bad) },
      -> { XLock.map(bad, dev: -1, ino: nil) },
      -> { XLock.slot_file_name(bad, 5000) }
    ].each_with_index do |call, i|
      error = assert_raises(XLock::InvalidName, "call #{i}") { call.call }
      assert_equal "INVALID_NAME", error.kind
    end
    refute File.exist?(nowhere)
  end

  def test_timeouts_too_large_or_infinite_wait_for_ever_and_nan_is_invalid
    holder = new_lock
    holder.lock
    waiter = new_lock
    [Float::INFINITY, 1e300, 2**200, Rational(2**100, 3)].each do |timeout|
      thread = Thread.new { waiter.lock(timeout: timeout) }
      wait_until_blocked(thread)
      thread.raise(IOError, "enough")
      assert_raises(IOError) { thread.join }
    end
    [Float::NAN, -Float::NAN].each do |nan|
      error = assert_raises(XLock::InvalidArgument) { waiter.lock(timeout: nan) }
      assert_includes error.message, "NaN"
    end
    sem = track(XLock::Semaphore.new("nan", 1, namespace: @ns))
    assert_raises(XLock::InvalidArgument) { sem.acquire(timeout: Float::NAN) }
    assert_equal 0, sem.held
    refute waiter.locked?
  end

  def test_namespace_paths_and_sharing
    # [XL-NS-14] trailing '/' removed, nothing else normalised; [XL-NS-15] private, group- or world-shared.
    lock = track(XLock::Lock.new("slash", namespace: "#{@ns}//"))
    assert_equal @ns, lock.namespace
    assert_equal File.join(@ns, "slash.lock"), lock.path
    assert_equal "#{@ns}/./slash.lock", track(XLock::Lock.new("slash", namespace: "#{@ns}/.")).path
    { 0o1770 => :group_shared, 0o1777 => :world_shared, 0o700 => :private }.each do |mode, sharing|
      dir = File.join(@tmp, format("m%o", mode))
      Dir.mkdir(dir)
      File.chmod(mode, dir)
      objects = [XLock::Lock.new("s", namespace: dir), XLock::Semaphore.new("s", 1, namespace: dir),
                 XLock::PosixSemaphore.new("s-#{Process.pid}", namespace: dir)]
      objects.each { |o| track(o) }
      assert_equal [sharing] * 3, objects.map(&:sharing), format("mode %o", mode)
      # The file mode of the namespace [XL-NS-13]: bell and lock file alike.
      file_mode = { private: 0o600, group_shared: 0o660, world_shared: 0o666 }.fetch(sharing)
      assert_equal([file_mode] * 2, [objects[0].bell, objects[0].path].map { |f| File.stat(f).mode & 0o777 })
      objects.last.close
      XLock.remove("s-#{Process.pid}", kind: :posix_semaphore, namespace: dir)
    end
  end

  def test_the_three_classes_share_one_handle_type
    lock = new_lock
    sem = track(XLock::Semaphore.new("one", 1, namespace: @ns))
    raw = track(XLock::PosixSemaphore.new("one-#{Process.pid}", value: 1, namespace: @ns))
    [lock, sem, raw].each do |object|
      assert_equal [File.stat(@ns).dev, File.stat(@ns).ino], object.namespace_identity
      assert_equal(:ok, object.synchronize { :ok })
      refute object.closed?
      object.close
      object.close
      assert object.closed?
      assert_raises(XLock::InvalidArgument) { object.synchronize { flunk } }
    end
    assert_respond_to lock, :path
    refute_respond_to raw, :path
  ensure
    XLock.remove("one-#{Process.pid}", kind: :posix_semaphore, namespace: @ns)
  end
end
