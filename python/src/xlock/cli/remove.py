"""`xlock remove`: the files of idle locks and semaphores removed."""

from __future__ import annotations

import os
import time

import xlock

from .. import _status, names
from .._bell import BELL_FILE
from .._files import owner_of
from ._common import EX_CONFLICT, UsageError, open_namespace, say, show_name
from .path import name_paths

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): the xlock command starts fast
if TYPE_CHECKING:
    import argparse


TEMPORARY_AGE_S = 60  # temporary files older than this are left behind by a dead creator [XL-RM-8]


def _idle_targets(files: list[str]) -> list[tuple[str, str]]:
    """(name, kind) of every lock and counting semaphore with a file in the namespace, slot files
    without a capacity file included, each once."""
    targets: dict[tuple[str, str], None] = {}
    for decoded in (_status.decode_file_name(f) for f in files):
        if decoded is not None and decoded.kind != "temporary":
            targets[(decoded.name, "lock" if decoded.kind == "lock" else "semaphore")] = None
    return list(targets)


def _is_temporary(file_name: str) -> bool:
    if file_name.startswith(BELL_FILE + ".") and file_name.endswith(".tmp"):
        return _status.is_random_suffix(file_name[len(BELL_FILE) + 1 : -len(".tmp")])
    decoded = _status.decode_file_name(file_name)
    return decoded is not None and decoded.kind == "temporary"


def _reclaim_temporaries(ns: xlock.Namespace, files: list[str]) -> int:
    """Unlink the temporary files older than TEMPORARY_AGE_S [XL-RM-8]; returns how many were left."""
    left = 0
    now = time.time()
    for file_name in files:
        if not _is_temporary(file_name):
            continue
        try:
            st = os.stat(file_name, dir_fd=ns.fd, follow_symlinks=False)
            if now - st.st_mtime < TEMPORARY_AGE_S:
                continue  # a creator may still be at work
            os.unlink(file_name, dir_fd=ns.fd)
            print(f"removed: temporary file {show_name(file_name)}")
        except FileNotFoundError:
            continue
        except OSError as exc:
            print(f"left: temporary file {show_name(file_name)}: {exc.strerror} ({owner_of(ns, file_name)})")
            left += 1
    return left


def _remove_all_idle(args: argparse.Namespace) -> int:
    """Remove every idle lock and counting semaphore; skip and report what is held, not ours to remove
    or malformed, and go on [XL-RM-8]."""
    ns = open_namespace(args)
    try:
        files = sorted(os.listdir(ns.fd))
        for name, kind in _idle_targets(files):
            label = f"{kind} {show_name(name)}"
            try:
                # a semaphore's capacity is read from its capacity file
                removed = xlock.remove(name, namespace=ns, kind=kind)
            except xlock.WouldBlock:
                print(f"held, left: {label}")
                continue
            except (xlock.InsecureNamespace, xlock.CapacityMismatch, xlock.XLockOSError) as exc:
                print(f"left: {label}: {exc}")
                continue
            if removed:
                print(f"removed: {label}")
        _reclaim_temporaries(ns, files)
        return 0
    finally:
        ns.close()


def cmd_remove(args: argparse.Namespace) -> int:
    if args.all_idle:
        if args.name is not None:
            raise UsageError("give either NAME or --all-idle, not both")
        return _remove_all_idle(args)
    if args.name is None:
        raise UsageError("remove needs a NAME or --all-idle (see 'xlock remove --help')")
    names.validate_name(args.name)
    if args.kind != "semaphore" and args.capacity is not None:
        raise UsageError("--capacity applies to --kind semaphore only")
    ns = open_namespace(args)
    try:
        info = name_paths(ns, args.name, args.kind, None)
        try:
            removed = xlock.remove(args.name, namespace=ns, kind=args.kind, capacity=args.capacity)
        except xlock.WouldBlock as exc:
            say(f"error: {exc}")
            return EX_CONFLICT
    finally:
        ns.close()
    what = info["path"] if info["path"] is not None else info["semaphore"]
    print(f"{'removed' if removed else 'nothing to remove'}: {what}")
    return 0
