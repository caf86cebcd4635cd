# frozen_string_literal: true

require_relative "test_helper"
require_relative "helpers/driver"

# exe/xlock-driver's semaphores, name mapping, counter and cycle (conformance/PROTOCOL.md).
class TestDriverSemaphores < Minitest::Test
  include XLockTestHelper::Driver

  NAMES = JSON.parse(File.read(File.join(XLockTestHelper::REPO, "spec", "vectors", "names.json")))
  RAW = "raw-#{Process.pid}".freeze

  def test_map_reproduces_a_vector
    ns = NAMES["namespaces"].first
    s = session
    NAMES["cases"].each do |c|
      reply = s.call("map", name_hex: c["name_utf8_hex"], dev: ns["dev"], ino: ns["ino"])
      if c["valid"]
        assert_mapping(c, ns["id"], reply)
      else
        assert_equal "INVALID_NAME", reply["error"], c["description"]
      end
    end
  end

  # The map +reply+ holds the +vector+ case's files and names for the namespace +ns_id+.
  def assert_mapping(vector, ns_id, reply)
    assert reply["ok"], "#{vector['description']}: #{reply.inspect}"
    assert_equal vector["lock_file"], reply["lock_file"]
    assert_equal vector["slot_files"], reply["slot_files"]
    assert_equal vector["semaphores"][ns_id], reply["semaphores"]
    assert_equal vector["bell_words"], reply["bell_words"]
  end

  def test_semaphore_slots_and_capacity
    s = session
    sem = s.call("open", kind: "semaphore", name: "pool", namespace: @ns, capacity: 2)["handle"]
    assert_equal 0, s.call("acquire", handle: sem)["slot"]
    assert_equal 1, s.call("try_acquire", handle: sem)["slot"]
    assert_equal "WOULD_BLOCK", error_of(s, "try_acquire", handle: sem)
    assert_equal "CAPACITY_MISMATCH",
                 error_of(s, "open", kind: "semaphore", name: "pool", namespace: @ns, capacity: 3)
  end

  def open_raw(driver, **value)
    driver.call("open", kind: "posix_semaphore", name: RAW, namespace: @ns, **value)
  end

  def test_posix_semaphore_open_reports_only_its_name
    psem = open_raw(session, value: 1)
    assert_nil psem["path"]
    assert_equal [nil, nil], [psem["bell"], psem["bell_word"]]
    assert_match(%r{\A/xl1p[a-z2-7]{25}\z}, psem["semaphore"])
  ensure
    XLock.remove(RAW, kind: :posix_semaphore, namespace: @ns)
  end

  def test_posix_semaphore_acquire_has_no_slot
    s = session
    h = open_raw(s, value: 1)["handle"]
    assert_nil s.call("acquire", handle: h, timeout_ms: 0)["slot"]
    assert ok?(s, "release", handle: h)
  ensure
    XLock.remove(RAW, kind: :posix_semaphore, namespace: @ns)
  end

  def test_posix_semaphore_close_gives_its_permit_back
    s = session
    h = open_raw(s, value: 1)["handle"]
    assert ok?(s, "try_acquire", handle: h)
    assert ok?(s, "close", handle: h) # the protocol's close gives the permit back
    assert ok?(s, "try_acquire", handle: open_raw(s)["handle"]), "close kept the raw semaphore's permit"
    assert_removed(s, kind: "posix_semaphore", name: RAW)
  ensure
    XLock.remove(RAW, kind: :posix_semaphore, namespace: @ns)
  end

  def test_counter_and_cycle
    removed_name(:l, "c")
    s = session
    counter = File.join(@tmp, "counter")
    assert_equal 1, s.call("increment", path: counter)["value"]
    lock = open_lock(s, "c")
    assert_equal 50, s.call("cycle", handle: lock, count: 50, path: counter, timeout_ms: nil)["count"]
    assert_equal "51\n", File.read(counter), "the counter file is decimal digits and a newline"
    assert_removed(s, kind: "lock", name: "c")
  end
end
