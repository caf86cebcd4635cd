#!/bin/sh
# make install into a temporary PREFIX (and a DESTDIR staging), then build a program OUTSIDE the
# tree with `cc app.c $(pkg-config --cflags --libs libxlock)` and run it; finally make uninstall.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d /tmp/xlock-install-XXXXXX)
trap 'rm -rf "$tmp"' EXIT

cat > "$tmp/app.c" <<'APP'
#include <stdio.h>
#include <string.h>
#include <xlock.h>

int main(int argc, char **argv)
{
    xlock_options opts;
    xlock_options_init(&opts);
    opts.namespace_path = argv[1];
    xlock_t *lock;
    if (argc < 2 || xlock_open(&lock, "billing-export", &opts) != 0) {
        fprintf(stderr, "open: %s\n", xlock_last_message());
        return 1;
    }
    int rc = xlock_acquire(lock, 1000);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", xlock_errname(rc), xlock_last_message());
        return 1;
    }
    printf("held %s with libxlock %s (%s)\n", xlock_path(lock), xlock_version_string(),
           xlock_spec_version());
    xlock_release(lock);
    xlock_close(lock);
    return strcmp(xlock_version_string(), XLOCK_VERSION_STRING) != 0;
}
APP
mkdir -p "$tmp/ns" && chmod 700 "$tmp/ns"

make -s driver
set -- $(make -s --no-print-directory print-versions)   # libxlock.so.ABI libxlock.so.ABI.MINOR.PATCH, from xlock.h
soname=$1 shlib=$2
# 1. A plain PREFIX install, dynamic linking.
prefix="$tmp/prefix"
make -s install PREFIX="$prefix"
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
(cd "$tmp" && cc -std=c99 -Wall -Werror app.c -o app $(pkg-config --cflags --libs libxlock))
LD_LIBRARY_PATH="$prefix/lib" "$tmp/app" "$tmp/ns"
readelf -d "$tmp/app" | grep -q "NEEDED.*\\[$soname\\]" || { echo "app does not need $soname"; exit 1; }
# ... and static linking.
(cd "$tmp" && cc app.c -o app-static $(pkg-config --cflags libxlock) "$prefix/lib/libxlock.a" -pthread)
"$tmp/app-static" "$tmp/ns"
make -s uninstall PREFIX="$prefix"
left=$(find "$prefix" -type f -o -type l)
[ -z "$left" ] || { echo "make uninstall left: $left"; exit 1; }

# 2. A DESTDIR staging install (as packagers do), found through the sysroot.
make -s install DESTDIR="$tmp/stage" PREFIX=/opt/xlock
grep -q '^prefix=/opt/xlock$' "$tmp/stage/opt/xlock/lib/pkgconfig/libxlock.pc"
for f in include/xlock.h lib/libxlock.so lib/$soname lib/$shlib lib/libxlock.a; do
    [ -e "$tmp/stage/opt/xlock/$f" ] || { echo "missing $f"; exit 1; }
done
# With libpq, libxlock_pg comes along (make -C pg check-install takes a lock with it on a test server).
if pkg-config --exists libpq; then
    for f in include/xlock_pg.h lib/libxlock_pg.so lib/libxlock_pg.a lib/pkgconfig/libxlock_pg.pc \
             share/man/man3/libxlock_pg.3; do
        [ -e "$tmp/stage/opt/xlock/$f" ] || { echo "missing $f (libxlock_pg)"; exit 1; }
    done
    grep -q '^prefix=/opt/xlock$' "$tmp/stage/opt/xlock/lib/pkgconfig/libxlock_pg.pc"
fi
PKG_CONFIG_PATH="$tmp/stage/opt/xlock/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$tmp/stage" \
    sh -c "cd '$tmp' && cc app.c -o app2 \$(pkg-config --cflags --libs libxlock)"
LD_LIBRARY_PATH="$tmp/stage/opt/xlock/lib" "$tmp/app2" "$tmp/ns"
make -s uninstall DESTDIR="$tmp/stage" PREFIX=/opt/xlock
# Nothing outside the namespace: locks create no POSIX semaphore [XL-SEM-2].
[ "$(ls -A "$tmp/ns")" = "$(printf '.xlock-bell\nbilling-export.lock')" ] || { ls -A "$tmp/ns"; exit 1; }
echo "install test: PREFIX and DESTDIR installs, pkg-config build, run, uninstall OK"
