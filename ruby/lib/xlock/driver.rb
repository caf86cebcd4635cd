# frozen_string_literal: true

require "json"

module XLock
  # Serves the conformance driver protocol (conformance/PROTOCOL.md): one JSON request per line on +input+,
  # one JSON reply per line on +output+, strictly in order, until EOF or the op "exit".
  class Driver
    PROTOCOL = 1
    CAPABILITIES = %w[lock shared timeout reentrant semaphore posix_semaphore map remove counter clock
                      fork].freeze
    # PostgreSQL namespaces [spec §16] when the pg gem is there.
    PG_AVAILABLE = begin
      require "xlock/pg"
      true
    rescue XLock::UnsupportedBackend
      false
    end
    FORK_REPORT_S = 5
    SHARING = { private: "private", group_shared: "group", world_shared: "world" }.freeze

    # A malformed request: the reply is BAD_REQUEST.
    class BadRequest < StandardError; end

    # A handle's object and kind ("lock", "semaphore", "posix_semaphore").
    Handle = Struct.new(:object, :kind)

    def initialize(input, output)
      @input = input
      @output = output
      @handles = {}
      @next_handle = 0
    end

    def run
      @input.each_line do |line|
        request, reply = handle_line(line)
        write(reply)
        break if request && request["op"] == "exit" && reply["ok"]
      end
    end

    private

    def write(reply)
      @output.write(JSON.generate(reply) << "\n")
      @output.flush
    end

    def handle_line(line)
      request = JSON.parse(line)
      raise BadRequest, "a request must be a JSON object" unless request.is_a?(Hash)

      id = request["id"]
      unless id.is_a?(Integer)
        bad_id = id
        id = nil
        raise BadRequest, "id must be an integer, got #{bad_id.inspect}"
      end
      op = request["op"]
      raise BadRequest, "missing op" unless op.is_a?(String)

      method = OPS[op] or raise BadRequest, "unknown op #{op.inspect}"
      [request, { "id" => id, "ok" => true }.merge(__send__(method, request))]
    rescue JSON::ParserError => e
      [nil, failure(nil, "BAD_REQUEST", "not JSON: #{e.message}")]
    rescue BadRequest => e
      [request, failure(id, "BAD_REQUEST", e.message)]
    rescue XLock::Error => e
      [request, failure(id, e.kind, e.message)]
    rescue SystemCallError => e
      [request, failure(id, "OS_ERROR", e.message)]
    rescue Interrupt
      # SIGINT during a wait: the binding cancelled it (server-side too), holds nothing [XL-WAIT-9, XL-PG-8]
      [request, failure(id, "INTERRUPTED", "interrupted by SIGINT; nothing is held")]
    rescue ArgumentError, TypeError, RangeError => e
      [request, failure(id, "BAD_REQUEST", "#{e.class}: #{e.message}")]
    end

    def failure(id, kind, message)
      { "id" => id, "ok" => false, "error" => kind, "message" => message }
    end

    OPS = {
      "hello" => :op_hello, "map" => :op_map, "open" => :op_open, "acquire" => :op_acquire,
      "try_acquire" => :op_try_acquire, "release" => :op_release, "locked" => :op_locked,
      "close" => :op_close, "remove" => :op_remove, "increment" => :op_increment, "cycle" => :op_cycle,
      "fork_check" => :op_fork_check, "exit" => :op_exit
    }.freeze

    def op_hello(request)
      protocol = request["protocol"]
      unless protocol.is_a?(Integer) && protocol == PROTOCOL
        raise BadRequest, "this driver speaks protocol #{PROTOCOL} only, not #{protocol.inspect}"
      end

      { "implementation" => "ruby", "version" => XLock::VERSION, "spec" => XLock::SPEC,
        "protocol" => PROTOCOL, "pid" => Process.pid,
        "capabilities" => PG_AVAILABLE ? CAPABILITIES + ["pg"] : CAPABILITIES }
    end

    def op_map(request)
      name = name_arg(request)
      mapping = XLock.map(name, dev: uint_arg(request, "dev"), ino: uint_arg(request, "ino"))
      { "lock_file" => mapping.lock_file, "capacity_file" => mapping.capacity_file,
        "slot_files" => { "0" => mapping.slot_file(0), "999" => mapping.slot_file(999) },
        "semaphores" => { "p" => mapping.semaphores.fetch(:p) },
        "bell_words" => mapping.bell_words.transform_keys(&:to_s) }
        .merge(pg_keys(name, optional(request, "label", String)))
    end

    # The keys of a PostgreSQL namespace for a label [XL-PG-3], without connecting.
    def pg_keys(name, label)
      return {} if label.nil?

      require "xlock/pg/keys"
      keys = XLock::PG::Keys
      { "pg_keys" => { "l" => keys.key("l", label, name), "s0" => keys.key("s", label, name, 0),
                       "s999" => keys.key("s", label, name, 999) } }
    end

    def op_open(request)
      kind = string_arg(request, "kind")
      name = name_arg(request)
      namespace = optional(request, "namespace", String)
      allow = flag(request, "allow_unsupported_fs")
      object =
        case kind
        when "lock"
          XLock::Lock.new(name, namespace: namespace, shared: flag(request, "shared"),
                                reentrant: flag(request, "reentrant"), allow_unsupported_fs: allow)
        when "semaphore"
          XLock::Semaphore.new(name, int_arg(request, "capacity"), namespace: namespace,
                                                                   allow_unsupported_fs: allow)
        when "posix_semaphore"
          value = optional(request, "value", Integer) || 1
          XLock::PosixSemaphore.new(name, value: value, namespace: namespace, allow_unsupported_fs: allow)
        else
          raise BadRequest, "unknown kind #{kind.inspect}"
        end
      handle = "h#{@next_handle += 1}"
      @handles[handle] = Handle.new(object, kind)
      return pg_opened(handle, object) if defined?(XLock::PG::Handle) && object.is_a?(XLock::PG::Handle)

      dev, ino = object.namespace_identity
      raw = kind == "posix_semaphore"
      { "handle" => handle, "namespace" => object.namespace, "dev" => dev, "ino" => ino,
        "path" => raw ? nil : object.path,
        "semaphore" => raw ? object.semaphore_name : nil, "bell" => raw ? nil : object.bell,
        "bell_word" => raw ? nil : object.bell_word, "sharing" => SHARING.fetch(object.sharing) }
    end

    def pg_opened(handle, object)
      { "handle" => handle, "namespace" => object.namespace, "label" => object.label, "key" => object.key,
        "system_identifier" => object.system_identifier, "database" => object.database,
        "backend_pid" => object.backend_pid, "path" => nil, "semaphore" => nil, "bell" => nil,
        "bell_word" => nil, "sharing" => "database" }
    end

    def op_acquire(request)
      handle = handle_arg(request)
      acquire(handle, timeout_arg(request))
    end

    def op_try_acquire(request)
      handle = handle_arg(request)
      object = handle.object
      case handle.kind
      when "lock"
        unless object.try_lock
          raise XLock::WouldBlock,
                "lock #{object.name.inspect} (#{object.path}) is held elsewhere"
        end

        acquired({})
      when "semaphore"
        slot = object.try_acquire or
          raise XLock::WouldBlock, "semaphore #{object.name.inspect} (#{object.path}): every permit is held"
        acquired({ "slot" => slot })
      else
        unless object.try_acquire
          raise XLock::WouldBlock,
                "semaphore #{object.name.inspect} (#{object.semaphore_name}) is at 0"
        end

        acquired({ "slot" => nil })
      end
    end

    def op_release(request)
      handle = handle_arg(request)
      now = clock
      handle.kind == "lock" ? handle.object.unlock : handle.object.release
      { "mono_ns" => now }
    end

    def op_locked(request)
      object = handle_arg(request).object
      pg_lock = defined?(XLock::PG::Lock) && object.is_a?(XLock::PG::Lock)
      return { "locked" => object.locked?(verify: true) } if pg_lock && flag(request, "verify")

      { "locked" => object.respond_to?(:locked?) ? object.locked? : object.held.positive? }
    end

    def op_close(request)
      handle = handle_arg(request)
      handle.object.close # releases what the object holds, posting back a raw semaphore's permits [XL-PSEM-6]
      @handles.delete(request["handle"])
      {}
    end

    def op_remove(request)
      kind = string_arg(request, "kind")
      name = name_arg(request)
      namespace = optional(request, "namespace", String)
      removed =
        case kind
        when "lock" then XLock::Lock.remove(name, namespace: namespace)
        when "semaphore" then XLock::Semaphore.remove(name, optional(request, "capacity", Integer),
                                                      namespace: namespace)
        when "posix_semaphore" then XLock::PosixSemaphore.unlink(name, namespace: namespace)
        else raise BadRequest, "unknown kind #{kind.inspect}"
        end
      { "removed" => removed }
    end

    def op_increment(request)
      { "value" => increment(string_arg(request, "path")) }
    end

    def op_cycle(request)
      handle = handle_arg(request)
      count = int_arg(request, "count")
      path = string_arg(request, "path")
      timeout = timeout_arg(request)
      count.times do |done|
        acquire(handle, timeout)
        increment(path)
        handle.kind == "lock" ? handle.object.unlock : handle.object.release
      rescue XLock::Error => e
        raise e.class, "#{e.message} (done: #{done})"
      end
      { "count" => count }
    end

    # fork(2) and report what the child sees of the held object [XL-HOLD-7, XL-HOLD-8].
    def op_fork_check(request)
      handle = handle_arg(request)
      reader, writer = IO.pipe
      pid = Process.fork { fork_child(request, handle, reader, writer) }
      writer.close
      begin
        line = read_child_line(reader, pid)
        report = JSON.parse(line)
      rescue XLock::OSError, JSON::ParserError => e
        Process.kill(:KILL, pid) # a failed child is not left behind
        Process.wait(pid)
        raise XLock::OSError, "the forked child #{pid}: #{e.message}"
      ensure
        reader.close
      end
      { "child_pid" => pid }.merge(report)
    end

    # In the forked child: leave the protocol streams alone, release, ask locked, try to acquire, write one
    # JSON line to the pipe, then linger until killed (the runner checks the parent's lock dies with it).
    def fork_child(request, handle, reader, writer)
      reader.close
      $stdin.reopen(File::NULL)
      $stdout.reopen(File::NULL, "w")
      object = handle.object
      report = { "release" => outcome { handle.kind == "lock" ? object.unlock : object.release } }
      report["locked"] = object.respond_to?(:locked?) ? object.locked? : object.held.positive?
      report["try_acquire"] = outcome { op_try_acquire(request) }
      writer.write(JSON.generate(report) << "\n")
    rescue Exception => e # rubocop:disable Lint/RescueException -- say what went wrong, then linger all the same
      writer.write("ruby driver child failed: #{e.inspect}\n")
    ensure
      writer.flush
      loop { sleep }
    end

    def outcome
      yield
      "ok"
    rescue XLock::Error => e
      e.kind
    end

    def read_child_line(reader, pid)
      line = +""
      deadline = Process.clock_gettime(Process::CLOCK_MONOTONIC) + FORK_REPORT_S
      until line.end_with?("\n")
        left = deadline - Process.clock_gettime(Process::CLOCK_MONOTONIC)
        raise XLock::OSError, "no report within #{FORK_REPORT_S} s" if left <= 0 || !IO.select([reader], nil,
                                                                                               nil, left)

        line << reader.readpartial(4096)
      end
      line
    rescue EOFError
      raise XLock::OSError, "child #{pid} closed its pipe after #{line.inspect}"
    end

    def op_exit(_request)
      {}
    end

    # Acquires with +timeout+ seconds (nil: untimed) and returns the reply fields.
    def acquire(handle, timeout)
      result = handle.object.__send__(handle.kind == "lock" ? :lock : :acquire, timeout: timeout)
      acquired(if handle.kind == "lock"
                 {}
               else
                 { "slot" => handle.kind == "semaphore" ? result : nil }
               end)
    end

    def acquired(fields)
      fields.merge("mono_ns" => clock)
    end

    def clock
      Process.clock_gettime(Process::CLOCK_MONOTONIC, :nanosecond)
    end

    # The counter file holds decimal digits and an optional "\n"; missing or empty is 0.
    def increment(path)
      text = File.exist?(path) ? File.binread(path) : ""
      unless text.empty? || text.match?(/\A[0-9]+\n?\z/)
        raise BadRequest, "counter file #{path} does not hold a decimal integer: #{text[0, 40].inspect}"
      end

      value = text.to_i + 1
      File.write(path, "#{value}\n")
      value
    end

    # --- arguments ---

    def name_arg(request)
      raise BadRequest, "give name or name_hex, not both" if request.key?("name") && request.key?("name_hex")

      if request.key?("name_hex")
        hex = string_arg(request, "name_hex")
        raise BadRequest, "name_hex is not hexadecimal" unless hex.match?(/\A(?:[0-9a-fA-F]{2})*\z/)

        [hex].pack("H*").force_encoding(Encoding::UTF_8)
      else
        string_arg(request, "name")
      end
    end

    def handle_arg(request)
      @handles.fetch(string_arg(request, "handle")) do
        raise BadRequest, "unknown handle #{request['handle'].inspect}"
      end
    end

    def timeout_arg(request)
      ms = optional(request, "timeout_ms", Integer)
      ms.nil? || ms.negative? ? nil : Rational(ms, 1000)
    end

    def string_arg(request, key)
      value = request[key]
      raise BadRequest, "#{key} must be a string, got #{value.inspect}" unless value.is_a?(String)

      value
    end

    def int_arg(request, key)
      value = request[key]
      raise BadRequest, "#{key} must be an integer, got #{value.inspect}" unless value.is_a?(Integer)

      value
    end

    def uint_arg(request, key)
      value = int_arg(request, key)
      raise BadRequest, "#{key} must be a non-negative integer, got #{value}" if value.negative?

      value
    end

    def optional(request, key, type)
      value = request[key]
      return nil if value.nil?

      unless value.is_a?(type)
        raise BadRequest, "#{key} must be a #{type.name.downcase} or null, got #{value.inspect}"
      end

      value
    end

    def flag(request, key)
      value = request.fetch(key, false)
      raise BadRequest, "#{key} must be true or false, got #{value.inspect}" unless [true, false,
                                                                                     nil].include?(value)

      value ? true : false
    end
  end
end
