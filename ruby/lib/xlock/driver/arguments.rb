# frozen_string_literal: true

module XLock
  class Driver
    # A malformed request: the reply is BAD_REQUEST.
    class BadRequest < StandardError; end

    # Reading a request's fields (conformance/PROTOCOL.md): each reader raises BadRequest naming the field.
    module Arguments
      private

      def name_arg(request)
        both = request.key?("name") && request.key?("name_hex")
        raise BadRequest, "give name or name_hex, not both" if both
        return string_arg(request, "name") unless request.key?("name_hex")

        hex = string_arg(request, "name_hex")
        raise BadRequest, "name_hex is not hexadecimal" unless hex.match?(/\A(?:[0-9a-fA-F]{2})*\z/)

        [hex].pack("H*").force_encoding(Encoding::UTF_8)
      end

      def handle_arg(request)
        @handles.fetch(string_arg(request, "handle")) do
          raise BadRequest, "unknown handle #{request['handle'].inspect}"
        end
      end

      # Seconds as a Rational, nil (untimed) for a missing or negative timeout_ms.
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
        return value if value.nil? || value.is_a?(type)

        raise BadRequest, "#{key} must be a #{type.name.downcase} or null, got #{value.inspect}"
      end

      def flag(request, key)
        value = request.fetch(key, false)
        return value ? true : false if [true, false, nil].include?(value)

        raise BadRequest, "#{key} must be true or false, got #{value.inspect}"
      end
    end
  end
end
