"""The conformance driver of the Python binding: `python -m xlock.driver`.

It speaks conformance/PROTOCOL.md on stdin/stdout: one JSON request per line in, one JSON reply per line
out, strictly in order. Diagnostics go to stderr only. No handler is installed for SIGTERM: the runner
kills drivers to test release on death.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import time
import traceback
from typing import Any, BinaryIO, Callable, Optional, Union

import xlock

from . import names
from ._bell import BELL_FILE
from ._pg import keys_of

PROTOCOL = 1
CAPABILITIES = [
    "lock",
    "shared",
    "timeout",
    "reentrant",
    "semaphore",
    "posix_semaphore",
    "map",
    "remove",
    "counter",
    "clock",
    "fork",
    "pg",
]
FORK_REPORT_S = 5.0
MAX_TIMEOUT_MS = 2**62 // 1_000_000  # beyond this a timeout means untimed [XL-WAIT-3]
KINDS = ("lock", "semaphore", "posix_semaphore")
SHARING = {"private": "private", "group-shared": "group", "world-shared": "world"}

Reply = dict[str, Any]
Request = dict[str, Any]
Held = Union["xlock.Lock", "xlock.Semaphore", "xlock.PosixSemaphore"]


class BadRequest(Exception):
    """The request is malformed: reply BAD_REQUEST and keep serving."""


class Failed(Exception):
    """A failure reply of a given kind, built by the driver itself."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class _Exit(Exception):
    """The `exit` op: reply, then leave the loop."""


def _arg(req: Request, key: str, kind: type, *, optional: bool = False) -> Any:
    """Request field `key` of type `kind` (bool is not an int); None if optional and absent or null."""
    value = req.get(key)
    if value is None:
        if optional:
            return None
        raise BadRequest(f"missing argument {key!r}")
    if isinstance(value, bool) != (kind is bool) or not isinstance(value, kind):
        raise BadRequest(f"argument {key!r} must be {kind.__name__}, not {type(value).__name__}")
    return value


def _flag(req: Request, key: str) -> bool:
    return bool(_arg(req, key, bool, optional=True))


def _name(req: Request) -> str:
    """`name`, or `name_hex` decoded so that ill-formed UTF-8 reaches the binding as lone surrogates,
    where validation reports INVALID_NAME [XL-NAME-3]. Both at once is a bad request."""
    if req.get("name_hex") is not None:
        if req.get("name") is not None:
            raise BadRequest("give either 'name' or 'name_hex', not both")
        text = _arg(req, "name_hex", str)
        if len(text) % 2 or any(c not in "0123456789abcdefABCDEF" for c in text):
            raise BadRequest(f"name_hex {text!r} is not an even number of hexadecimal digits")
        return bytes.fromhex(text).decode("utf-8", "surrogateescape")
    value: str = _arg(req, "name", str)
    return value


def _increment(path: str) -> int:
    """The shared counter: read (missing or empty is 0; decimal digits, optionally one trailing newline),
    add one, write back as decimal + newline; no locking of its own."""
    try:
        with open(path, "rb") as f:
            text = f.read()
    except FileNotFoundError:
        text = b""
    digits = text[:-1] if text.endswith(b"\n") else text
    if text and (not digits or not digits.isdigit()):
        raise BadRequest(f"counter file {path} holds {text[:40]!r}, not a decimal number")
    value = int(digits) + 1 if text else 1
    with open(path, "wb") as f:
        f.write(b"%d\n" % value)
    return value


class Session:
    """The driver's state: its open handles."""

    def __init__(self) -> None:
        self.handles: dict[str, tuple[str, Held]] = {}
        self.next_handle = 1
        self.ops: dict[str, Callable[[Request], Reply]] = {
            "hello": self.hello,
            "map": self.map,
            "open": self.open,
            "acquire": self.acquire,
            "try_acquire": self.try_acquire,
            "release": self.release,
            "locked": self.locked,
            "close": self.close,
            "remove": self.remove,
            "increment": self.increment,
            "cycle": self.cycle,
            "fork_check": self.fork_check,
            "exit": self.exit,
        }

    def handle(self, line: bytes) -> Reply:
        """Answer one request line; raises `_Exit` (with the reply as argument) for the `exit` op."""
        req_id: Optional[int] = None
        try:
            try:
                req = json.loads(line)
            except (ValueError, UnicodeDecodeError) as exc:
                raise BadRequest(f"not a JSON line: {exc}") from None
            if not isinstance(req, dict):
                raise BadRequest("a request must be a JSON object")
            raw_id = req.get("id")
            if isinstance(raw_id, int) and not isinstance(raw_id, bool):
                req_id = raw_id
            else:
                raise BadRequest(f"'id' must be an integer, not {raw_id!r}")
            op = req.get("op")
            if not isinstance(op, str) or op not in self.ops:
                raise BadRequest(f"unknown op {op!r}")
            result = self.ops[op](req)
            return {"id": req_id, "ok": True, **result}
        except _Exit:
            raise _Exit({"id": req_id, "ok": True}) from None
        except BadRequest as exc:
            return _failure(req_id, "BAD_REQUEST", str(exc))
        except (Failed, xlock.XLockError) as exc:
            return _failure(req_id, exc.kind, str(exc))
        except OSError as exc:
            return _failure(req_id, "OS_ERROR", str(exc))
        except KeyboardInterrupt:  # SIGINT during a wait: the binding left nothing held [XL-WAIT-9]
            return _failure(
                req_id, "INTERRUPTED", "interrupted by SIGINT (KeyboardInterrupt); nothing is held"
            )
        except Exception as exc:  # a driver bug: say so, keep serving
            traceback.print_exc(file=sys.stderr)
            return _failure(req_id, "BAD_REQUEST", f"python driver failed: {exc!r}")

    # ---------------------------------------------------------------------------------------------

    def hello(self, req: Request) -> Reply:
        protocol = req.get("protocol")
        if protocol != PROTOCOL or isinstance(protocol, bool):
            raise BadRequest(
                f"protocol {protocol!r} is not supported; this driver speaks protocol {PROTOCOL}"
            )
        return {
            "implementation": "python",
            "version": xlock.__version__,
            "spec": "xlock/1",
            "protocol": PROTOCOL,
            "pid": os.getpid(),
            "capabilities": CAPABILITIES,
        }

    def map(self, req: Request) -> Reply:
        name = _name(req)
        dev: int = _arg(req, "dev", int)
        ino: int = _arg(req, "ino", int)
        label: Optional[str] = _arg(req, "label", str, optional=True)
        reply: Reply = {} if label is None else {"pg_keys": keys_of(name, label)}  # [XL-PG-3]
        return {
            **reply,
            "lock_file": names.lock_file_name(name),
            "capacity_file": names.capacity_file_name(name),
            "slot_files": {str(i): names.slot_file_name(name, i) for i in (0, 999)},
            "semaphores": {"p": names.semaphore_name("p", dev, ino, name)},
            "bell_words": {k: names.bell_word(k, name) for k in "ls"},
        }

    def open(self, req: Request) -> Reply:
        kind: str = _arg(req, "kind", str)
        if kind not in KINDS:
            raise BadRequest(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        name = _name(req)
        namespace: Optional[str] = _arg(req, "namespace", str, optional=True)
        allow = _flag(req, "allow_unsupported_fs")
        shared, reentrant = _flag(req, "shared"), _flag(req, "reentrant")
        if kind != "lock" and (shared or reentrant):
            raise BadRequest("'shared' and 'reentrant' apply to kind lock only")
        obj: Held
        bell_word: Optional[int] = None
        semaphore: Optional[str] = None
        path: Optional[str]
        if kind == "lock":
            lock = xlock.Lock(
                name, namespace=namespace, shared=shared, reentrant=reentrant, allow_unsupported_fs=allow
            )
            obj, path, bell_word = lock, lock.path, lock.bell_word
        elif kind == "semaphore":
            capacity: int = _arg(req, "capacity", int)
            sem = xlock.Semaphore(name, capacity, namespace=namespace, allow_unsupported_fs=allow)
            obj, path, bell_word = sem, sem.path, sem.bell_word
        else:
            value = _arg(req, "value", int, optional=True)
            psem = xlock.PosixSemaphore(
                name, value=1 if value is None else value, namespace=namespace, allow_unsupported_fs=allow
            )
            obj, path, semaphore = psem, None, psem.semaphore_name
        handle = f"h{self.next_handle}"
        if hasattr(obj, "label"):  # a PostgreSQL namespace: a key instead of files [XL-PG-12]
            self.next_handle += 1
            self.handles[handle] = (kind, obj)
            return _pg_opened(handle, obj)
        dev, ino = obj.namespace_identity
        self.next_handle += 1
        self.handles[handle] = (kind, obj)
        return {
            "handle": handle,
            "namespace": obj.namespace,
            "dev": dev,
            "ino": ino,
            "path": path,
            "semaphore": semaphore,
            "bell": None if bell_word is None else _join(obj.namespace, BELL_FILE),
            "bell_word": bell_word,
            "sharing": SHARING[obj.sharing],
        }

    def _get(self, req: Request) -> tuple[str, Held]:
        handle: str = _arg(req, "handle", str)
        try:
            return self.handles[handle]
        except KeyError:
            raise BadRequest(f"unknown handle {handle!r}") from None

    @staticmethod
    def _acquired(kind: str, obj: Held, got: object) -> Reply:
        """The reply to a successful acquire; ``acquire`` returned ``got`` (False: not acquired)."""
        if got is False:  # the threading protocol: False for a failed try or timed acquire
            raise Failed("TIMEOUT", f"{_what(obj)} was not acquired before the deadline")
        reply: Reply = {}
        if kind == "semaphore":  # local or PostgreSQL: the permit acquired last
            reply["slot"] = obj.slot  # type: ignore[union-attr]
        elif kind == "posix_semaphore":
            reply["slot"] = None
        reply["mono_ns"] = time.monotonic_ns()
        return reply

    @staticmethod
    def _timeout(req: Request) -> Optional[float]:
        ms: Optional[int] = _arg(req, "timeout_ms", int, optional=True)
        if ms is None or ms < 0 or ms >= MAX_TIMEOUT_MS:
            return None  # negative or beyond any deadline: untimed [XL-WAIT-3]
        return ms / 1000

    def acquire(self, req: Request) -> Reply:
        kind, obj = self._get(req)
        timeout = self._timeout(req)
        got = obj.acquire(timeout=timeout)
        return self._acquired(kind, obj, got)

    def try_acquire(self, req: Request) -> Reply:
        kind, obj = self._get(req)
        got = obj.acquire(blocking=False)
        if got is False:
            raise Failed("WOULD_BLOCK", f"{_what(obj)} is held elsewhere")
        return self._acquired(kind, obj, got)

    def release(self, req: Request) -> Reply:
        _, obj = self._get(req)
        mono_ns = time.monotonic_ns()
        obj.release()
        return {"mono_ns": mono_ns}

    def locked(self, req: Request) -> Reply:
        _, obj = self._get(req)
        if _flag(req, "verify") and hasattr(obj, "label"):  # asks the server; LOST if lost [XL-PG-10]
            return {"locked": bool(obj.locked(verify=True))}  # type: ignore[call-arg]
        return {"locked": bool(obj.locked())}

    def close(self, req: Request) -> Reply:
        handle: str = _arg(req, "handle", str)
        _, obj = self._get(req)
        obj.close()
        del self.handles[handle]
        return {}

    def remove(self, req: Request) -> Reply:
        kind: str = _arg(req, "kind", str)
        if kind not in KINDS:
            raise BadRequest(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
        name = _name(req)
        namespace: Optional[str] = _arg(req, "namespace", str, optional=True)
        capacity: Optional[int] = _arg(
            req, "capacity", int, optional=True
        )  # the capacity file decides [XL-RM-3]
        removed = xlock.remove(name, namespace=namespace, kind=kind, capacity=capacity)
        return {"removed": bool(removed)}

    def increment(self, req: Request) -> Reply:
        return {"value": _increment(_arg(req, "path", str))}

    def cycle(self, req: Request) -> Reply:
        _, obj = self._get(req)
        count: int = _arg(req, "count", int)
        path: str = _arg(req, "path", str)
        timeout = self._timeout(req)
        done = 0
        try:
            for done in range(count):  # noqa: B007 - `done` is reported on failure
                if obj.acquire(timeout=timeout) is False:
                    raise xlock.Timeout(f"{_what(obj)} not acquired within {timeout} s")
                try:
                    _increment(path)
                finally:
                    obj.release()
        except xlock.XLockError as exc:
            raise Failed(exc.kind, f"{exc} (done: {done})") from None
        except OSError as exc:
            raise Failed("OS_ERROR", f"{exc} (done: {done})") from None
        return {"count": count}

    def fork_check(self, req: Request) -> Reply:
        """fork(2) and report what the child sees of the held object [XL-HOLD-7, XL-HOLD-8]."""
        _, obj = self._get(req)
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            _fork_child(obj, wfd)  # never returns
        os.close(wfd)
        try:
            line = _read_line(rfd, FORK_REPORT_S)
            try:
                report: Reply = json.loads(line)
            except ValueError:
                raise Failed("OS_ERROR", f"the forked child {pid} reported {line[:200]!r}") from None
        except Failed:
            os.kill(pid, signal.SIGKILL)  # a failed child is not left behind
            os.waitpid(pid, 0)
            raise
        finally:
            os.close(rfd)
        return {"child_pid": pid, **report}

    def exit(self, req: Request) -> Reply:
        raise _Exit


def _what(obj: Held) -> str:
    """The object as error messages name it: its name and its file (or semaphore, or namespace)."""
    where = getattr(obj, "path", None) or getattr(obj, "semaphore_name", None) or obj.namespace
    return f"{obj.name!r} ({where})"


def _fork_child(obj: Held, wfd: int) -> None:
    """In the forked child: leave the protocol streams alone, release, ask locked, try to acquire, report
    one JSON line on the pipe, then linger until killed (the runner checks the parent's lock dies with it)."""
    try:
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        report: Reply = {}
        try:
            obj.release()
            report["release"] = "ok"
        except xlock.XLockError as exc:
            report["release"] = exc.kind
        report["locked"] = bool(obj.locked())
        try:
            report["try_acquire"] = "WOULD_BLOCK" if obj.acquire(blocking=False) is False else "ok"
        except xlock.XLockError as exc:
            report["try_acquire"] = exc.kind
        os.write(wfd, json.dumps(report).encode("ascii") + b"\n")
    except BaseException as exc:  # say what went wrong, then linger all the same
        os.write(wfd, f"python driver child failed: {exc!r}\n".encode())
    finally:
        while True:
            signal.pause()


def _read_line(fd: int, timeout: float) -> str:
    """One line from the pipe `fd` within `timeout` s."""
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise Failed("OS_ERROR", f"the forked child did not report within {timeout} s")
        chunk = os.read(fd, 4096)
        if not chunk:
            raise Failed("OS_ERROR", f"the forked child closed its pipe after {data!r}")
        data += chunk
    return data.decode("utf-8", "replace")


def _pg_opened(handle: str, obj: Any) -> Reply:
    """The `open` reply for a PostgreSQL namespace: the URI without password, label, key, identity."""
    system_identifier, database = obj.namespace_identity
    return {
        "handle": handle,
        "namespace": obj.namespace,
        "label": obj.label,
        "key": obj.key,
        "system_identifier": str(system_identifier),
        "database": database,
        "backend_pid": obj.backend_pid,
        "path": None,
        "semaphore": None,
        "bell": None,
        "bell_word": None,
        "sharing": "database",
    }


def _join(namespace: str, file_name: str) -> str:
    return ("" if namespace == "/" else namespace) + "/" + file_name


def _failure(req_id: Optional[int], kind: str, message: str) -> Reply:
    return {"id": req_id, "ok": False, "error": kind, "message": message}


def _send(out: BinaryIO, reply: Reply) -> None:
    out.write(json.dumps(reply).encode("ascii") + b"\n")
    out.flush()


def serve(inp: BinaryIO, out: BinaryIO) -> int:
    """Serve requests from `inp` until EOF or `exit`; returns the exit status (0)."""
    session = Session()
    while True:
        line = inp.readline()  # not iteration: that reads ahead and would stall the runner
        if not line:
            return 0
        if not line.strip():
            continue
        try:
            reply = session.handle(line)
        except _Exit as done:
            _send(out, done.args[0])
            return 0
        _send(out, reply)


def main() -> int:
    # SIGINT interrupts a wait even if the runner was started with SIGINT ignored [XL-WAIT-9].
    signal.signal(signal.SIGINT, signal.default_int_handler)
    return serve(sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    # os._exit: leave at once, without waiting for anything (held locks go with the process).
    sys.stdout.flush()
    os._exit(main())
