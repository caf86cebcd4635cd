"""Names: every driver reproduces spec/vectors/names.json and creates exactly those files."""

from __future__ import annotations

import json
import os
from typing import Any

from xlock_conformance.checks import BELL, draft1_doorbells, ns_identity, unlink_quietly
from xlock_conformance.plugin import spec


def _name_arg(case):
    # JSON cannot carry lone surrogates: those cases travel as their bytes [PROTOCOL: name_hex]
    return {"name": case["name"]} if case["name"] is not None else {"name_hex": case["name_utf8_hex"]}


def _show(case):
    return case["name"] if case["name"] is not None else f"bytes {case['name_utf8_hex']}"


@spec(
    "XL-SEM-6",
    "XL-ENC-1",
    "XL-ENC-2",
    "XL-ENC-3",
    "XL-SEM-1",
    "XL-SEM-2",
    "XL-SEM-3",
    "XL-SEM-4",
    "XL-SEM-7",
    "XL-NAME-1",
    "XL-NAME-2",
    "XL-NAME-3",
    "XL-NAME-4",
)
def test_names_map(one, lab, vectors):
    d = lab.start(one, need=["map"])
    wrong = []
    for case in vectors["cases"]:
        for ns in vectors["namespaces"]:
            r = d.request("map", dev=ns["dev"], ino=ns["ino"], **_name_arg(case))
            where = f"{case['description']} ({_show(case)!r}, {ns['id']})"
            if not case["valid"]:
                if r.ok or r.error != "INVALID_NAME":
                    wrong.append(f"{where}: want INVALID_NAME, got {json.dumps(r.data, ensure_ascii=False)}")
                continue
            if not r.ok:
                wrong.append(f"{where}: want a mapping, got {r.error}: {r.get('message')}")
                continue
            want = {
                "lock_file": case["lock_file"],
                "capacity_file": case["capacity_file"],
                "slot_files": case["slot_files"],
                "semaphores": case["semaphores"][ns["id"]],
                "bell_words": case["bell_words"],
            }
            got = {k: r.get(k) for k in want}
            if got != want:
                diff = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
                wrong.append(f"{where}: (got, want) " + json.dumps(diff, ensure_ascii=False))
    n = len(vectors["cases"]) * len(vectors["namespaces"])
    assert not wrong, f"{len(wrong)} of {n} mappings differ from spec/vectors/names.json:\n" + "\n".join(
        wrong[:15]
    )


@spec("XL-NAME-3")
def test_names_invalid_open(one, lab, vectors):
    d = lab.start(one, need=["lock"])
    never = str(lab.tmp / "never-created")
    kinds: list[tuple[str, dict[str, Any]]] = [("lock", {})]
    if "semaphore" in d.capabilities:
        kinds.append(("semaphore", {"capacity": 2}))
    if "posix_semaphore" in d.capabilities:
        kinds.append(("posix_semaphore", {"value": 1}))
    wrong = []
    for case in vectors["cases"]:
        if case["valid"]:
            continue
        for kind, extra in kinds:
            for ns in (lab.ns, never):
                r = d.request("open", kind=kind, namespace=ns, **_name_arg(case), **extra)
                if r.ok or r.error != "INVALID_NAME":
                    wrong.append(
                        f"open {kind} {_show(case)!r} ({case['description']}) in {ns}: want INVALID_NAME, "
                        f"got {json.dumps(r.data, ensure_ascii=False)}"
                    )
    assert not wrong, "\n".join(wrong[:15])
    assert os.listdir(lab.ns) == [], f"invalid names left files in the namespace: {os.listdir(lab.ns)}"
    assert not os.path.exists(never), (
        f"open with an invalid name created the namespace {never}: names are checked before any file "
        "system operation [XL-NAME-3]"
    )


@spec(
    "XL-ENC-3",
    "XL-ENC-4",
    "XL-SEM-2",
    "XL-SEM-5",
    "XL-SEM-7",
    "XL-INTRO-1",
    "XL-LOCK-2",
    "XL-NAME-4",
    "XL-NS-15",
    "XL-BELL-1",
)
def test_names_files(one, lab, vectors):
    """`open` of every valid name reports the namespace, its identity and sharing, the lock file, the bell
    and the name's bell word; afterwards the namespace holds exactly those lock files and one bell, and
    /dev/shm holds no semaphore for any of them (draft 1's doorbells are withdrawn)."""
    d = lab.start(one, need=["lock"])
    dev, ino = ns_identity(lab.ns)
    expected, wrong, names = {BELL}, [], []
    for case in vectors["cases"]:
        if not case["valid"]:
            continue
        r = d.call("open", kind="lock", namespace=lab.ns, **_name_arg(case))
        name = case["name"]
        names.append(name)
        want = {
            "namespace": lab.ns,
            "dev": dev,
            "ino": ino,
            "path": os.path.join(lab.ns, case["lock_file"]),
            "semaphore": None,
            "bell": os.path.join(lab.ns, BELL),
            "bell_word": case["bell_words"]["l"],
            "sharing": "private",
        }
        got = {k: r.get(k) for k in want}
        if got != want:
            wrong.append(
                f"open lock {name!r}: (got, want) "
                + json.dumps({k: (got[k], want[k]) for k in want if got[k] != want[k]}, ensure_ascii=False)
            )
        expected.add(case["lock_file"])
        d.call("try_acquire", handle=r["handle"])
        d.call("release", handle=r["handle"])
        d.call("close", handle=r["handle"])
    leftover = draft1_doorbells(lab.ns, names)
    unlink_quietly(leftover)
    assert not wrong, "\n".join(wrong[:15])
    assert not leftover, (
        f"locks made {len(leftover)} POSIX semaphores in /dev/shm, e.g. {leftover[:3]}: draft 1's "
        "doorbells are withdrawn; a lock creates nothing outside its namespace [XL-SEM-2, XL-THREAT-2]"
    )
    present = set(os.listdir(lab.ns))
    assert present == expected, (
        f"the namespace holds {len(present)} files for {len(expected) - 1} names and the bell; missing: "
        f"{sorted(expected - present)[:10]}; unexpected: {sorted(present - expected)[:10]} [XL-ENC-3, "
        "XL-ENC-4, XL-BELL-1]"
    )
