# frozen_string_literal: true

require_relative "test_helper"

# Removing a counting semaphore's files [XL-RM-3]: only when idle, with the capacity its file states.
class TestSemaphoreRemoval < Minitest::Test
  def semaphore(name, capacity)
    track(XLock::Semaphore.new(name, capacity, namespace: @ns))
  end

  def test_remove_semaphore_files
    # [XL-RM-3]
    removed_name(:s, "rm")
    sem = semaphore("rm", 2)
    sem.acquire
    assert_raises(XLock::WouldBlock) { XLock::Semaphore.remove("rm", 2, namespace: @ns) }
    sem.release
    sem.close
    assert_equal true, XLock::Semaphore.remove("rm", 2, namespace: @ns)
    refute File.exist?(File.join(@ns, "rm.sem"))
    assert_equal false, XLock::Semaphore.remove("rm", 2, namespace: @ns)
  end

  def test_remove_takes_the_capacity_from_the_file
    # [XL-RM-3, XL-RM-7]
    removed_name(:s, "rm3")
    semaphore("rm3", 3).close
    assert_raises(XLock::CapacityMismatch) { XLock::Semaphore.remove("rm3", 2, namespace: @ns) }
    assert File.exist?(File.join(@ns, "rm3.sem")), "a mismatch removed something"
    assert_equal true, XLock.remove("rm3", kind: :semaphore, namespace: @ns)
    refute File.exist?(File.join(@ns, "rm3.sem"))
    assert_equal false, XLock.remove("rm3", kind: :semaphore, namespace: @ns)
  end

  def test_remove_refuses_a_malformed_capacity_file
    # Decided: CAPACITY_MISMATCH naming the file; nothing is removed [XL-RM-3].
    removed_name(:s, "bad")
    sem = semaphore("bad", 2)
    sem.synchronize { nil } # creates slot 0
    sem.close
    path = File.join(@ns, "bad.sem")
    File.write(path, "not a capacity\n")
    error = assert_raises(XLock::CapacityMismatch) { XLock.remove("bad", kind: :semaphore, namespace: @ns) }
    assert_includes error.message, path
    assert File.exist?(path)
    assert File.exist?(File.join(@ns, "bad.0.slot"))
  end
end
