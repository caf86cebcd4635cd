"""`xlock status`: the held and waited-for locks and slots of a namespace, with their holders."""

from __future__ import annotations

import os
import pwd

from .. import _status, names
from .._display import escape as _escape
from .._display import show_argv
from ._common import open_namespace, print_json, show_name

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): the xlock command starts fast
if TYPE_CHECKING:
    import argparse
    from typing import Optional

    import xlock


def _user(uid: int) -> Optional[str]:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return None


def _process_json(p: _status.Process) -> dict[str, object]:
    out: dict[str, object] = {"pid": p.pid, "mode": p.mode, "cmdline": p.cmdline}
    if p.pid_state != "unknown" or p.through:
        out["pid_state"] = p.pid_state
        out["through"] = [{"pid": t.pid, "cmdline": t.cmdline} for t in p.through]
    return out


def _entry_json(ns: xlock.Namespace, e: _status.FileStatus) -> dict[str, object]:
    return {
        "name": e.file.name,
        "kind": "lock" if e.file.kind == "lock" else "semaphore",
        "slot": e.file.slot,
        "file": e.file.file,
        "path": os.path.join(ns.path, e.file.file),
        "owner": _user(e.uid),
        "uid": e.uid,
        "state": e.state,
        "mode": e.mode,
        "holders": [_process_json(p) for p in e.holders],
        "waiters": [_process_json(p) for p in e.waiters],
    }


def _command_text(cmdline: Optional[list[str]]) -> str:
    return show_argv(cmdline) if cmdline is not None else "?"


def _process_text(p: _status.Process) -> str:
    return f"{p.pid:>7}  {p.mode:<9}  {_command_text(p.cmdline)}"


def _holder_notes(p: _status.Process) -> list[str]:
    """What /proc/locks does not say: the PID that placed the lock is gone or closed the file, and who
    holds it now through an inherited descriptor [XL-INTRO-2]."""
    notes = []
    if p.pid_state == "exited":
        notes.append(f"pid {p.pid} has exited; the lock lives on in processes that inherited its descriptor")
    elif p.pid_state == "closed":
        notes.append(
            f"pid {p.pid} no longer has the file open; a process that inherited its descriptor holds it"
        )
    for t in p.through:
        notes.append(
            f"through pid {t.pid} (inherited descriptor: forked child or command): {_command_text(t.cmdline)}"
        )
    return notes


def cmd_status(args: argparse.Namespace) -> int:
    if args.name is not None:
        names.validate_name(args.name)
    ns = open_namespace(args)
    try:
        entries = _status.namespace_status(ns.fd, _status.read_proc_locks())
        entries = [
            e
            for e in entries
            if (args.all or e.state != "idle") and (args.name is None or e.file.name == args.name)
        ]
        if args.json:
            print_json(
                {
                    "namespace": {"path": ns.path, "dev": ns.dev, "ino": ns.ino},
                    "locks": [_entry_json(ns, e) for e in entries],
                }
            )
            return 0
        # Every field is escaped: command lines, names and paths come from other users [XL-INTRO-2].
        if not entries:
            what = "no idle, held or waited-for locks" if args.all else "no held or waited-for locks"
            print(f"{what} in {_escape(ns.path)}")
            return 0
        print(f"namespace {_escape(ns.path)}")
        for e in entries:
            kind = "lock" if e.file.kind == "lock" else f"semaphore slot {e.file.slot}"
            state = e.state if e.mode is None else f"{e.state} {e.mode}"
            owner = _user(e.uid) or f"uid {e.uid}"
            print(f"{show_name(e.file.name)}  ({kind}, {state}, owner {_escape(owner)})")
            for p in e.holders:
                print(f"  holder {_process_text(p)}")
                for note in _holder_notes(p):
                    print(f"         {note}")
            for p in e.waiters:
                print(f"  waiter {_process_text(p)}")
        return 0
    finally:
        ns.close()
