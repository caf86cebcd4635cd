"""Error mappings of hostile objects (XL-ERR-5): sockets, FIFOs and directories where files belong,
foreign or short raw semaphores, squatted namespaces: INSECURE_NAMESPACE, never a crash or OS_ERROR."""

from __future__ import annotations

import os
from typing import Any

from xlock_conformance.checks import NOBODY, ns_identity, plant, sem_name
from xlock_conformance.plugin import spec


def _refused(d, what, kind, name, ns, **extra):
    """`open` (or, for a slot, the first try_acquire) must fail with INSECURE_NAMESPACE; returns a problem."""
    r = d.request("open", kind=kind, name=name, namespace=ns, **extra)
    if r.ok and kind == "semaphore":
        r = d.request("try_acquire", handle=r["handle"])
    if r.ok or r.error != "INSECURE_NAMESPACE":
        return (
            f"{what}: open {kind} {name!r} wants INSECURE_NAMESPACE, got {r.error or 'success'} "
            f"{r.get('message', '')} [XL-ERR-5]"
        )
    return None


@spec("XL-LOCK-5", "XL-ERR-5", "XL-CSEM-2", "XL-CSEM-3")
def test_error_socket_fifo_dir(one, lab):
    """A UNIX socket at the lock, slot or capacity path (open fails with ENXIO), and a FIFO or a directory
    at NAME.sem: INSECURE_NAMESPACE, not OS_ERROR."""
    d = lab.start(one, need=["lock"])
    plant(os.path.join(lab.ns, "sock.lock"), "socket")
    cases: list[tuple[str, str, str, dict[str, Any]]] = [("a UNIX socket at sock.lock", "lock", "sock", {})]
    if "semaphore" in d.capabilities:
        plant(os.path.join(lab.ns, "sslot.0.slot"), "socket")
        plant(os.path.join(lab.ns, "scap.sem"), "socket")
        plant(os.path.join(lab.ns, "fcap.sem"), "fifo")
        plant(os.path.join(lab.ns, "dcap.sem"), "dir")
        cases += [
            ("a UNIX socket at sslot.0.slot", "semaphore", "sslot", {"capacity": 1}),
            ("a UNIX socket at scap.sem", "semaphore", "scap", {"capacity": 1}),
            ("a FIFO at fcap.sem", "semaphore", "fcap", {"capacity": 1}),
            ("a directory at dcap.sem", "semaphore", "dcap", {"capacity": 1}),
        ]
    wrong = [p for what, kind, name, extra in cases if (p := _refused(d, what, kind, name, lab.ns, **extra))]
    assert not wrong, "\n".join(wrong)


@spec("XL-PSEM-2", "XL-PSEM-3", "XL-ERR-5", "XL-THREAT-2")
def test_error_raw_semaphore_planted(one, lab):
    """In /dev/shm, where a raw semaphore of a private namespace lives: another user's 0600 file, or an empty
    or 8-byte file of the namespace's owner. Opening it fails with INSECURE_NAMESPACE, and the driver lives
    on (a planted short file never gets mapped and used)."""
    d = lab.start(one, need=["posix_semaphore"])
    dev, ino = ns_identity(lab.ns)
    plants = [
        ("foreign", "full", NOBODY, "a 0600 raw semaphore file of uid 65534"),
        ("empty", "empty", None, "an empty file of the namespace's owner"),
        ("eight", "bytes:8", None, "an 8-byte file of the namespace's owner"),
    ]
    wrong = []
    for name, what, uid, label in plants:
        sem = sem_name("p", dev, ino, name)
        d.semaphores.add(sem)  # removed with the case
        path = "/dev/shm/sem." + sem[1:]
        plant(path, what)
        if uid is not None:
            os.chown(path, uid, uid)
        r = d.request("open", kind="posix_semaphore", name=name, namespace=lab.ns, value=1)
        if r.ok:
            r = d.request("try_acquire", handle=r["handle"])
            wrong.append(
                f"{label} at {path}: open succeeded (then try_acquire: {r.error or 'ok'}); want "
                "INSECURE_NAMESPACE [XL-PSEM-3]"
            )
        elif r.error != "INSECURE_NAMESPACE":
            wrong.append(f"{label} at {path}: want INSECURE_NAMESPACE, got {r.error} {r.get('message')}")
    assert not wrong, "\n".join(wrong)
    d.call("open", kind="posix_semaphore", name="fine", namespace=lab.ns, value=1)  # and it still serves


@spec("XL-NS-5", "XL-NS-6", "XL-ERR-3", "XL-ERR-5")
def test_error_namespace_squatted(one, lab):
    """A namespace directory created by another user (uid 65534, mode 0700), given explicitly:
    INSECURE_NAMESPACE naming the directory; nothing is created in it."""
    d = lab.start(one, need=["lock"])
    squat = lab.make_dir("squatted", 0o700)
    os.chown(squat, NOBODY, NOBODY)
    kinds: list[tuple[str, dict[str, Any]]] = [("lock", {})] + (
        [("semaphore", {"capacity": 2})] if "semaphore" in d.capabilities else []
    )
    for kind, extra in kinds:
        r = d.fails("INSECURE_NAMESPACE", "open", kind=kind, name="x", namespace=squat, **extra)
        assert squat in r.get("message", ""), (
            f"the message {r.get('message')!r} does not name {squat} [XL-ERR-3]"
        )
    assert os.listdir(squat) == [], f"files were made in another user's directory: {os.listdir(squat)}"
