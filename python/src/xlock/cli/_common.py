"""What every subcommand shares: exit statuses, the usage error, argument types, output helpers."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from typing import Optional

import xlock

from .._display import escape as _escape
from .._display import escape_json_text

EX_CONFLICT = 1
EX_USAGE = 64
EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_OSERR = 71

# add(name, summary, description): a subcommand's parser, with the options every subcommand takes.
AddParser = Callable[[str, str, str], argparse.ArgumentParser]


class UsageError(Exception):
    """A command-line error: printed as one line, exit 64."""


def capacity_arg(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= value <= 1000:  # XL-CSEM-1
        raise argparse.ArgumentTypeError(f"capacity {text!r} must be from 1 to 1000")
    return value


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
    # exact JSON, with no terminal control character raw (json escapes C0; DEL, C1, bidi escaped here)
    print(escape_json_text(json.dumps(value, indent=2, ensure_ascii=False)))


def show_name(name: str) -> str:
    """A name as one shell-safe-looking token: bare if plain, else JSON-quoted, controls escaped."""
    if name and all(c.isalnum() or c in "-_./:@+" for c in name) and name == _escape(name):
        return name
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
