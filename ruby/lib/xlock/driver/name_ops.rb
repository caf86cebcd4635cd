# frozen_string_literal: true

module XLock
  class Driver
    # The ops that need no open object (conformance/PROTOCOL.md): map, remove and the counter file's
    # increment.
    module NameOps
      private

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

      def op_remove(request)
        kind = string_arg(request, "kind")
        name = name_arg(request)
        namespace = optional(request, "namespace", String)
        { "removed" => remove(request, kind, name, namespace) }
      end

      def remove(request, kind, name, namespace)
        case kind
        when "lock" then XLock::Lock.remove(name, namespace: namespace)
        when "semaphore" then XLock::Semaphore.remove(name, optional(request, "capacity", Integer),
                                                      namespace: namespace)
        when "posix_semaphore" then XLock::PosixSemaphore.unlink(name, namespace: namespace)
        else raise BadRequest, "unknown kind #{kind.inspect}"
        end
      end

      def op_increment(request)
        { "value" => increment(string_arg(request, "path")) }
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
    end
  end
end
