"""The ``xlock`` subcommands on a PostgreSQL namespace: ``status``, ``path``, ``namespace``, ``remove``
(``run`` needs nothing of its own: ``xlock.Lock`` and ``xlock.Semaphore`` take the URI) [XL-PG-12]."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional

from .._display import escape, escape_json_text
from .._errors import InvalidArgument, WouldBlock, XLockError
from ..names import validate_name
from .keys import key, split
from .url import parse

__all__ = ["run_command"]

EX_CONFLICT = 1
EX_USAGE = 64
EX_UNAVAILABLE = 69


def _print_json(value: object) -> None:
    # as the local namespace's output: no terminal control raw (names cannot hold one [XL-NAME-2], and the
    # server writes application_name as printable ASCII; this keeps both outputs one routine's)
    print(escape_json_text(json.dumps(value, indent=2, ensure_ascii=False)))


def _keys(label: str, name: str, kind: str, capacity: Optional[int]) -> dict[str, Any]:
    if kind == "lock":
        k = key("l", label, name)
        return {"key": k, "classid": split(k)[0], "objid": split(k)[1]}
    slots = [key("s", label, name, i) for i in range(capacity or 1)]
    info: dict[str, Any] = {"key": slots[0], "slot_keys": slots if capacity else None}
    if capacity:
        info["capacity_marker"] = key("c", label, name, capacity)
    return info


def cmd_path(args: argparse.Namespace, url: str) -> int:
    """The keys of a name [XL-PG-3, XL-PG-12]: a pure mapping, no connection."""
    validate_name(args.name)
    if args.kind == "posix_semaphore":
        raise InvalidArgument("--kind posix_semaphore has no PostgreSQL form; use lock or semaphore")
    ns = parse(url)
    info = {"name": args.name, "kind": args.kind, "namespace": ns.shown, "label": ns.label, "path": None}
    info.update(_keys(ns.label, args.name, args.kind, args.capacity))
    if args.json:
        _print_json(info)
        return 0
    print(f"{'namespace:':<15} {ns.shown} (label {ns.label})")
    print(
        f"{'key:':<15} {info['key']}"
        + (
            f" (pg_locks classid {info['classid']}, objid {info['objid']})"
            if "classid" in info
            else " (slot 0)"
        )
    )
    for i, k in enumerate(info.get("slot_keys") or []):
        print(f"{f'slot {i} key:':<15} {k}")
    if "capacity_marker" in info:
        print(f"{'capacity mark:':<15} {info['capacity_marker']}")
    return 0


def cmd_status(args: argparse.Namespace, url: str) -> int:
    """Holders and waiters of a name, from pg_locks and pg_stat_activity [XL-PG-12]."""
    from .session import Session
    from .status import query

    if args.name is None:
        raise InvalidArgument(
            "status on a PostgreSQL namespace needs a NAME (keys cannot be turned back into names)"
        )
    validate_name(args.name)
    ns = parse(url)
    session = Session(ns, f"xlock status in {ns.shown}")
    try:
        entries = query(session, ns.label, [args.name])
    finally:
        session.close()
    if args.json:
        _print_json(
            {
                "namespace": {
                    "url": ns.shown,
                    "label": ns.label,
                    "database": session.database,
                    "system_identifier": session.system_identifier,
                },
                "locks": [
                    {
                        "name": e.name,
                        "kind": e.kind,
                        "slot": e.extra if e.kind == "semaphore slot" else None,
                        "key": e.key,
                        "holders": [_process(p) for p in e.holders],
                        "waiters": [_process(p) for p in e.waiters],
                    }
                    for e in entries
                ],
            }
        )
        return 0
    print(f"namespace {ns.shown} (label {ns.label}, database {session.database})")
    if not entries:
        print(f"{args.name}: not held, nobody waiting")
    for e in entries:
        what = e.kind if e.extra is None else f"{e.kind} {e.extra}"
        print(f"{escape_json_text(json.dumps(e.name, ensure_ascii=False))}  ({what}, key {e.key})")
        for p in e.holders:
            print(f"  holder {_text(p)}")
        for p in e.waiters:
            print(f"  waiter {_text(p)}" + (f"  blocked by {p.blocked_by}" if p.blocked_by else ""))
    return 0


def _process(p: Any) -> dict[str, Any]:
    return {
        "backend_pid": p.backend_pid,
        "mode": p.mode,
        "client_pid": p.client_pid,
        "client_host": p.client_host,
        "client": p.client,
        "application_name": p.application_name,
        "state": p.state,
        "blocked_by": p.blocked_by,
    }


def _text(p: Any) -> str:
    # what the server reports about other sessions, escaped as the local namespace's status does
    who = (
        f"pid {p.client_pid} on {escape(str(p.client_host))}"
        if p.client_pid is not None
        else f"application {p.application_name!r}"
    )
    via, state = escape(str(p.client)), escape(str(p.state))
    return f"backend {p.backend_pid:>7}  {p.mode:<9}  {who}  via {via}  ({state})"


def cmd_namespace(args: argparse.Namespace, url: str, source: str) -> int:
    """The namespace, and whether the server accepts us (a session is opened and closed) [XL-PG-6]."""
    from .session import Session

    ns = parse(url)
    info: dict[str, Any] = {
        "namespace": ns.shown,
        "source": source,
        "label": ns.label,
        "server": ns.server(),
        "release_ms": ns.release_ms,
    }
    refusal: Optional[XLockError] = None
    try:
        session = Session(ns, f"namespace {ns.shown}")
        info.update(
            database=session.database,
            system_identifier=session.system_identifier,
            server_version=session.server_version,
        )
        session.close()
    except XLockError as exc:
        refusal = exc
        info.update(error=exc.kind, message=str(exc))
    info["accepted"] = refusal is None
    if args.json:
        _print_json(info)
    else:
        print(f"namespace:  {ns.shown}  ({source})")
        print(f"label:      {ns.label}")
        print(f"server:     {ns.server()}")
        if refusal is None:
            print(
                f"identity:   system {info['system_identifier']}, database {info['database']}, "
                f"PostgreSQL {info['server_version']}"
            )
        print(f"release:    within about {ns.release_ms} ms of a network loss (xlock_release_ms) [XL-PG-11]")
        print(f"accepted:   {'yes' if refusal is None else 'no'}")
    if refusal is not None:
        print(f"xlock: error: {refusal}", file=sys.stderr)
        return EX_UNAVAILABLE
    return 0


def cmd_remove(args: argparse.Namespace, url: str) -> int:
    """Nothing to remove [XL-PG-18]: tries once, reports WOULD_BLOCK if held."""
    from . import remove

    if args.all_idle:
        print("nothing to remove: a PostgreSQL namespace has no files [XL-PG-18]")
        return 0
    if args.name is None:
        raise InvalidArgument("remove needs a NAME")
    validate_name(args.name)
    try:
        remove(args.name, url, kind=args.kind, capacity=args.capacity)
    except WouldBlock as exc:
        print(f"xlock: error: {exc}", file=sys.stderr)
        return EX_CONFLICT
    print(f"nothing to remove: {args.name} has no files in {parse(url).shown} [XL-PG-18]")
    return 0


def run_command(args: argparse.Namespace, url: str) -> Optional[int]:
    """Run a subcommand on a PostgreSQL namespace, or ``None`` if ``run`` handles it itself."""
    source = "--namespace" if getattr(args, "namespace", None) is not None else "XLOCK_NAMESPACE"
    if args.command == "status":
        return cmd_status(args, url)
    if args.command == "path":
        return cmd_path(args, url)
    if args.command == "namespace":
        return cmd_namespace(args, url, source)
    if args.command == "remove":
        return cmd_remove(args, url)
    return None
