"""xlock/1 is specified and verified for Linux only: refuse other platforms at import, clearly.

Imported first by `xlock/__init__.py`, before anything that loads libc or `fcntl`.
"""

from __future__ import annotations

import sys

# [XL-PLAT-1, XL-PLAT-2]: macOS and Windows are described in spec section 15 but not implemented yet.
if not sys.platform.startswith("linux"):
    raise ImportError(
        f"xlock supports Linux only; this is {sys.platform!r}. Spec xlock/1 section 15 "
        "(Platform notes) describes macOS and Windows, which are not implemented yet: run on Linux "
        "(a container or a VM will do)."
    )
