# frozen_string_literal: true

require "open3"

module XLockTestHelper
  # Driving exe/xlock-driver (conformance/PROTOCOL.md) from a test: sessions, closed at teardown, and
  # the requests the driver tests repeat.
  module Driver
    DRIVER = [RUBY, "-I", LIB, File.join(RUBY_DIR, "exe", "xlock-driver")].freeze
    C_DRIVER = File.join(REPO, "c", "build", "xlock-driver")
    HELLO = '{"id":0,"op":"hello","protocol":1}'

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

    # A session of libxlock's driver, which it greets. tox runs the ruby env before the c env: the C
    # driver is built here rather than the test skipped.
    def c_driver_session
      unless File.executable?(C_DRIVER)
        system("make", "-s", "-C", File.join(REPO, "c"), "driver", out: File::NULL)
      end
      assert File.executable?(C_DRIVER), "make -C c driver did not build #{C_DRIVER}"
      session([C_DRIVER]).tap { |c| assert c.send_line(HELLO)["ok"] }
    end

    # The reply to opening the lock +name+ of this test's namespace in +driver+, which succeeded.
    def open_lock_reply(driver, name)
      driver.call("open", kind: "lock", name: name, namespace: @ns).tap { |r| assert r["ok"], r.inspect }
    end

    def open_lock(driver, name)
      open_lock_reply(driver, name)["handle"]
    end

    # The handle of the lock +name+, opened and acquired in +driver+.
    def held_by(driver, name)
      open_lock(driver, name).tap { |h| assert driver.call("acquire", handle: h)["ok"] }
    end

    def ok?(driver, op, **args)
      driver.call(op, **args)["ok"]
    end

    # The error kind of the reply to the request, nil when it succeeded.
    def error_of(driver, op, **args)
      driver.call(op, **args)["error"]
    end

    def assert_removed(driver, **what)
      assert_equal({ "removed" => true }, driver.call("remove", namespace: @ns, **what).slice("removed"))
    end
  end
end
