# frozen_string_literal: true

require "digest"

module XLock
  module PG
    # The pure mapping of names to advisory keys [XL-PG-3]: no connection, no pg gem.
    module Keys
      module_function

      # key(kind, label, name, extra): the first 8 bytes of SHA-256 of the domain-separated input, as a
      # big-endian signed 64-bit integer. kind "l" (lock), "s" (slot +extra+), "c" (capacity +extra+).
      def key(kind, label, name, extra = nil)
        input = +"xlock/1\0pg\0#{kind}\0".b
        input << label.b << "\0".b << name.b
        input << "\0#{Integer(extra)}".b if %w[s c].include?(kind)
        Digest::SHA256.digest(input)[0, 8].unpack1("q>")
      end

      # +keys+ as a PostgreSQL int8[] literal, one parameter for a statement over many keys.
      def array(keys)
        "{#{keys.join(',')}}"
      end

      # The LISTEN/NOTIFY channel of a counting semaphore [XL-PG-13].
      def channel(label, name)
        format("xl1s_%016x", key("s", label, name, 0) & 0xFFFF_FFFF_FFFF_FFFF)
      end
    end
  end
end
