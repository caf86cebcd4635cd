# frozen_string_literal: true

require_relative "test_helper"
require "open3"

# exe/xlock-driver speaks conformance/PROTOCOL.md: checked here line by line, against a second Ruby
# driver, and against libxlock's own driver (c/build/xlock-driver) when it is built.
class TestDriver < Minitest::Test
  DRIVER = [XLockTestHelper::RUBY, "-I", XLockTestHelper::LIB,
            File.join(XLockTestHelper::RUBY_DIR, "exe", "xlock-driver")].freeze
  C_DRIVER = File.join(XLockTestHelper::REPO, "c", "build", "xlock-driver")

  # A running driver: #call sends a request and returns the reply.
  class Session
    attr_reader :pid

    def initialize(command)
      @stdin, @stdout, @stderr, @thread = Open3.popen3(*command)
      @pid = @thread.pid
      @id = 0
    end

    def call(op, **args)
      send_line(JSON.generate({ "id" => @id += 1, "op" => op }.merge(args.transform_keys(&:to_s))))
    end

    def send_line(line)
      @stdin.puts(line)
      @stdin.flush
      reply = @stdout.gets or raise "the driver ended: #{@stderr.read}"
      JSON.parse(reply)
    end

    def close
      @stdin.close unless @stdin.closed?
      status = @thread.value
      [@stdout, @stderr].each(&:close)
      status
    end
  end

  def session(command = DRIVER)
    s = Session.new(command)
    @sessions = (@sessions || []) << s
    s
  end

  def teardown
    (@sessions || []).each(&:close)
    super
  end

  def pg_gem?
    require "pg"
    true
  rescue LoadError
    false
  end

  def test_hello_claims_capabilities_and_pid
    s = session
    reply = s.send_line('{"id":0,"op":"hello","protocol":1}')
    assert_equal 0, reply["id"]
    assert reply["ok"]
    assert_equal "ruby", reply["implementation"]
    assert_equal "xlock/1", reply["spec"]
    assert_equal s.pid, reply["pid"]
    expected = %w[clock counter fork lock map posix_semaphore remove reentrant semaphore shared timeout]
    expected << "pg" if pg_gem? # PostgreSQL namespaces with the pg gem [spec §16]
    assert_equal expected.sort, reply["capabilities"].sort
  end

  # The forked child holds nothing [XL-HOLD-7] and keeps nothing alive once the driver is killed [XL-HOLD-8].
  def test_fork_check_child_holds_nothing
    a = session
    h = a.call("open", kind: "lock", name: "forked", namespace: @ns)["handle"]
    assert a.call("acquire", handle: h)["ok"]
    reply = a.call("fork_check", handle: h)
    child = reply["child_pid"]
    begin
      assert_equal({ "release" => "NOT_HELD", "locked" => false, "try_acquire" => "WOULD_BLOCK" },
                   reply.slice("release", "locked", "try_acquire"))
      assert_equal true, a.call("locked", handle: h)["locked"], "the driver serves on after the fork"
      Process.kill(:KILL, a.pid)
      a.close # waits for the driver's death
      refute_includes %w[Z X], File.read("/proc/#{child}/stat").split(")").last.split.first,
                      "the child must still live"
      b = session
      hb = b.call("open", kind: "lock", name: "forked", namespace: @ns)["handle"]
      assert b.call("try_acquire", handle: hb)["ok"], "the lingering child keeps the dead driver's lock"
    ensure
      Process.kill(:KILL, child) if child.is_a?(Integer) && child.positive?
    end
  end

  def test_lock_session
    a = session
    b = session
    opened = a.call("open", kind: "lock", name: "billing-export", namespace: @ns)
    assert opened["ok"], opened.inspect
    assert_equal File.join(@ns, "billing-export.lock"), opened["path"]
    assert_equal [File.stat(@ns).dev, File.stat(@ns).ino], [opened["dev"], opened["ino"]]
    assert_nil opened["semaphore"], "a lock has no POSIX semaphore [XL-SEM-2]"
    assert_equal File.join(@ns, ".xlock-bell"), opened["bell"]
    assert_equal XLock.bell_word(:lock, "billing-export"), opened["bell_word"]
    assert_equal "private", opened["sharing"]
    h = opened["handle"]
    acquired = a.call("acquire", handle: h, timeout_ms: nil)
    assert acquired["ok"]
    assert_kind_of Integer, acquired["mono_ns"]
    assert_equal({ "id" => 3, "ok" => true, "locked" => true }, a.call("locked", handle: h))

    hb = b.call("open", kind: "lock", name: "billing-export", namespace: @ns)["handle"]
    reply = b.call("try_acquire", handle: hb)
    assert_equal "WOULD_BLOCK", reply["error"]
    reply = b.call("acquire", handle: hb, timeout_ms: 30)
    assert_equal "TIMEOUT", reply["error"]
    assert_includes reply["message"], "billing-export"

    assert a.call("release", handle: h)["ok"]
    assert_equal "NOT_HELD", a.call("release", handle: h)["error"]
    assert b.call("try_acquire", handle: hb)["ok"]
    assert b.call("close", handle: hb)["ok"]
    assert_equal "BAD_REQUEST", b.call("release", handle: hb)["error"]
  end

  def test_map_reproduces_a_vector
    vectors = JSON.parse(File.read(File.join(XLockTestHelper::REPO, "spec", "vectors", "names.json")))
    ns = vectors["namespaces"].first
    s = session
    vectors["cases"].each do |c|
      reply = s.call("map", name_hex: c["name_utf8_hex"], dev: ns["dev"], ino: ns["ino"])
      if c["valid"]
        assert reply["ok"], "#{c['description']}: #{reply.inspect}"
        assert_equal c["lock_file"], reply["lock_file"]
        assert_equal c["slot_files"], reply["slot_files"]
        assert_equal c["semaphores"][ns["id"]], reply["semaphores"]
        assert_equal c["bell_words"], reply["bell_words"]
      else
        assert_equal "INVALID_NAME", reply["error"], c["description"]
      end
    end
  end

  def test_semaphores_counter_and_cycle
    removed_name(:l, "c")
    s = session
    sem = s.call("open", kind: "semaphore", name: "pool", namespace: @ns, capacity: 2)["handle"]
    assert_equal 0, s.call("acquire", handle: sem)["slot"]
    assert_equal 1, s.call("try_acquire", handle: sem)["slot"]
    assert_equal "WOULD_BLOCK", s.call("try_acquire", handle: sem)["error"]
    other = s.call("open", kind: "semaphore", name: "pool", namespace: @ns, capacity: 3)
    assert_equal "CAPACITY_MISMATCH", other["error"]

    psem = s.call("open", kind: "posix_semaphore", name: "raw-#{Process.pid}", namespace: @ns, value: 1)
    assert_nil psem["path"]
    assert_equal [nil, nil], [psem["bell"], psem["bell_word"]]
    assert_match(%r{\A/xl1p[a-z2-7]{25}\z}, psem["semaphore"])
    assert_nil s.call("acquire", handle: psem["handle"], timeout_ms: 0)["slot"]
    assert s.call("release", handle: psem["handle"])["ok"]
    assert s.call("try_acquire", handle: psem["handle"])["ok"]
    assert s.call("close", handle: psem["handle"])["ok"] # the protocol's close gives the permit back
    again = s.call("open", kind: "posix_semaphore", name: "raw-#{Process.pid}", namespace: @ns)["handle"]
    assert s.call("try_acquire", handle: again)["ok"], "close kept the raw semaphore's permit"
    assert_equal({ "removed" => true },
                 s.call("remove", kind: "posix_semaphore", name: "raw-#{Process.pid}",
                                  namespace: @ns).slice("removed"))

    counter = File.join(@tmp, "counter")
    assert_equal 1, s.call("increment", path: counter)["value"]
    lock = s.call("open", kind: "lock", name: "c", namespace: @ns)["handle"]
    assert_equal 50, s.call("cycle", handle: lock, count: 50, path: counter, timeout_ms: nil)["count"]
    assert_equal "51\n", File.read(counter), "the counter file is decimal digits and a newline"
    assert_equal({ "removed" => true },
                 s.call("remove", kind: "lock", name: "c", namespace: @ns).slice("removed"))
  end

  def test_bad_requests_keep_the_driver_serving
    s = session
    assert_equal({ "id" => nil, "ok" => false, "error" => "BAD_REQUEST" },
                 s.send_line("not json").slice("id", "ok", "error"))
    # JSON that is not an object, an array among them (the driver used to die on one) [PROTOCOL.md]
    ["[1]", "7", '"exit"', "null"].each do |line|
      assert_equal({ "id" => nil, "ok" => false, "error" => "BAD_REQUEST" },
                   s.send_line(line).slice("id", "ok", "error"), line)
    end
    assert_equal "BAD_REQUEST", s.call("frobnicate")["error"]
    assert_equal "BAD_REQUEST", s.call("open", kind: "lock")["error"]
    assert_equal "BAD_REQUEST", s.call("open", kind: "lock", name: 5)["error"]
    assert_equal "BAD_REQUEST", s.call("acquire", handle: "h99")["error"]
    assert_equal "BAD_REQUEST", s.call("map", name: "a", dev: "x", ino: 1)["error"]
    assert_equal "INVALID_NAME", s.call("open", kind: "lock", name: "", namespace: @ns)["error"]
    assert_equal "INVALID_NAME", s.call("open", kind: "lock", name_hex: "61eda080", namespace: @ns)["error"]
    assert_equal "INVALID_ARGUMENT", s.call("open", kind: "lock", name: "a", namespace: "relative")["error"]
    assert s.call("hello", protocol: 1)["ok"]
  end

  # The draft-2 decisions of PROTOCOL.md: exact types, one name form, the counter file's format.
  def test_protocol_types_are_exact
    s = session
    [2, 1.0, "1", true, nil].each do |protocol|
      assert_equal "BAD_REQUEST", s.call("hello", protocol: protocol)["error"],
                   "hello protocol #{protocol.inspect}"
    end
    reply = s.send_line('{"id":"7","op":"hello","protocol":1}')
    assert_equal [nil, "BAD_REQUEST"], [reply["id"], reply["error"]], "a string id"
    assert_equal "BAD_REQUEST", s.send_line('{"id":1.5,"op":"hello","protocol":1}')["error"]
    assert_equal "BAD_REQUEST", s.call("map", name: "a", name_hex: "61", dev: 1, ino: 1)["error"],
                 "name and name_hex"
    assert_equal "BAD_REQUEST", s.call("map", name_hex: "616", dev: 1, ino: 1)["error"], "odd name_hex"
    h = s.call("open", kind: "lock", name: "types", namespace: @ns)["handle"]
    [1.5, 1e3, true, "10"].each do |timeout|
      assert_equal "BAD_REQUEST", s.call("acquire", handle: h, timeout_ms: timeout)["error"],
                   "timeout_ms #{timeout.inspect}"
    end
    refute s.call("locked", handle: h)["locked"]
    assert s.call("acquire", handle: h, timeout_ms: 10**30)["ok"],
           "a timeout_ms beyond any deadline is untimed"
    assert s.call("release", handle: h)["ok"]
    assert s.call("acquire", handle: h, timeout_ms: -(10**30))["ok"], "a negative timeout_ms is untimed"
    assert_equal "BAD_REQUEST",
                 s.call("open", kind: "semaphore", name: "t", namespace: @ns, capacity: 2.0)["error"]
    assert_equal "INVALID_ARGUMENT",
                 s.call("open", kind: "semaphore", name: "t", namespace: @ns, capacity: 10**30)["error"]
    assert_equal "INVALID_ARGUMENT",
                 s.call("open", kind: "semaphore", name: "t", namespace: @ns, capacity: 0)["error"]
    assert_equal "BAD_REQUEST",
                 s.call("open", kind: "posix_semaphore", name: "t", namespace: @ns, value: "1")["error"]
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
    ["4 2", "-1", "+1", "1_000", "0x10", "7\n\n", " 7", "seven"].each do |text|
      File.write(counter, text)
      assert_equal "BAD_REQUEST", s.call("increment", path: counter)["error"], text.inspect
      assert_equal text, File.read(counter), "a malformed counter file is left alone"
    end
  end

  def test_exit_and_eof
    s = session
    assert_equal({ "id" => 1, "ok" => true }, s.call("exit"))
    assert s.close.success?
    t = session
    t.call("open", kind: "lock", name: "held-at-eof", namespace: @ns).then do |r|
      t.call("acquire", handle: r["handle"])
    end
    assert t.close.success?, "the driver did not exit 0 on EOF"
    assert free_for_another_process?("held-at-eof")
  end

  def test_libxlock_driver_sees_the_ruby_drivers_lock
    # tox runs the ruby env before the c env: build the C driver here rather than skip.
    unless File.executable?(C_DRIVER)
      system("make", "-s", "-C", File.join(XLockTestHelper::REPO, "c"), "driver", out: File::NULL)
    end
    assert File.executable?(C_DRIVER), "make -C c driver did not build #{C_DRIVER}"
    ruby = session
    c = session([C_DRIVER])
    assert c.send_line('{"id":0,"op":"hello","protocol":1}')["ok"]
    h = ruby.call("open", kind: "lock", name: "cross", namespace: @ns)["handle"]
    assert ruby.call("acquire", handle: h)["ok"]
    hc = c.call("open", kind: "lock", name: "cross", namespace: @ns)
    assert hc["ok"], hc.inspect
    assert_equal "WOULD_BLOCK", c.call("try_acquire", handle: hc["handle"])["error"]
    assert ruby.call("release", handle: h)["ok"]
    assert c.call("try_acquire", handle: hc["handle"])["ok"]
    assert_equal "WOULD_BLOCK", ruby.call("try_acquire", handle: h)["error"]
  end
end
