# frozen_string_literal: true

require "fileutils"

# Where the extension finds libxlock's C sources: the sibling c/ directory of the git checkout, or the copy
# that `gem build` puts into ext/xlock/vendor/ for an installed gem.
module XLockVendor
  VENDOR = File.join(__dir__, "vendor")
  CHECKOUT_C = File.expand_path("../../../c", __dir__)

  module_function

  # True in the git checkout; an installed gem has no xlock.gemspec (not in spec.files) and no ../c.
  def checkout?
    File.file?(File.expand_path("../../xlock.gemspec",
                                __dir__)) && File.file?(File.join(CHECKOUT_C, "include", "xlock.h"))
  end

  # [include dir, source dir] of the checkout when it is there, else of the vendored copy; nil if neither.
  def source_dirs
    if checkout?
      [File.join(CHECKOUT_C, "include"), File.join(CHECKOUT_C, "src")]
    elsif File.file?(File.join(VENDOR, "xlock.h"))
      [VENDOR, VENDOR]
    end
  end

  # Replaces ext/xlock/vendor/ with the checkout's c/src/*.{c,h} and c/include/xlock.h (no-op outside it).
  def copy_from_checkout
    return unless checkout?

    header = File.join(CHECKOUT_C, "include", "xlock.h")
    FileUtils.rm_rf(VENDOR)
    FileUtils.mkdir_p(VENDOR)
    FileUtils.cp(Dir[File.join(CHECKOUT_C, "src", "*.{c,h}")] + [header], VENDOR)
  end
end
