/* The raw flock(2) baseline for the hand-off benchmarks, as a driver-protocol actor.
 *
 * Speaks the subset of conformance/PROTOCOL.md that bench/handoff.py uses: hello, open (kind lock:
 * the file NAMESPACE/NAME.lock), acquire (untimed only), release, exit; replies carry mono_ns.
 * With the argument "recheck", every acquisition is followed by the re-check of XL-LOCK-8 (fstat of the
 * descriptor, st_nlink > 0): the spec's floor.
 * Requests come from the benchmark harness only, so the JSON "parser" just finds fields by key. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"

/* Copy the string value of "key" in line into out; 0 if found. */
static int field(const char *line, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\": \"", key);
    const char *p = strstr(line, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    const char *end = strchr(p, '"');
    if (!end || (size_t)(end - p) >= cap)
        return -1;
    memcpy(out, p, end - p);
    out[end - p] = 0;
    return 0;
}

static long id_of(const char *line)
{
    const char *p = strstr(line, "\"id\": ");
    return p ? strtol(p + 6, NULL, 10) : -1;
}

int main(int argc, char **argv)
{
    char line[4096], op[32], ns[2048], name[256];
    int fd = -1, recheck = argc > 1 && strcmp(argv[1], "recheck") == 0;
    struct stat now;
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof line, stdin)) {
        long id = id_of(line);
        if (field(line, "op", op, sizeof op) != 0) {
            printf("{\"id\": %ld, \"ok\": false, \"error\": \"BAD_REQUEST\", \"message\": \"no op\"}\n", id);
        } else if (!strcmp(op, "hello")) {
            printf("{\"id\": %ld, \"ok\": true, \"implementation\": \"bench-raw-c\", \"protocol\": 1, "
                   "\"pid\": %d, \"capabilities\": [\"lock\", \"clock\"]}\n", id, (int)getpid());
        } else if (!strcmp(op, "open")) {
            char path[2400];
            if (field(line, "namespace", ns, sizeof ns) || field(line, "name", name, sizeof name)) {
                printf("{\"id\": %ld, \"ok\": false, \"error\": \"BAD_REQUEST\", \"message\": \"open\"}\n", id);
                continue;
            }
            snprintf(path, sizeof path, "%s/%s.lock", ns, name);
            fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
            if (fd < 0) {
                perror(path);
                return 1;
            }
            printf("{\"id\": %ld, \"ok\": true, \"handle\": \"h1\"}\n", id);
        } else if (!strcmp(op, "acquire")) {
            if (strstr(line, "timeout_ms")) {
                printf("{\"id\": %ld, \"ok\": false, \"error\": \"UNSUPPORTED\", \"message\": \"untimed only\"}\n", id);
                continue;
            }
            if (flock(fd, LOCK_EX) != 0) {
                perror("flock");
                return 1;
            }
            if (recheck && (fstat(fd, &now) != 0 || now.st_nlink == 0)) {
                perror("fstat");
                return 1;
            }
            int64_t t = mono_ns();
            printf("{\"id\": %ld, \"ok\": true, \"mono_ns\": %lld}\n", id, (long long)t);
        } else if (!strcmp(op, "release")) {
            int64_t t = mono_ns();
            if (flock(fd, LOCK_UN) != 0) {
                perror("flock");
                return 1;
            }
            printf("{\"id\": %ld, \"ok\": true, \"mono_ns\": %lld}\n", id, (long long)t);
        } else if (!strcmp(op, "exit")) {
            printf("{\"id\": %ld, \"ok\": true}\n", id);
            return 0;
        } else {
            printf("{\"id\": %ld, \"ok\": false, \"error\": \"UNSUPPORTED\", \"message\": \"%s\"}\n", id, op);
        }
    }
    return 0;
}
