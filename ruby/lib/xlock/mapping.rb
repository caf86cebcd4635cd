# frozen_string_literal: true

module XLock
  # The pure mapping of a name [XL-SEM-6, XL-INTRO-1]: its files in any namespace and its semaphore names in
  # the namespace with identity (dev, ino). Computed without touching the file system.
  Mapping = Struct.new(:name, :lock_file, :capacity_file, :semaphores, keyword_init: true) do
    # The slot file of permit +slot+ (0..999) of the counting semaphore [XL-ENC-3].
    def slot_file(slot)
      XLock.slot_file_name(name, slot)
    end
  end

  SEMAPHORE_KINDS = { lock: "l", semaphore: "s", posix_semaphore: "p" }.freeze
  UINT64_MAX = (1 << 64) - 1
  private_constant :SEMAPHORE_KINDS, :UINT64_MAX

  class << self
    # XLock.map("billing-export", dev: 2049, ino: 131073) -> XLock::Mapping with lock_file,
    # capacity_file, semaphores ({l: "/xl1l...", s: ..., p: ...}) and #slot_file(i).
    # Raises XLock::InvalidName [XL-NAME-3], XLock::InvalidArgument for a bad dev or ino.
    def map(name, dev:, ino:)
      name = Names.utf8_bytes(name)
      semaphores = SEMAPHORE_KINDS.to_h { |kind, letter| [letter.to_sym, semaphore_name(kind, name, dev: dev, ino: ino)] }
      Mapping.new(name: name, lock_file: lock_file_name(name), capacity_file: capacity_file_name(name),
                  semaphores: semaphores.freeze).freeze
    end

    # The lock file name of +name+: enc(name) + ".lock" [XL-ENC-1].
    def lock_file_name(name)
      _lock_file_name(Names.utf8_bytes(name))
    end

    # The capacity file name of the counting semaphore +name+ [XL-ENC-3].
    def capacity_file_name(name)
      _capacity_file_name(Names.utf8_bytes(name))
    end

    # The slot file name of permit +slot+ of the counting semaphore +name+ [XL-ENC-3].
    def slot_file_name(name, slot)
      _slot_file_name(Names.utf8_bytes(name), slot)
    end

    # The POSIX semaphore name of +name+ for +kind+ (:lock, :semaphore, :posix_semaphore) in the
    # namespace with identity (dev, ino) [XL-SEM-1].
    def semaphore_name(kind, name, dev:, ino:)
      letter = SEMAPHORE_KINDS.fetch(kind) do
        raise InvalidArgument, "kind must be one of #{SEMAPHORE_KINDS.keys.inspect}, not #{kind.inspect}"
      end
      _semaphore_name(letter.ord, check_uint64(:dev, dev), check_uint64(:ino, ino), Names.utf8_bytes(name))
    end

    private

    def check_uint64(what, value)
      return value if value.is_a?(Integer) && value.between?(0, UINT64_MAX)

      raise InvalidArgument, "#{what} must be an Integer from 0 to 2**64-1, not #{value.inspect}"
    end
  end
end
