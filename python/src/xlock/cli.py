"""The `xlock` command: run a command under a lock, show who holds what, map names, remove idle files.

Exit codes (also in `xlock --help` and python/README.md):

* `run` (as util-linux flock(1)): the command's own status; 1 (or `-E CODE`) if the lock was not taken
  because of `-n` or `-w`; 69 if the command cannot be executed (71 for lack of memory); 128+N if it
  died from signal N, and 128+N if xlock itself got SIGINT/SIGTERM/SIGHUP while waiting for the lock.
* every subcommand: 0 success; 1 `remove` of a held lock; 64 usage error (bad name, bad arguments);
  65 capacity mismatch; 69 namespace refused (insecure or unsupported file system); 70 internal error;
  71 other system error; 141 (128 + SIGPIPE) if standard output was closed early.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import pwd
import shlex
import signal
import stat
import sys
import time
from collections.abc import Sequence
from typing import NoReturn, Optional

import xlock

from . import _libc, _status, names
from ._bell import BELL_FILE, bell_of
from ._child import SIGNAL_BASE, Signalled, exec_command, exit_on_signals, run_child
from ._display import escape as _escape
from ._display import escape_json_text, show_argv
from ._files import owner_of
from ._pg import pg_namespace

EX_CONFLICT = 1
EX_USAGE = 64
EX_DATAERR = 65
EX_UNAVAILABLE = 69
EX_SOFTWARE = 70
EX_OSERR = 71

# What a shared namespace means for its users [XL-NS-15, XL-THREAT-3, XL-THREAT-4].
SHARING_MEANS = {
    "group-shared": "every member of the directory's group may create, hold and deny service on locks "
    "here; the file owner can rename or unlink a held file (two holders until it is released)",
    "world-shared": "every local user is a member: anyone may create, hold and deny service on locks here, "
    "and the owner of a file can rename or unlink it while held (two holders until it is released); "
    "prefer a group-shared namespace",
}

EXIT_CODES_HELP = """\
exit status:
  run        as flock(1): COMMAND's status; 1 (or -E CODE) if the lock was not taken because of -n
             or -w; 69 COMMAND could not be executed (71 for lack of memory); 128+N COMMAND died
             from signal N (or xlock got SIGINT/SIGTERM/SIGHUP while waiting)
  all        0 success; 1 remove of a held lock; 64 usage error (bad name or arguments);
             65 capacity mismatch; 69 namespace refused (insecure, unsupported file system);
             70 internal error; 71 other system error; 141 standard output closed early
"""

RUN_DESCRIPTION = """\
Take the lock NAME (or, with --permits N, one of the N permits of the counting semaphore NAME), run
COMMAND (or, with -c, STRING through $SHELL or /bin/sh), and exit with COMMAND's status. The options
and exit statuses are util-linux flock(1)'s; NAME is an xlock name, not a path (xlock path -q NAME
prints its lock file, for flock(1) on it).

Like flock(1), COMMAND inherits the locked descriptor: the lock lives as long as COMMAND (or a process
that inherited it from COMMAND), whatever happens to xlock. With -o COMMAND does not get it: the lock
stays in xlock, which waits for COMMAND; if xlock dies, COMMAND is killed (SIGKILL, PR_SET_PDEATHSIG),
so it never runs unlocked. With -F xlock execs COMMAND, which holds the lock itself.

While COMMAND runs, SIGTERM and SIGHUP sent to xlock are forwarded to it; SIGINT and SIGQUIT are not
(the terminal's Ctrl-C and Ctrl-\\ already reach COMMAND, which is in xlock's process group): COMMAND
gets each once. Ctrl-Z stops both.
"""


class UsageError(Exception):
    """A command-line error: printed as one line, exit 64."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


# --------------------------------------------------------------------------------------------------
# argument parsing


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a finite number of seconds >= 0")
    return value


def _exit_code(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        value = -1
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"{text!r} is not an exit code from 0 to 255")
    return value


def _capacity(text: str) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if not 1 <= value <= 1000:  # XL-CSEM-1
        raise argparse.ArgumentTypeError(f"capacity {text!r} must be from 1 to 1000")
    return value


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--namespace",
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="namespace directory or postgresql:// URI (default: $XLOCK_NAMESPACE, else /tmp/xlock-EUID)",
    )
    common.add_argument(
        "--allow-unsupported-fs",
        action="store_true",
        default=argparse.SUPPRESS,
        help="accept a namespace on NFS, SMB, FUSE, ... where flock(2) may not exclude",
    )
    parser = _Parser(
        prog="xlock",
        description="Named, crash-safe locks shared by every process and language on this host (xlock/1).",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"xlock {xlock.__version__} (xlock/1)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def add(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            help=summary,
            description=description,
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            parents=[common],
        )

    run = add(
        "run", "run a command while holding a lock (options and exit codes of flock(1))", RUN_DESCRIPTION
    )
    run.usage = (
        "xlock run [options] NAME COMMAND [ARGUMENT...]\n"
        "       xlock run [options] NAME -c STRING\n"
        "       xlock run [options] -c STRING NAME"
    )
    run.add_argument("name", metavar="NAME", help="lock name (not a path)")
    run.add_argument(
        "-s", "--shared", dest="mode", action="store_const", const="shared", help="take a shared lock"
    )
    run.add_argument(
        "-x",
        "-e",
        "--exclusive",
        dest="mode",
        action="store_const",
        const="exclusive",
        help="take an exclusive lock (the default)",
    )
    run.add_argument(
        "-n",
        "--nb",
        "--nonblock",
        "--nonblocking",
        dest="nonblock",
        action="store_true",
        help="fail rather than wait",
    )
    run.add_argument(
        "-w", "--wait", "--timeout", metavar="SECONDS", type=_seconds, help="wait at most SECONDS (0: as -n)"
    )
    run.add_argument(
        "-E",
        "--conflict-exit-code",
        metavar="CODE",
        type=_exit_code,
        default=EX_CONFLICT,
        help="exit status when -n or -w did not get the lock (default 1)",
    )
    run.add_argument(
        "-o",
        "--close",
        action="store_true",
        help="COMMAND does not inherit the lock's descriptor; xlock holds it, and COMMAND is killed if "
        "xlock dies",
    )
    run.add_argument(
        "-c",
        "--command",
        metavar="STRING",
        dest="command_string",
        help="run STRING with $SHELL -c (else /bin/sh)",
    )
    run.add_argument(
        "-F", "--no-fork", action="store_true", help="exec COMMAND in xlock's process, holding the lock"
    )
    run.add_argument(
        "--verbose", action="store_true", help="say how long the lock took, what runs and why it did not"
    )
    run.add_argument(
        "--permits",
        metavar="N",
        type=_capacity,
        help="take one of N permits of the counting semaphore NAME instead of the lock NAME; COMMAND gets "
        "the permit's slot index (0..N-1) in $XLOCK_SLOT (was -c/--capacity before 0.2)",
    )
    run.add_argument(
        "-q", "--quiet", action="store_true", help="no warning for a NAME that looks like a path"
    )
    run.add_argument("cmd", metavar="COMMAND", nargs=argparse.REMAINDER, help="the command and arguments")

    status = add(
        "status",
        "show held and waited-for locks and semaphore slots",
        "List the locks and semaphore slots of the namespace that are held or waited for, with the "
        "holders' and waiters' PIDs, modes and command lines (from /proc/locks). Waiters are processes "
        "blocked in an untimed wait (flock(2)); a timed waiter or a semaphore waiter sleeps on the "
        "namespace's bell between non-blocking attempts, so /proc/locks does not show it.",
    )
    status.add_argument("name", metavar="NAME", nargs="?", help="only this lock or semaphore name")
    status.add_argument("--all", action="store_true", help="also list idle lock and slot files")
    status.add_argument("--json", action="store_true", help="print JSON")

    path = add(
        "path",
        "print the files and bell word of a name",
        "Print the lock file (or capacity file) path of NAME in the namespace, and the namespace's bell "
        "file with NAME's word in it (for --kind posix_semaphore: the raw semaphore's name and file). "
        "Creates the namespace directory if it is missing, as any xlock user would; creates no file.",
    )
    path.add_argument("name", metavar="NAME")
    path.add_argument(
        "--kind", choices=("lock", "semaphore", "posix_semaphore"), default="lock", help="default: lock"
    )
    path.add_argument("--capacity", type=_capacity, help="a semaphore's capacity, to list its slot files")
    path.add_argument("--json", action="store_true", help="print JSON")
    path.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="print only the lock file (capacity file, raw semaphore file), for flock(1): "
        'exec 9<"$(xlock path -q NAME)"; flock 9',
    )

    namespace = add(
        "namespace",
        "show the namespace this process would use, and whether it is accepted",
        "Show the namespace directory, why it was chosen (--namespace, XLOCK_NAMESPACE or the default), "
        "its identity, owner, mode, file mode and file system, and whether xlock accepts it.",
    )
    namespace.add_argument("--json", action="store_true", help="print JSON")

    remove = add(
        "remove",
        "remove the files of idle locks and semaphores",
        "Remove the lock file of NAME (or a semaphore's files), only if nobody holds it: the files are "
        "removed while holding them, so no waiter is ever split from its lock. Creates nothing. With "
        "--all-idle, every idle lock and semaphore; files that are held, that you may not remove or "
        "that are malformed are reported and left, and temporary files older than 60 s are removed.",
    )
    remove.add_argument("name", metavar="NAME", nargs="?")
    remove.add_argument(
        "--kind", choices=("lock", "semaphore", "posix_semaphore"), default="lock", help="default: lock"
    )
    remove.add_argument(
        "--capacity", type=_capacity, help="the semaphore's capacity (default: read from its capacity file)"
    )
    remove.add_argument(
        "--all-idle", action="store_true", help="remove every idle lock and semaphore of the namespace"
    )
    return parser


# --------------------------------------------------------------------------------------------------
# helpers


def _namespace_arg(args: argparse.Namespace) -> Optional[str]:
    value: Optional[str] = getattr(args, "namespace", None)
    return value


def _allow_fs(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "allow_unsupported_fs", False))


def _open_namespace(args: argparse.Namespace) -> xlock.Namespace:
    return xlock.Namespace(_namespace_arg(args), allow_unsupported_fs=_allow_fs(args))


def _say(message: str) -> None:
    print(f"xlock: {message}", file=sys.stderr, flush=True)


def _print_json(value: object) -> None:
    # exact JSON, with no terminal control character raw (json escapes C0; DEL, C1, bidi escaped here)
    print(escape_json_text(json.dumps(value, indent=2, ensure_ascii=False)))


def _show_name(name: str) -> str:
    """A name as one shell-safe-looking token: bare if plain, else JSON-quoted, controls escaped."""
    if name and all(c.isalnum() or c in "-_./:@+" for c in name) and name == _escape(name):
        return name
    return escape_json_text(json.dumps(name, ensure_ascii=False))


# --------------------------------------------------------------------------------------------------
# run


def _run_argv(args: argparse.Namespace) -> list[str]:
    """COMMAND as flock(1) reads it: `NAME COMMAND...`, `NAME -c STRING` or `-c STRING NAME`."""
    command: list[str] = list(args.cmd)
    if command and command[0] == "--":
        command = command[1:]
    string: Optional[str] = args.command_string
    if string is None and command and command[0] in ("-c", "--command"):
        if len(command) != 2:
            raise UsageError(f"{command[0]} requires exactly one command argument")
        string = command[1]
        command = []
    if string is not None:
        if command:
            raise UsageError("-c takes one STRING; give either -c STRING or COMMAND [ARGUMENT...]")
        return [os.environ.get("SHELL") or "/bin/sh", "-c", string]
    if not command:
        raise UsageError("run needs a COMMAND to run (see 'xlock run --help')")
    return command


def _looks_like_a_path(name: str) -> bool:
    return "/" in name or name.endswith(".lock")


def _warn_path_like(name: str, held: object) -> None:
    """One line for a NAME such as `/tmp/x/foo.lock`: xlock locks a file of its namespace, not that path."""
    where = getattr(held, "path", None) or f"a lock in {getattr(held, 'namespace', 'the namespace')}"
    _say(
        f"warning: {_escape(name)} is a lock name, not a path: this locks {_escape(str(where))}; to lock "
        f"that path itself use flock(1), e.g. flock {shlex.quote(name)} COMMAND (-q: no warning)"
    )


def _held_descriptor(held: object) -> Optional[int]:
    """The descriptor whose open file description holds the lock or permit, for COMMAND to inherit."""
    if isinstance(held, xlock.Lock):
        return held._file.fd if held.locked() else None
    if isinstance(held, xlock.Semaphore) and held.slot is not None:
        return held._slots[held.slot].fd
    return None  # a PostgreSQL lock lives in xlock's session


def cmd_run(args: argparse.Namespace) -> int:
    command = _run_argv(args)
    if args.no_fork and args.close:
        raise UsageError("the --no-fork and --close options are incompatible")
    shared = args.mode == "shared"
    if args.permits is not None and shared:
        raise UsageError("--shared applies to a lock, not to --permits (a semaphore's permits are exclusive)")
    held: xlock.Lock | xlock.Semaphore
    if args.permits is None:
        held = xlock.Lock(
            args.name, namespace=_namespace_arg(args), shared=shared, allow_unsupported_fs=_allow_fs(args)
        )
    else:
        held = xlock.Semaphore(
            args.name, args.permits, namespace=_namespace_arg(args), allow_unsupported_fs=_allow_fs(args)
        )
    inherited = False
    try:
        if args.no_fork and not isinstance(held, (xlock.Lock, xlock.Semaphore)):
            # A PostgreSQL lock lives in xlock's session, which ends at exec [XL-PG-5].
            raise UsageError(
                "--no-fork cannot keep a lock of a PostgreSQL namespace: its session would end "
                "at exec; leave out -F"
            )
        if _looks_like_a_path(args.name) and not args.quiet:
            _warn_path_like(args.name, held)
        started = time.monotonic()
        # The handlers stay until run_child blocks the signals, so no signal is lost in between.
        with exit_on_signals():
            try:
                # -n wins over -w, as in flock(1); -w 0 is one attempt, as -n
                got: object = (
                    held.acquire(blocking=False) if args.nonblock else held.acquire(timeout=args.wait)
                )
            except (xlock.WouldBlock, xlock.Timeout):  # a PostgreSQL lock raises
                got = False
            if got is False:
                if args.verbose:
                    why = "failed to get lock" if args.nonblock else "timeout while waiting to get lock"
                    _say(f"{why} {_escape(args.name)}")
                code: int = args.conflict_exit_code
                return code
            if args.verbose:
                took = time.monotonic() - started
                print(f"xlock: getting lock took {took:.6f} seconds", flush=True)
            env = None
            slot = getattr(held, "slot", None)  # a semaphore's, local or PostgreSQL
            if isinstance(slot, int) and not isinstance(slot, bool):
                env = {**os.environ, "XLOCK_SLOT": str(slot)}
            if args.verbose:
                print(f"xlock: executing {_escape(command[0])}", flush=True)
            fd = _held_descriptor(held)
            if args.no_fork:
                return exec_command(command, env, fd)  # returns only if the exec failed
            inherit = None if args.close else fd
            status = run_child(command, env, inherit, die_with_xlock=inherit is None)
            inherited = inherit is not None
            return status
    finally:
        if inherited and isinstance(held, xlock.Lock):
            held._close_for_inheritors()  # COMMAND's children may still hold it, as after flock(1)
        else:
            held.close()  # releases [XL-HOLD-10]; a slot file is only closed, never unlocked


# --------------------------------------------------------------------------------------------------
# status


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
    ns = _open_namespace(args)
    try:
        entries = _status.namespace_status(ns.fd, _status.read_proc_locks())
        entries = [
            e
            for e in entries
            if (args.all or e.state != "idle") and (args.name is None or e.file.name == args.name)
        ]
        if args.json:
            _print_json(
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
            print(f"{_show_name(e.file.name)}  ({kind}, {state}, owner {_escape(owner)})")
            for p in e.holders:
                print(f"  holder {_process_text(p)}")
                for note in _holder_notes(p):
                    print(f"         {note}")
            for p in e.waiters:
                print(f"  waiter {_process_text(p)}")
        return 0
    finally:
        ns.close()


# --------------------------------------------------------------------------------------------------
# path and namespace


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
    ns = _open_namespace(args)
    try:
        info = name_paths(ns, args.name, args.kind, args.capacity)
    finally:
        ns.close()
    if args.json:
        _print_json(info)
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
    explicit = _namespace_arg(args)
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
        ns = _open_namespace(args)
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
        _print_json(info)
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
    _say(f"error: {refusal}")
    return _code_for(refusal)


# --------------------------------------------------------------------------------------------------
# remove


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
            print(f"removed: temporary file {_show_name(file_name)}")
        except FileNotFoundError:
            continue
        except OSError as exc:
            print(f"left: temporary file {_show_name(file_name)}: {exc.strerror} ({owner_of(ns, file_name)})")
            left += 1
    return left


def _remove_all_idle(args: argparse.Namespace) -> int:
    """Remove every idle lock and counting semaphore; skip and report what is held, not ours to remove
    or malformed, and go on [XL-RM-8]."""
    ns = _open_namespace(args)
    try:
        files = sorted(os.listdir(ns.fd))
        for name, kind in _idle_targets(files):
            label = f"{kind} {_show_name(name)}"
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
    ns = _open_namespace(args)
    try:
        info = name_paths(ns, args.name, args.kind, None)
        try:
            removed = xlock.remove(args.name, namespace=ns, kind=args.kind, capacity=args.capacity)
        except xlock.WouldBlock as exc:
            _say(f"error: {exc}")
            return EX_CONFLICT
    finally:
        ns.close()
    what = info["path"] if info["path"] is not None else info["semaphore"]
    print(f"{'removed' if removed else 'nothing to remove'}: {what}")
    return 0


# --------------------------------------------------------------------------------------------------
# main


def _code_for(exc: BaseException) -> int:
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


COMMANDS = {
    "run": cmd_run,
    "status": cmd_status,
    "path": cmd_path,
    "namespace": cmd_namespace,
    "remove": cmd_remove,
}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the `xlock` console script; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        url = pg_namespace(_namespace_arg(args))
        if url is not None and args.command != "run":  # `run` takes the URI through xlock.Lock [XL-PG-1]
            from ._pg.cli import run_command

            return int(run_command(args, url) or 0)
        return COMMANDS[args.command](args)
    except Signalled as exc:
        return SIGNAL_BASE + exc.signum
    except KeyboardInterrupt:
        return SIGNAL_BASE + signal.SIGINT
    except BrokenPipeError:
        # The reader went away (`xlock status | head -1`): stop quietly, as a shell tool killed by
        # SIGPIPE would, and keep the interpreter from complaining when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return SIGNAL_BASE + signal.SIGPIPE
    except (UsageError, xlock.XLockError, OSError) as exc:
        _say(f"error: {exc}")
        return _code_for(exc)


if __name__ == "__main__":
    sys.exit(main())
