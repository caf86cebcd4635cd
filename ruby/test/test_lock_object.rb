# frozen_string_literal: true

require_relative "test_helper"

# The XLock::Lock object: close, introspection, its namespace, its lock file. Bad input: test_lock_input.rb.
class TestLockObject < Minitest::Test
  def test_close_releases_and_is_idempotent
    # [XL-HOLD-10]
    lock = new_lock
    lock.lock
    lock.close
    lock.close
    assert lock.closed?
    refute lock.locked?
    assert new_lock.try_lock
  end

  def test_closed_lock_refuses_to_lock_and_keeps_its_name
    lock = new_lock
    lock.close
    error = assert_raises(XLock::InvalidArgument) { lock.lock }
    assert_includes error.message, "closed"
    assert_equal "t", lock.name, "introspection still works after close"
  end

  # [XL-INTRO-1]
  def test_introspection_of_the_name
    lock = new_lock("Billing export")
    assert_equal "Billing export", lock.name
    assert_equal Encoding::UTF_8, lock.name.encoding
    assert_includes lock.inspect, lock.path
  end

  def test_introspection_of_the_paths
    lock = new_lock("Billing export")
    assert_equal File.realpath(@ns), File.realpath(lock.namespace)
    assert_equal File.join(lock.namespace, "!billing%20export.lock"), lock.path
    assert File.file?(lock.path)
  end

  def test_introspection_of_the_namespace
    lock = new_lock("Billing export")
    stat = File.stat(@ns)
    assert_equal [stat.dev, stat.ino], lock.namespace_identity
    assert_equal :private, lock.sharing # [XL-NS-15]
    assert_equal 0o600, File.stat(lock.bell).mode & 0o7777 # the file mode of a private namespace [XL-NS-13]
  end

  def test_introspection_of_the_bell
    lock = new_lock("Billing export")
    assert_equal File.join(lock.namespace, ".xlock-bell"), lock.bell # [XL-BELL-1]
    assert_equal XLock.bell_word(:lock, "Billing export"), lock.bell_word # [XL-SEM-7]
    assert_equal "usable", lock.bell_status
    assert_equal 4096, File.size(lock.bell)
  end

  def test_namespace_from_environment_and_default
    # [XL-NS-1]
    assert_equal @ns, namespace_in_child(@ns)
    assert_equal XLock.default_namespace, namespace_in_child(nil)
  end

  # The namespace of a lock opened without one in a child process whose XLOCK_NAMESPACE is +env+.
  def namespace_in_child(env)
    script = 'require "xlock"; l = XLock::Lock.new("envns"); puts l.namespace; l.close'
    IO.popen({ "XLOCK_NAMESPACE" => env }, [RUBY, "-I", LIB, "-e", script], &:read).chomp
  end

  def test_namespace_accepts_pathname
    require "pathname"
    assert_equal @ns, track(XLock::Lock.new("p", namespace: Pathname(@ns))).namespace
  end

  def test_insecure_lock_file_symlink_is_refused
    # [XL-LOCK-4]
    new_lock("x") # creates the namespace
    target = File.join(@tmp, "target")
    File.write(target, "keep")
    File.symlink(target, File.join(@ns, "link.lock"))
    error = assert_raises(XLock::InsecureNamespace) { XLock::Lock.new("link", namespace: @ns) }
    assert_equal "INSECURE_NAMESPACE", error.kind
    assert_equal "keep", File.read(target)
  end

  def test_remove_idle_lock_file
    # [XL-RM-2]
    removed_name(:l, "gone")
    lock = new_lock("gone")
    lock.lock
    assert_raises(XLock::WouldBlock) { XLock::Lock.remove("gone", namespace: @ns) }
    assert File.exist?(lock.path)
    lock.unlock
    assert_removed(lock)
  end

  # Removes the idle +lock+'s file, then finds nothing more to remove; the object reopens the path.
  def assert_removed(lock)
    assert_equal true, XLock::Lock.remove(lock.name, namespace: @ns)
    refute File.exist?(lock.path)
    assert_equal false, XLock::Lock.remove(lock.name, namespace: @ns)
    assert lock.try_lock, "a lock object reopens a removed path [XL-RM-4]"
    assert File.exist?(lock.path)
  end
end
