# frozen_string_literal: true

# Builds xlock/xlock_ext: the thin binding in xlock_ext.c plus libxlock itself, compiled from its C sources
# (the checkout's ../../../c, or ext/xlock/vendor/ in an installed gem). With
#   gem install xlock -- --use-system-libxlock     (or XLOCK_USE_SYSTEM_LIBXLOCK=1)
# it links an installed libxlock found through pkg-config instead.
require "mkmf"
require_relative "vendor"

# Spec xlock/1 is specified and verified for Linux only; section 15 (Platform notes) describes macOS and
# Windows, which are not implemented yet [XL-PLAT-1, XL-PLAT-2].
unless RbConfig::CONFIG["host_os"].to_s.include?("linux")
  abort("xlock: this gem supports Linux only; this is #{RbConfig::CONFIG['host_os']}. Spec xlock/1 " \
        "section 15 (Platform notes) describes macOS and Windows, which are not implemented yet: " \
        "install it on Linux (a container or a VM will do).")
end

use_system = arg_config("--use-system-libxlock") || enable_config("system-libxlock", false) ||
             ENV["XLOCK_USE_SYSTEM_LIBXLOCK"] == "1"

$CFLAGS << " -std=gnu11 -Wall"
$defs << "-D_GNU_SOURCE"
binding_sources = Dir[File.join(__dir__, "xlock_ext*.c")].map { |f| File.basename(f) }.sort

if use_system
  pkg_config("libxlock") ||
    abort("xlock: --use-system-libxlock given, but pkg-config finds no libxlock (set PKG_CONFIG_PATH)")
  # An rpath, so a libxlock installed outside the loader's search path (PREFIX=/opt/...) is found.
  libdir = pkg_config("libxlock", "variable=libdir")
  $LDFLAGS << " -Wl,-rpath,#{libdir}" if libdir && !libdir.empty?
  have_header("xlock.h") || abort("xlock: xlock.h of the system libxlock not found")
  have_library("xlock", "xlock_version") || abort("xlock: the system libxlock does not link")
  $srcs = binding_sources
else
  include_dir, src_dir = XLockVendor.source_dirs
  unless include_dir
    abort("xlock: libxlock's C sources are missing (neither ../../../c nor ext/xlock/vendor)")
  end
  message("xlock: compiling libxlock from #{src_dir}\n")
  $INCFLAGS << " -I#{include_dir} -I#{src_dir}"
  $VPATH << src_dir
  # libxlock's symbols stay private to the extension [xlock.h: XLOCK_EMBED].
  $defs << "-DXLOCK_EMBED"
  $CFLAGS << " -fvisibility=hidden"
  $srcs = binding_sources + Dir[File.join(src_dir, "*.c")].map { |f| File.basename(f) }.sort
end

have_func("sem_clockwait", "semaphore.h")
have_library("pthread")

create_makefile("xlock/xlock_ext")
