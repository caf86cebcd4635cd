"""Run a Python driver as another user when its interpreter or packages are out of that user's reach.

    python -m xlock_conformance.asuser UID PACKAGE MODULE

A driver run by `setpriv --reuid` must be able to open its own interpreter and modules as that user; a
virtualenv under /root (tox's) cannot be. So this starts as the runner's user, imports every module of
PACKAGE (and MODULE), then drops to UID (real, effective and saved user and group IDs, no supplementary
groups) and only then serves: from the first request on, the driver is that user, with that user's
default namespace [XL-NS-2]. Used by the case namespace_default_insecure for the bundled py driver.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys


def main(argv: list[str]) -> int:
    uid, package, module = int(argv[0]), argv[1], argv[2]
    pkg = importlib.import_module(package)
    for info in pkgutil.walk_packages(pkg.__path__, package + "."):
        if not info.name.endswith("__main__"):
            try:
                importlib.import_module(info.name)
            except Exception:  # an optional module (e.g. a compiled fast path) may be absent
                pass
    driver = importlib.import_module(module)
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    os.chdir("/")
    code = driver.main()
    sys.stdout.flush()
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
