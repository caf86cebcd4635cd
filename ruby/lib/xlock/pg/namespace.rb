# frozen_string_literal: true

module XLock
  module PG
    # A PostgreSQL namespace URI [XL-PG-1, XL-PG-2, XL-PG-11, XL-PG-14]: the xlock_ parameters taken out,
    # the rest checked by libpq before any connection, the password never shown.
    class Namespace
      DEFAULT_LABEL = "default"
      DEFAULT_RELEASE_MS = 15_000

      attr_reader :conninfo, :shown, :label, :release_ms, :password

      def self.url?(text)
        text.is_a?(String) && (text.start_with?("postgresql://") || text.start_with?("postgres://"))
      end

      def initialize(url)
        @shown = redact(url)
        @label = DEFAULT_LABEL
        @release_ms = DEFAULT_RELEASE_MS
        base, query = url.split("?", 2)
        kept = (query || "").split("&").reject { |param| param.empty? || xlock_param(param) }
        @conninfo = kept.empty? ? base : "#{base}?#{kept.join('&')}"
        @options = parse
        @password = @options[:password]
      end

      # The connection options: ours first [XL-PG-1, XL-PG-11], the URI's own values override them.
      def connect_options
        client_timeout = [@release_ms - 5000, 1000].max
        { connect_timeout: "10", keepalives: "1", keepalives_idle: "5", keepalives_interval: "2",
          keepalives_count: "3", tcp_user_timeout: client_timeout.to_s }.merge(@options)
      end

      # "server HOST:PORT, database DB, user USER" for messages [XL-PG-15].
      def server
        host = @options[:host] || @options[:hostaddr] || ENV.fetch("PGHOST", "(default)")
        port = @options[:port] || ENV.fetch("PGPORT", "5432")
        user = @options[:user] || ENV.fetch("PGUSER", "(default)")
        "server #{host}:#{port}, database #{@options[:dbname] || '(default)'}, user #{user}"
      end

      # +text+ without the password [XL-PG-14].
      def scrub(text)
        text = text.to_s.gsub(@password, "***") if @password && !@password.empty?
        text.to_s
      end

      private

      def xlock_param(param)
        key, value = param.split("=", 2)
        return false unless key.start_with?("xlock_")

        decoded = param_value(key, value)
        case key
        when "xlock_namespace" then @label = label_param(decoded, value)
        when "xlock_release_ms" then @release_ms = release_ms_param(decoded)
        else raise InvalidArgument, "unknown parameter #{key} in #{@shown}: xlock knows xlock_namespace " \
                                    "and xlock_release_ms [XL-PG-1]"
        end
        true
      end

      def param_value(key, value)
        decoded = value && percent_decode(value)
        return decoded unless decoded.nil?

        raise InvalidArgument, "the parameter #{key} of #{@shown} has no value or a malformed %-escape " \
                               "[XL-PG-1]"
      end

      def label_param(decoded, value)
        Names.checked(decoded)
        decoded
      rescue InvalidName => e
        raise InvalidArgument, "the label xlock_namespace=#{value} of #{@shown} breaks the rules of names " \
                               "(§3): #{e.message}; give 1-80 bytes without control characters [XL-PG-2]"
      end

      def release_ms_param(decoded)
        ms = Integer(decoded, 10, exception: false)
        return ms if ms && ms >= 1000

        raise InvalidArgument, "xlock_release_ms=#{decoded} of #{@shown} is not an integer of at least " \
                               "1000 (milliseconds) [XL-PG-11]"
      end

      def percent_decode(text)
        return nil if text.match?(/%(?![0-9A-Fa-f]{2})/)

        text.gsub(/%([0-9A-Fa-f]{2})/) { Regexp.last_match(1).hex.chr }.force_encoding(Encoding::UTF_8)
      end

      def parse
        given = ::PG::Connection.conninfo_parse(@conninfo).select { |o| o[:val] }
        given.to_h { |o| [o[:keyword].to_sym, o[:val]] }
      rescue ::PG::Error => e
        detail = e.message.lines.first.to_s.strip.sub(@conninfo, "(the URI)")
        raise InvalidArgument, "libpq rejects the namespace URI #{@shown}: #{detail} [XL-PG-1]"
      end

      def redact(url)
        scheme, rest = url.split("://", 2)
        authority_end = rest.index(%r{[/?]}) || rest.size
        authority = rest[0, authority_end]
        at = authority.rindex("@")
        if at && (colon = authority.index(":")) && colon < at
          authority = "#{authority[0, colon]}:***#{authority[at..]}"
        end
        tail = rest[authority_end..].gsub(/([?&]password=)[^&]*/, '\1***')
        "#{scheme}://#{authority}#{tail}"
      end
    end
  end
end
