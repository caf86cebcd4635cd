# frozen_string_literal: true

require_relative "test_helper"

# spec/vectors/names.json and errors.json, reproduced through the gem's pure mapping [XL-SEM-6] and its
# error classes [XL-ERR-1].
class TestVectors < Minitest::Test
  VECTORS = File.join(XLockTestHelper::REPO, "spec", "vectors")
  NAMES = JSON.parse(File.read(File.join(VECTORS, "names.json")))
  ERRORS = JSON.parse(File.read(File.join(VECTORS, "errors.json")))

  # The name of a case as a Ruby String: the text, or for names JSON cannot carry (lone surrogates) the
  # bytes of name_utf8_hex, forced to UTF-8 (an invalid String, as a user could build one).
  def self.name_of(test_case)
    return test_case["name"] unless test_case["name"].nil?

    [test_case["name_utf8_hex"]].pack("H*").force_encoding(Encoding::UTF_8)
  end

  NAMES["cases"].each_with_index do |test_case, index|
    define_method("test_names_#{index.to_s.rjust(2, '0')}_#{test_case['description'].gsub(/\W+/, '_')}") do
      name = self.class.name_of(test_case)
      assert_equal test_case["name_utf8_hex"], name.unpack1("H*"), "the test builds the case's bytes"
      NAMES["namespaces"].each do |ns|
        if test_case["valid"]
          mapping = XLock.map(name, dev: ns["dev"], ino: ns["ino"])
          assert_equal test_case["lock_file"], mapping.lock_file
          assert_equal test_case["capacity_file"], mapping.capacity_file
          test_case["slot_files"].each { |slot, file| assert_equal file, mapping.slot_file(Integer(slot)) }
          expected = test_case["semaphores"][ns["id"]].transform_keys(&:to_sym)
          assert_equal expected, mapping.semaphores
          assert_equal test_case["semaphores"][ns["id"]]["p"],
                       XLock.semaphore_name(:posix_semaphore, ns["dev"], ns["ino"], name)
          assert_equal test_case["bell_words"].transform_keys(&:to_sym), mapping.bell_words # [XL-SEM-7]
          assert_equal test_case["bell_words"]["l"], XLock.bell_word(:lock, name)
          assert_equal test_case["bell_words"]["s"], XLock.bell_word("s", name)
        else
          error = assert_raises(XLock::InvalidName) { XLock.map(name, dev: ns["dev"], ino: ns["ino"]) }
          assert_equal test_case["error"], error.kind
          assert_kind_of ArgumentError, error
          refute_empty error.message
        end
      end
    end
  end

  def test_invalid_names_are_refused_before_touching_the_namespace
    NAMES["cases"].reject { |c| c["valid"] }.each do |test_case|
      name = self.class.name_of(test_case)
      error = assert_raises(XLock::InvalidName, test_case["description"]) do
        XLock::Lock.new(name, namespace: @ns)
      end
      assert_match(/XL-NAME-\d|name/i, error.message)
      refute File.exist?(@ns), "an invalid name created the namespace [XL-NAME-3]"
    end
  end

  def test_every_error_kind_has_its_class_with_its_kind
    ERRORS["errors"].each do |entry|
      klass = XLock.const_get(entry["ruby"])
      assert_same klass, XLock.error_class(entry["kind"])
      assert_equal entry["kind"], klass::KIND
      error = klass.new("message")
      assert_equal entry["kind"], error.kind
      assert_kind_of XLock::Error, error
      assert_kind_of StandardError, error
    end
    assert_equal ERRORS["errors"].size, ERRORS["errors"].map { |e| e["ruby"] }.uniq.size
  end

  def test_errors_subclass_the_builtins_ruby_users_rescue
    assert_operator XLock::Timeout, :<, ::Timeout::Error
    assert_operator XLock::InvalidName, :<, ArgumentError
    assert_operator XLock::InvalidArgument, :<, ArgumentError
    assert_operator XLock::CapacityMismatch, :<, ArgumentError
    assert_operator XLock::NotHeld, :<, ThreadError
    assert_operator XLock::AlreadyHeld, :<, ThreadError
  end

  def test_libxlock_raises_each_error_as_its_class
    # Each line provokes one kind through libxlock itself, so the C-code-to-class mapping is exercised.
    lock = new_lock
    assert_raises(XLock::NotHeld) { lock.unlock }
    lock.lock
    assert_raises(XLock::AlreadyHeld) { lock.lock }
    other = new_lock
    assert_raises(XLock::Timeout) { other.lock(timeout: 0) }
    assert_raises(XLock::InvalidName) { new_lock("") }
    assert_raises(XLock::InvalidArgument) { XLock::Lock.new("x", namespace: "relative/path") }
    assert_raises(XLock::CapacityMismatch) do
      track(XLock::Semaphore.new("s", 2, namespace: @ns))
      track(XLock::Semaphore.new("s", 3, namespace: @ns))
    end
    FileUtils.mkdir_p(File.join(@tmp, "open"))
    File.chmod(0o777, File.join(@tmp, "open"))
    assert_raises(XLock::InsecureNamespace) { XLock::Lock.new("x", namespace: File.join(@tmp, "open")) }
    error = assert_raises(XLock::OSError) do
      XLock::Lock.new("x", namespace: File.join(@tmp, "missing", "ns"))
    end
    assert_equal Errno::ENOENT::Errno, error.errno
  end

  def test_map_checks_its_arguments
    assert_raises(XLock::InvalidArgument) { XLock.map("a", dev: -1, ino: 1) }
    assert_raises(XLock::InvalidArgument) { XLock.map("a", dev: 1, ino: 1 << 64) }
    assert_raises(XLock::InvalidArgument) { XLock.map("a", dev: "1", ino: 1) }
    assert_raises(XLock::InvalidName) { XLock.map(:a, dev: 1, ino: 1) }
    assert_raises(XLock::InvalidArgument) { XLock.slot_file_name("a", 1000) }
    assert_equal "a.999.slot", XLock.slot_file_name("a", 999)
  end

  def test_names_in_other_encodings_are_transcoded_not_reinterpreted
    latin1 = "caf\xE9".dup.force_encoding(Encoding::ISO_8859_1)
    assert_equal XLock.lock_file_name("café"), XLock.lock_file_name(latin1)
    assert_equal "caf%c3%a9.lock", XLock.lock_file_name(latin1)
  end

  def test_default_namespace_is_per_euid
    assert_equal "/tmp/xlock-#{Process.euid}", XLock.default_namespace
  end
end
