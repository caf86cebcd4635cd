# frozen_string_literal: true

require_relative "test_helper"

# spec/vectors/names.json, reproduced through the gem's pure mapping [XL-SEM-6]. errors.json:
# test_error_vectors.rb.
class TestVectors < Minitest::Test
  VECTORS = File.join(XLockTestHelper::REPO, "spec", "vectors")
  NAMES = JSON.parse(File.read(File.join(VECTORS, "names.json")))

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
        test_case["valid"] ? assert_maps(test_case, name, ns) : assert_refused(test_case, name, ns)
      end
    end
  end

  # XLock.map, semaphore_name and bell_word give the case's files and names in the +namespace+.
  def assert_maps(test_case, name, namespace)
    dev, ino = namespace.values_at("dev", "ino")
    mapping = XLock.map(name, dev: dev, ino: ino)
    assert_files(test_case, mapping)
    semaphores = test_case["semaphores"][namespace["id"]]
    assert_equal semaphores.transform_keys(&:to_sym), mapping.semaphores
    assert_equal semaphores["p"], XLock.semaphore_name(:posix_semaphore, dev, ino, name)
    assert_bell_words(test_case, name, mapping)
  end

  def assert_files(test_case, mapping)
    assert_equal test_case["lock_file"], mapping.lock_file
    assert_equal test_case["capacity_file"], mapping.capacity_file
    test_case["slot_files"].each { |slot, file| assert_equal file, mapping.slot_file(Integer(slot)) }
  end

  # [XL-SEM-7]
  def assert_bell_words(test_case, name, mapping)
    assert_equal test_case["bell_words"].transform_keys(&:to_sym), mapping.bell_words
    assert_equal test_case["bell_words"]["l"], XLock.bell_word(:lock, name)
    assert_equal test_case["bell_words"]["s"], XLock.bell_word("s", name)
  end

  def assert_refused(test_case, name, namespace)
    dev, ino = namespace.values_at("dev", "ino")
    error = assert_raises(XLock::InvalidName) { XLock.map(name, dev: dev, ino: ino) }
    assert_equal test_case["error"], error.kind
    assert_kind_of ArgumentError, error
    refute_empty error.message
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
