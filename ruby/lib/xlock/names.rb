# frozen_string_literal: true

module XLock
  # Names reach libxlock as UTF-8 bytes [XL-NAME-1]. A UTF-8, ASCII or binary String passes its bytes
  # unchanged (libxlock rejects ill-formed UTF-8 with XLock::InvalidName [XL-NAME-3]); a String in another
  # encoding is transcoded first. Names are never normalised [XL-NAME-4].
  module Names
    UTF_8 = Encoding::UTF_8
    PASSED_AS_BYTES = [Encoding::UTF_8, Encoding::US_ASCII, Encoding::BINARY].freeze

    module_function

    def utf8_bytes(name)
      raise InvalidName, "a name must be a String, not #{name.class}" unless name.is_a?(String)
      return name if PASSED_AS_BYTES.include?(name.encoding)

      name.encode(UTF_8)
    rescue EncodingError => e
      raise InvalidName, "name #{name.inspect} cannot be converted to UTF-8 (#{e.message}) [XL-NAME-3]"
    end

    # utf8_bytes, checked against the name rules [XL-NAME-1..XL-NAME-3] before any other argument:
    # a bad name is XLock::InvalidName whatever else is wrong.
    def checked(name)
      name = utf8_bytes(name)
      XLock.__send__(:_validate_name, name)
      name
    end

    # A namespace is an absolute directory path or nil (then XLOCK_NAMESPACE or the default [XL-NS-1]).
    def namespace_path(namespace)
      return nil if namespace.nil?

      namespace = namespace.to_path if namespace.respond_to?(:to_path)
      unless namespace.is_a?(String)
        raise InvalidArgument,
              "a namespace must be a path String or nil, not #{namespace.class}"
      end

      namespace
    end
  end
  private_constant :Names
end
