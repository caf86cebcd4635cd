# frozen_string_literal: true

require "json"
require "xlock/driver/arguments"
require "xlock/driver/handles"
require "xlock/driver/object_ops"
require "xlock/driver/name_ops"
require "xlock/driver/fork_check"

module XLock
  # Serves the conformance driver protocol (conformance/PROTOCOL.md): one JSON request per line on +input+,
  # one JSON reply per line on +output+, strictly in order, until EOF or the op "exit". This file reads the
  # lines and answers them; the ops live in driver/*_ops.rb and driver/fork_check.rb.
  class Driver
    include Arguments
    include ObjectOps
    include NameOps
    include ForkCheck

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

    OPS = {
      "hello" => :op_hello, "map" => :op_map, "open" => :op_open, "acquire" => :op_acquire,
      "try_acquire" => :op_try_acquire, "release" => :op_release, "locked" => :op_locked,
      "close" => :op_close, "remove" => :op_remove, "increment" => :op_increment, "cycle" => :op_cycle,
      "fork_check" => :op_fork_check, "exit" => :op_exit
    }.freeze

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
        break if request.is_a?(Hash) && request["op"] == "exit" && reply["ok"]
      end
    end

    private

    def write(reply)
      @output.write(JSON.generate(reply) << "\n")
      @output.flush
    end

    def handle_line(line)
      request = JSON.parse(line)
      [request, answer(request)]
    rescue JSON::ParserError => e
      [nil, failure(nil, "BAD_REQUEST", "not JSON: #{e.message}")]
    end

    def answer(request)
      raise BadRequest, "a request must be a JSON object" unless request.is_a?(Hash)

      id = request["id"]
      raise BadRequest, "id must be an integer, got #{id.inspect}" unless id.is_a?(Integer)

      { "id" => id, "ok" => true }.merge(__send__(op_method(request), request))
    rescue BadRequest, XLock::Error, SystemCallError, Interrupt, ArgumentError, TypeError, RangeError => e
      failure(request.is_a?(Hash) && request["id"].is_a?(Integer) ? request["id"] : nil, *error_of(e))
    end

    def op_method(request)
      op = request["op"]
      raise BadRequest, "missing op" unless op.is_a?(String)

      OPS[op] or raise BadRequest, "unknown op #{op.inspect}"
    end

    # The reply's error kind and message for an exception the request raised.
    def error_of(exc)
      case exc
      when BadRequest then ["BAD_REQUEST", exc.message]
      when XLock::Error then [exc.kind, exc.message]
      when SystemCallError then ["OS_ERROR", exc.message]
      # SIGINT during a wait: the binding cancelled it (server-side too), holds nothing [XL-WAIT-9, XL-PG-8]
      when Interrupt then ["INTERRUPTED", "interrupted by SIGINT; nothing is held"]
      else ["BAD_REQUEST", "#{exc.class}: #{exc.message}"]
      end
    end

    def failure(id, kind, message)
      { "id" => id, "ok" => false, "error" => kind, "message" => message }
    end

    def op_hello(request)
      protocol = request["protocol"]
      unless protocol.is_a?(Integer) && protocol == PROTOCOL
        raise BadRequest, "this driver speaks protocol #{PROTOCOL} only, not #{protocol.inspect}"
      end

      { "implementation" => "ruby", "version" => XLock::VERSION, "spec" => XLock::SPEC,
        "protocol" => PROTOCOL, "pid" => Process.pid,
        "capabilities" => PG_AVAILABLE ? CAPABILITIES + ["pg"] : CAPABILITIES }
    end

    def op_exit(_request)
      {}
    end
  end
end
