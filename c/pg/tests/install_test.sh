#!/bin/sh
# `make -C c install` into a temporary prefix installs libxlock and libxlock_pg (c/Makefile delegates to
# c/pg when libpq is present); a program outside the tree built with `pkg-config --cflags --libs
# libxlock_pg` takes a lock on the test server (XLOCK_TEST_PG_URL); `make -C c uninstall` leaves nothing.
set -eu
: "${XLOCK_TEST_PG_URL:?run through tests/with-pg}"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
make -s -C .. install PREFIX="$tmp/usr" LDCONFIG=true >/dev/null
cat > "$tmp/prog.c" <<'C'
#include <stdio.h>
#include <xlock_pg.h>
int main(int argc, char **argv)
{
    xlock_options o;
    xlock_options_init(&o);
    o.namespace_path = argv[1];
    xlock_pg_t *l;
    int rc = xlock_pg_open(&l, "installed-program", &o);
    if (rc == 0)
        rc = xlock_pg_acquire(l, 5000);
    if (rc != 0) {
        fprintf(stderr, "%s: %s\n", xlock_errname(rc), xlock_pg_last_message());
        return 1;
    }
    printf("held installed-program (key %lld, backend %d)\n", xlock_pg_key_of(l), xlock_pg_backend_pid(l));
    rc = xlock_pg_release(l);
    xlock_pg_close(l);
    return argc > 1 && rc == 0 ? 0 : 1;
}
C
export PKG_CONFIG_PATH="$tmp/usr/lib/pkgconfig"
(cd "$tmp" && cc -o prog prog.c $(pkg-config --cflags --libs libxlock_pg))
LD_LIBRARY_PATH="$tmp/usr/lib" "$tmp/prog" "$XLOCK_TEST_PG_URL"
test -f "$tmp/usr/share/man/man3/libxlock_pg.3"
make -s -C .. uninstall PREFIX="$tmp/usr" LDCONFIG=true >/dev/null
left=$(find "$tmp/usr" -type f -o -type l)
[ -z "$left" ] || { echo "make -C c uninstall left: $left"; exit 1; }
echo "install test: after make -C c install, a program built with pkg-config libxlock_pg took a lock on the test server; uninstall OK"
