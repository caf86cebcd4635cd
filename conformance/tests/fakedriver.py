#!/usr/bin/env python3
"""Drivers that break the transport, for the runner's own tests: each answers hello, then misbehaves.

python fakedriver.py hang    # never answers again
python fakedriver.py junk    # prints a line that is not JSON
python fakedriver.py die     # writes to stderr and exits with status 3
"""

import json
import os
import sys

mode = sys.argv[1]
hello = json.loads(sys.stdin.readline())
print(
    json.dumps(
        {
            "id": hello["id"],
            "ok": True,
            "implementation": f"fake-{mode}",
            "version": "0",
            "spec": "xlock/1",
            "protocol": 1,
            "pid": os.getpid(),
            "capabilities": ["lock"],
        }
    ),
    flush=True,
)
request = sys.stdin.readline()
if mode == "hang":
    sys.stdin.read()  # until EOF, which never comes while the runner waits
elif mode == "junk":
    print("debug: got " + request.strip(), flush=True)
    sys.stdin.read()
elif mode == "die":
    print("fake driver: giving up on purpose", file=sys.stderr, flush=True)
    sys.exit(3)
