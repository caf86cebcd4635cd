# frozen_string_literal: true

module XLockTestHelper
  # The teardown check that locks and counting semaphores create nothing in /dev/shm [XL-SEM-2].
  module NoDoorbells
    # Notes a lock (:l) or counting semaphore (:s) the test removes, for assert_no_doorbells.
    def removed_name(kind, name)
      (@removed_names ||= []) << [kind, name]
    end

    # For every namespace the test made under +root+, neither draft 1's doorbell of any name found in its
    # lock and capacity files (or noted by removed_name) nor anything else of theirs is in /dev/shm.
    # Computed names, never a pattern: other processes use /dev/shm meanwhile.
    def assert_no_doorbells(root)
      Dir.glob("**/", base: root).map { |d| File.join(root, d) }.push(root).each do |dir|
        stat = File.stat(dir)
        (names_in(dir) + (@removed_names || [])).each { |kind, name| refute_doorbell(dir, stat, kind, name) }
      end
    end

    # The [kind, name] of each lock and capacity file in +dir+.
    def names_in(dir)
      Dir.children(dir).filter_map do |file|
        kind = { ".lock" => :l, ".sem" => :s }[File.extname(file)]
        [kind, decode_file_stem(File.basename(file, ".*"))] if kind
      end
    end

    def refute_doorbell(dir, stat, kind, name)
      # libxlock still computes the withdrawn names, "useful only to unlink leftovers" (xlock.h).
      sem = XLock.__send__(:_semaphore_name, kind.to_s.ord, stat.dev, stat.ino, name)
      path = "/dev/shm/sem.#{sem.delete_prefix('/')}"
      what = kind == :l ? "lock" : "semaphore"
      refute File.exist?(path), "#{what} #{name.inspect} of #{dir} created #{path}"
    end

    # The inverse of enc() [XL-ENC-1], for the teardown check only.
    def decode_file_stem(stem)
      stem.b.gsub(/%(\h\h)|!(.)/) do
        Regexp.last_match(1) ? Regexp.last_match(1).hex.chr : Regexp.last_match(2).upcase
      end
          .force_encoding(Encoding::UTF_8)
    end
  end
end
