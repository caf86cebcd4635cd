"""What every subcommand shares: exit statuses, the usage error, option values, output helpers."""

from __future__ import annotations

import sys

import xlock

from .._display import escape as _escape
from .._display import escape_json_text

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): the xlock command starts fast
if TYPE_CHECKING:
    import argparse
    from typing import Optional

EX_CONFLICT = 1
EX_USAGE = 64
EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_OSERR = 71
SIGNAL_BASE = 128  # exit status 128+N: ended by signal N, as a shell reports it (_child.SIGNAL_BASE)


class UsageError(Exception):
    """A command-line error: printed as one line, exit 64."""


def namespace_arg(args: argparse.Namespace) -> Optional[str]:
    value: Optional[str] = getattr(args, "namespace", None)
    return value


def allow_fs(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "allow_unsupported_fs", False))


def open_namespace(args: argparse.Namespace) -> xlock.Namespace:
    return xlock.Namespace(namespace_arg(args), allow_unsupported_fs=allow_fs(args))


def say(message: str) -> None:
    print(f"xlock: {message}", file=sys.stderr, flush=True)


def print_json(value: object) -> None:
    import json  # here: only --json output needs it

    # exact JSON, with no terminal control character raw (json escapes C0; DEL, C1, bidi escaped here)
    print(escape_json_text(json.dumps(value, indent=2, ensure_ascii=False)))


def show_name(name: str) -> str:
    """A name as one shell-safe-looking token: bare if plain, else JSON-quoted, controls escaped."""
    if name and all(c.isalnum() or c in "-_./:@+" for c in name) and name == _escape(name):
        return name
    import json  # here: only a name that is not plain needs it

    return escape_json_text(json.dumps(name, ensure_ascii=False))


def code_for(exc: BaseException) -> int:
    if isinstance(exc, (xlock.InvalidName, xlock.InvalidArgument, UsageError)):
        return EX_USAGE
    if isinstance(exc, (xlock.InsecureNamespace, xlock.UnsupportedFilesystem)):
        return EX_UNAVAILABLE
    if isinstance(exc, (xlock.UnsupportedBackend, xlock.BackendError)):  # [XL-PG-15]
        return EX_UNAVAILABLE
    if isinstance(exc, xlock.CapacityMismatch):
        return EX_DATAERR
    if isinstance(exc, (xlock.XLockOSError, OSError)):
        return EX_OSERR
    return EX_SOFTWARE
