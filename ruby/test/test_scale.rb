# frozen_string_literal: true

require_relative "test_helper"

# Scale (issue 14): one verified namespace per process [XL-NS-16], so a lock object costs one
# descriptor; the per-use paths make the system calls the spec requires and no more; a counting
# semaphore's round starts at the remembered slot [XL-CSEM-5].
class TestScale < Minitest::Test
  # Opens 10,000 lock objects, each holding its lock (argv: namespace); prints how many it holds.
  TEN_THOUSAND = <<~'RUBY'
    require "xlock"
    locks = []
    begin
      10_000.times { |i| locks << XLock::Lock.new("lock-#{i}", namespace: ARGV[0]).tap(&:try_lock) }
    rescue XLock::Error => e
      warn e.message
    end
    puts locks.count(&:locked?)
  RUBY

  # 10,000 lock objects, each holding its lock, open at once in one process under `ulimit -n 10100`.
  def test_ten_thousand_objects_under_ulimit_10100
    out = IO.popen([RUBY, "-I", LIB, "-e", TEN_THOUSAND, @ns, { rlimit_nofile: 10_100, err: %i[child out] }],
                   &:read)
    assert_equal "10000", out.lines.last.to_s.strip, out
  end

  # Objects of one namespace share it [XL-NS-16].
  def test_objects_of_one_namespace_share_it
    a = track(XLock::Lock.new("a", namespace: @ns))
    b = track(XLock::Lock.new("b", namespace: @ns))
    assert_equal a.namespace_identity, b.namespace_identity
  end

  # One made writable without the sticky bit is refused before reuse [XL-NS-7, XL-NS-16].
  def test_namespace_made_writable_is_refused
    track(XLock::Lock.new("a", namespace: @ns))
    File.chmod(0o777, @ns)
    assert_raises(XLock::InsecureNamespace) { XLock::Lock.new("c", namespace: @ns) }
  ensure
    File.chmod(0o700, @ns)
  end

  # A directory replaced at the path is found by the lstat before reuse [XL-NS-16].
  def test_namespace_replaced_at_the_path_is_found
    a = track(XLock::Lock.new("a", namespace: @ns))
    File.rename(@ns, "#{@ns}.old")
    Dir.mkdir(@ns, 0o700)
    c = track(XLock::Lock.new("a", namespace: @ns))
    refute_equal a.namespace_identity, c.namespace_identity
    a.lock
    assert c.try_lock, "a's lock file is no longer at the path"
  end
end
