# frozen_string_literal: true

# XLock's name mapping: lock files, semaphore names and bell words of a name [XL-SEM-6].
module XLock
  # The pure mapping of a name [XL-SEM-6, XL-INTRO-1]: its files in any namespace and its semaphore names in
  # the namespace with identity (dev, ino). Computed without touching the file system.
  Mapping = Struct.new(:name, :lock_file, :capacity_file, :semaphores, :bell_words, keyword_init: true) do
    # The slot file of permit +slot+ (0..999) of the counting semaphore [XL-ENC-3].
    def slot_file(slot)
      XLock.slot_file_name(name, slot)
    end
  end

  # Raw POSIX semaphores are the one kind left [XL-SEM-2]; draft 1's doorbells (l, s) are withdrawn.
  SEMAPHORE_KINDS = { posix_semaphore: "p" }.freeze
  # Locks and counting semaphores have a word in the namespace's bell [XL-SEM-7].
  BELL_KINDS = { lock: "l", semaphore: "s" }.freeze
  UINT64_MAX = (1 << 64) - 1
  private_constant :SEMAPHORE_KINDS, :BELL_KINDS, :UINT64_MAX

  class << self
    # XLock.map("billing-export", dev: 2049, ino: 131073) -> XLock::Mapping with lock_file,
    # capacity_file, semaphores ({p: "/xl1p..."}), bell_words ({l: 220, s: 463}) and #slot_file(i).
    # Raises XLock::InvalidName [XL-NAME-3], XLock::InvalidArgument for a bad dev or ino.
    def map(name, dev:, ino:)
      name = Names.checked(name)
      semaphores = SEMAPHORE_KINDS.to_h do |kind, letter|
        [letter.to_sym, semaphore_name(kind, dev, ino, name)]
      end
      bell_words = BELL_KINDS.to_h { |kind, letter| [letter.to_sym, bell_word(kind, name)] }
      Mapping.new(name: name, lock_file: lock_file_name(name), capacity_file: capacity_file_name(name),
                  semaphores: semaphores.freeze, bell_words: bell_words.freeze).freeze
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
      _slot_file_name(Names.checked(name), slot)
    end

    # The POSIX semaphore name of +name+ for +kind+ in the namespace with identity (dev, ino) [XL-SEM-1], as
    # Python's xlock.semaphore_name(kind, dev, ino, name). +kind+ is :posix_semaphore or its letter "p"
    # [XL-SEM-2]. Raises XLock::InvalidName, XLock::InvalidArgument.
    # The old argument order semaphore_name(kind, name, dev:, ino:) still works, deprecated.
    def semaphore_name(kind, *args, **keywords)
      dev, ino, name = semaphore_name_args(args, keywords)
      name = Names.checked(name)
      _semaphore_name(semaphore_kind(kind).ord, check_uint64(:dev, dev), check_uint64(:ino, ino), name)
    end

    # The word (0..1023) of a namespace's bell that wakes the waiters of the lock (+kind+ :lock or "l") or
    # counting semaphore (:semaphore or "s") +name+ [XL-SEM-7], as Python's xlock.bell_word(kind, name).
    # The same in every namespace. Raises XLock::InvalidName, XLock::InvalidArgument.
    def bell_word(kind, name)
      name = Names.checked(name)
      letter = if kind.is_a?(String) && BELL_KINDS.value?(kind)
                 kind
               else
                 BELL_KINDS.fetch(kind) do
                   raise InvalidArgument, "bell kind must be :lock (\"l\") or :semaphore (\"s\"), " \
                                          "not #{kind.inspect} [XL-SEM-7]"
                 end
               end
      _bell_word(letter.ord, name)
    end

    private

    # [dev, ino, name] of the arguments of semaphore_name, in either order.
    def semaphore_name_args(args, keywords)
      return args if args.size == 3 && keywords.empty?
      unless args.size == 1 && keywords.keys.sort == %i[dev ino]
        raise ArgumentError, "wrong arguments: XLock.semaphore_name(kind, dev, ino, name)"
      end

      # uplevel 2: the warning points at semaphore_name's caller.
      Deprecation.warn_once("XLock.semaphore_name(kind, name, dev:, ino:)",
                            "XLock.semaphore_name(kind, dev, ino, name)", uplevel: 2)
      [keywords[:dev], keywords[:ino], args.first]
    end

    # The spec's letter of a kind given as a Symbol (:posix_semaphore) or as the letter ("p").
    def semaphore_kind(kind)
      return kind if kind.is_a?(String) && SEMAPHORE_KINDS.value?(kind)

      SEMAPHORE_KINDS.fetch(kind) do
        if [:lock, :semaphore, "l", "s"].include?(kind)
          raise InvalidArgument, "locks and counting semaphores have no POSIX semaphore since draft 2 of " \
                                 "xlock/1 (their waiters sleep on a bell word: XLock.bell_word) [XL-SEM-2]"
        end
        raise InvalidArgument, "kind must be :posix_semaphore or \"p\", not #{kind.inspect} [XL-SEM-2]"
      end
    end

    def check_uint64(what, value)
      return value if value.is_a?(Integer) && value.between?(0, UINT64_MAX)

      raise InvalidArgument, "#{what} must be an Integer from 0 to 2**64-1, not #{value.inspect}"
    end
  end
end
