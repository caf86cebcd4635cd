# frozen_string_literal: true

require_relative "test_helper"
require_relative "helpers/driver"

# Malformed requests to exe/xlock-driver get BAD_REQUEST (or the library's error) and the driver serves
# on; the draft-2 decisions of PROTOCOL.md: exact types, one name form, the counter file's format.
class TestDriverRequests < Minitest::Test
  include XLockTestHelper::Driver

  def test_lines_that_are_not_json_objects_are_bad_requests
    s = session
    # JSON that is not an object, an array among them (the driver used to die on one) [PROTOCOL.md]
    ["not json", "[1]", "7", '"exit"', "null"].each do |line|
      assert_equal({ "id" => nil, "ok" => false, "error" => "BAD_REQUEST" },
                   s.send_line(line).slice("id", "ok", "error"), line)
    end
    assert ok?(s, "hello", protocol: 1)
  end

  def test_bad_requests_keep_the_driver_serving
    s = session
    assert_equal "BAD_REQUEST", error_of(s, "frobnicate")
    assert_equal "BAD_REQUEST", error_of(s, "open", kind: "lock")
    assert_equal "BAD_REQUEST", error_of(s, "open", kind: "lock", name: 5)
    assert_equal "BAD_REQUEST", error_of(s, "acquire", handle: "h99")
    assert_equal "BAD_REQUEST", error_of(s, "map", name: "a", dev: "x", ino: 1)
    assert ok?(s, "hello", protocol: 1)
  end

  def test_bad_names_and_namespaces_get_the_librarys_errors
    s = session
    assert_equal "INVALID_NAME", error_of(s, "open", kind: "lock", name: "", namespace: @ns)
    assert_equal "INVALID_NAME", error_of(s, "open", kind: "lock", name_hex: "61eda080", namespace: @ns)
    assert_equal "INVALID_ARGUMENT", error_of(s, "open", kind: "lock", name: "a", namespace: "relative")
    assert ok?(s, "hello", protocol: 1)
  end

  def test_hello_protocol_is_exactly_the_integer_1
    s = session
    [2, 1.0, "1", true, nil].each do |protocol|
      assert_equal "BAD_REQUEST", error_of(s, "hello", protocol: protocol),
                   "hello protocol #{protocol.inspect}"
    end
  end

  def test_ids_are_integers
    s = session
    reply = s.send_line('{"id":"7","op":"hello","protocol":1}')
    assert_equal [nil, "BAD_REQUEST"], [reply["id"], reply["error"]], "a string id"
    assert_equal "BAD_REQUEST", s.send_line('{"id":1.5,"op":"hello","protocol":1}')["error"]
  end

  def test_map_takes_one_name_form
    s = session
    assert_equal "BAD_REQUEST", error_of(s, "map", name: "a", name_hex: "61", dev: 1, ino: 1),
                 "name and name_hex"
    assert_equal "BAD_REQUEST", error_of(s, "map", name_hex: "616", dev: 1, ino: 1), "odd name_hex"
  end

  def test_timeout_ms_is_an_integer
    s = session
    h = open_lock(s, "types")
    [1.5, 1e3, true, "10"].each do |timeout|
      assert_equal "BAD_REQUEST", error_of(s, "acquire", handle: h, timeout_ms: timeout),
                   "timeout_ms #{timeout.inspect}"
    end
    refute s.call("locked", handle: h)["locked"]
  end

  def test_timeout_ms_beyond_any_deadline_is_untimed
    s = session
    h = open_lock(s, "types")
    assert ok?(s, "acquire", handle: h, timeout_ms: 10**30), "a timeout_ms beyond any deadline is untimed"
    assert ok?(s, "release", handle: h)
    assert ok?(s, "acquire", handle: h, timeout_ms: -(10**30)), "a negative timeout_ms is untimed"
  end

  # The error kind of opening the semaphore "t" with +capacity+ in +driver+.
  def capacity_error(driver, capacity)
    error_of(driver, "open", kind: "semaphore", name: "t", namespace: @ns, capacity: capacity)
  end

  def test_capacity_is_an_integer_in_range
    s = session
    assert_equal "BAD_REQUEST", capacity_error(s, 2.0)
    assert_equal "INVALID_ARGUMENT", capacity_error(s, 10**30)
    assert_equal "INVALID_ARGUMENT", capacity_error(s, 0)
  end

  def test_value_is_an_integer_in_range
    s = session
    assert_equal "BAD_REQUEST",
                 error_of(s, "open", kind: "posix_semaphore", name: "t", namespace: @ns, value: "1")
    error = s.call("open", kind: "posix_semaphore", name: "t", namespace: @ns, value: 10**30)
    assert_equal "INVALID_ARGUMENT", error["error"]
    assert_includes error["message"], (10**30).to_s, "the value as given"
  end

  def test_increment_reads_decimal_with_or_without_newline
    s = session
    counter = File.join(@tmp, "counter")
    File.write(counter, "")
    assert_equal 1, s.call("increment", path: counter)["value"]
    File.write(counter, "41")
    assert_equal 42, s.call("increment", path: counter)["value"]
    assert_equal "42\n", File.read(counter)
    assert_equal 43, s.call("increment", path: counter)["value"]
  end

  def test_increment_leaves_a_malformed_counter_file_alone
    s = session
    counter = File.join(@tmp, "counter")
    ["4 2", "-1", "+1", "1_000", "0x10", "7\n\n", " 7", "seven"].each do |text|
      File.write(counter, text)
      assert_equal "BAD_REQUEST", error_of(s, "increment", path: counter), text.inspect
      assert_equal text, File.read(counter), "a malformed counter file is left alone"
    end
  end
end
