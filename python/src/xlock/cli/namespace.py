"""`xlock namespace`: the namespace this process would use, and whether it is accepted."""

from __future__ import annotations

import os
import pwd
import stat

import xlock

from .. import _libc, names
from .._bell import BELL_FILE, bell_of
from ._common import code_for, namespace_arg, open_namespace, print_json, say

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (slow): the xlock command starts fast
if TYPE_CHECKING:
    import argparse
    from typing import Optional

# What a shared namespace means for its users [XL-NS-15, XL-THREAT-3, XL-THREAT-4].
SHARING_MEANS = {
    "group-shared": "every member of the directory's group may create, hold and deny service on locks "
    "here; the file owner can rename or unlink a held file (two holders until it is released)",
    "world-shared": "every local user is a member: anyone may create, hold and deny service on locks here, "
    "and the owner of a file can rename or unlink it while held (two holders until it is released); "
    "prefer a group-shared namespace",
}


def _mount_fs_type(dev: int) -> Optional[str]:
    """The file-system type name of the mount whose device is `dev`, from /proc/self/mountinfo."""
    wanted = f"{os.major(dev)}:{os.minor(dev)}"
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.split()
                if len(fields) > 2 and fields[2] == wanted and " - " in line:
                    return line.split(" - ", 1)[1].split()[0]
    except OSError:
        return None
    return None


def _describe_refused(path: str) -> tuple[Optional[os.stat_result], Optional[int]]:
    """stat and f_type of a refused namespace, only to describe it; a symlink is described itself."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        try:
            return os.lstat(path), None
        except OSError:
            return None, None
    try:
        return os.fstat(fd), _libc.fstatfs_type(fd)
    finally:
        os.close(fd)


def namespace_info(args: argparse.Namespace) -> tuple[dict[str, object], Optional[xlock.XLockError]]:
    """What `xlock namespace` reports; the error is the library's refusal, if any."""
    explicit = namespace_arg(args)
    if explicit is not None:
        source = "--namespace"
    elif os.environ.get("XLOCK_NAMESPACE"):
        source = "XLOCK_NAMESPACE"
    else:
        source = "default"
    path = names.resolve_namespace_path(explicit)
    info: dict[str, object] = {"path": path, "source": source}
    refusal: Optional[xlock.XLockError] = None
    try:
        ns = open_namespace(args)
    except (xlock.InsecureNamespace, xlock.UnsupportedFilesystem, xlock.XLockOSError) as exc:
        refusal = exc
        st, fs_type = _describe_refused(path)
    else:
        try:
            st = os.fstat(ns.fd)
            fs_type = _libc.fstatfs_type(ns.fd)
            info.update(
                shared=ns.shared,
                sharing=ns.sharing,
                file_mode=f"{ns.file_mode:04o}",
                capacity_mode=f"{ns.capacity_mode:04o}",
                default=ns.is_default,
                bell=ns.join(BELL_FILE),
                bell_state=bell_of(ns, create=False).state,  # opens an existing bell only [XL-BELL-8]
            )
        finally:
            ns.close()
    if st is not None:
        try:
            owner: object = pwd.getpwuid(st.st_uid).pw_name
        except KeyError:
            owner = None
        info.update(
            dev=st.st_dev,
            ino=st.st_ino,
            uid=st.st_uid,
            owner=owner,
            mode=f"{stat.S_IMODE(st.st_mode):04o}",
            fs=_mount_fs_type(st.st_dev),
        )
    if fs_type is not None:
        info["fs_magic"] = f"0x{fs_type:x}"
    info["accepted"] = refusal is None
    if refusal is not None:
        info["error"] = refusal.kind
        info["message"] = str(refusal)
    return info, refusal


def cmd_namespace(args: argparse.Namespace) -> int:
    info, refusal = namespace_info(args)
    if args.json:
        print_json(info)
    else:
        why = {
            "--namespace": "given with --namespace",
            "XLOCK_NAMESPACE": "from $XLOCK_NAMESPACE",
            "default": "the default for this user",
        }[str(info["source"])]
        print(f"namespace:  {info['path']}  ({why})")
        if "dev" in info:
            dev = int(str(info["dev"]))
            print(f"identity:   dev {dev} ({os.major(dev)}:{os.minor(dev)}), ino {info['ino']}")
            print(f"owner:      {info['owner'] or '?'} (uid {info['uid']}), mode {info['mode']}")
            fs = info.get("fs") or "?"
            magic = f" ({info['fs_magic']})" if "fs_magic" in info else ""
            print(f"filesystem: {fs}{magic}")
        if refusal is None:
            print(
                f"sharing:    {info['sharing']}, files get mode {info['file_mode']} (capacity files "
                f"{info['capacity_mode']})"
            )
            if info["sharing"] != "private":
                print(f"            {SHARING_MEANS[str(info['sharing'])]}")
            print(f"bell:       {info['bell']}: {info['bell_state']}")
            print("accepted:   yes")
        else:
            print("accepted:   no")
    if refusal is None:
        return 0
    say(f"error: {refusal}")
    return code_for(refusal)
