"""`xlock path`: the files and bell word a name maps to."""

from __future__ import annotations

from .. import names
from .._bell import BELL_FILE
from ._common import UsageError, open_namespace, print_json

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): the xlock command starts fast
if TYPE_CHECKING:
    import argparse
    from typing import Optional

    import xlock


def name_paths(ns: xlock.Namespace, name: str, kind: str, capacity: Optional[int]) -> dict[str, object]:
    """The files, bell word or raw semaphore name of `name` in `ns` (XL-ENC-3, XL-SEM-1, XL-SEM-7);
    opens nothing [XL-INTRO-1]."""
    n = names.EncodedName(name)
    info: dict[str, object] = {
        "name": name,
        "kind": kind,
        "namespace": ns.path,
        "dev": ns.dev,
        "ino": ns.ino,
        "sharing": ns.sharing,
    }
    if kind == "posix_semaphore":
        sem = n.semaphore_name("p", ns.dev, ns.ino)
        info["path"] = None
        info["semaphore"] = sem
        info["shm_path"] = "/dev/shm/sem." + sem[1:]  # the semaphore's file [XL-PSEM-2]
        return info
    info["bell"] = ns.join(BELL_FILE)
    if kind == "lock":
        info["path"] = ns.join(n.lock_file)
        info["bell_word"] = n.bell_word("l")
    else:
        info["path"] = ns.join(n.capacity_file)
        info["bell_word"] = n.bell_word("s")
        if capacity is not None:
            info["slot_files"] = [ns.join(n.slot_file(i)) for i in range(capacity)]
    return info


def cmd_path(args: argparse.Namespace) -> int:
    names.validate_name(args.name)
    if args.capacity is not None and args.kind != "semaphore":
        raise UsageError("--capacity applies to --kind semaphore only")
    ns = open_namespace(args)
    try:
        info = name_paths(ns, args.name, args.kind, args.capacity)
    finally:
        ns.close()
    if args.json:
        print_json(info)
        return 0
    if args.quiet:
        print(info["path"] if info["path"] is not None else info["shm_path"])
        return 0
    labels = {"lock": "lock file", "semaphore": "capacity file"}
    if info["path"] is not None:
        print(f"{labels[args.kind] + ':':<15} {info['path']}")
    for slot_file in info.get("slot_files", []):  # type: ignore[attr-defined]
        print(f"{'slot file:':<15} {slot_file}")
    if "bell" in info:
        print(f"{'bell:':<15} {info['bell']}, word {info['bell_word']}")
    else:
        print(f"{'semaphore:':<15} {info['semaphore']}")
        print(f"{'file:':<15} {info['shm_path']}")
    return 0
