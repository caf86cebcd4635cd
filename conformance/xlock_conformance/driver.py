"""One driver process: start it, shake hands, send requests, wait for replies with deadlines.

Every wait has a deadline and a message that says what happened: no reply (blocked or hung), the driver
died (exit status or signal, stderr tail), or it printed something that is not a protocol reply. Nothing
here sleeps to synchronise: "it is blocked" means a deadline passed with no reply.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

PROTOCOL = 1
SPEC = "xlock/1"
TRACE_LINES = 30
STDERR_LINES = 30
START_TIMEOUT = 15.0  # interpreters with cold caches on a loaded 2-core machine
REPLY_TIMEOUT = 5.0
# `--slow N` multiplies every reply deadline (a driver under valgrind); never the latency bounds.
SLOW = {"factor": 1.0}
HANG_HINT = (
    "a driver answers every request with one line on stdout and flushes it (PROTOCOL.md); "
    "its stderr tail and the trace below show where it stopped"
)


class DriverError(AssertionError):
    """The driver broke the protocol: no reply in time, death, junk output, a wrong handshake."""


@dataclass
class DriverSpec:
    """How to start one binding's driver. `unavailable` holds the reason when it cannot run here."""

    name: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Optional[str] = None
    unavailable: Optional[str] = None
    # The command that runs this driver as another user (uid -> argv), when plain `setpriv` cannot (an
    # interpreter out of that user's reach); None: `setpriv --reuid=UID ... argv`.
    as_user: Optional[Callable[[int], list[str]]] = None
    # Set when the driver once failed to answer hello in time: later cases fail at once instead of
    # waiting START_TIMEOUT each.
    hung_at_start: Optional[str] = None


@dataclass
class Reply:
    """A parsed reply; `ok` False means an error reply with `error` and `message`."""

    data: dict[str, Any]
    op: str

    @property
    def ok(self) -> bool:
        return self.data.get("ok") is True

    @property
    def error(self) -> Optional[str]:
        return None if self.ok else self.data.get("error")

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.data.get(key, default)


_EOF = object()


class Driver:
    """A running driver. `label` distinguishes several instances of one binding in a case (e.g. `py#2`)."""

    def __init__(
        self, spec: DriverSpec, label: str, env: Optional[dict[str, str]] = None, umask: Optional[int] = None
    ) -> None:
        if spec.hung_at_start:
            raise DriverError(f"driver '{label}' is not started again: {spec.hung_at_start}")
        self.spec = spec
        self.name = spec.name
        self.label = label
        self.trace: collections.deque[str] = collections.deque(maxlen=TRACE_LINES)
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self.capabilities: set[str] = set()
        self.semaphores: set[str] = set()
        self.names: set[str] = set()  # names sent in open/remove requests, for the case's clean-up
        self.pid: Optional[int] = None
        self.hello: dict[str, Any] = {}
        self._lines: queue.Queue[Any] = queue.Queue()
        self._stash: dict[Any, dict[str, Any]] = {}
        self._pending: dict[int, str] = {}
        self._next_id = 0
        self._t0 = time.monotonic()
        self._dead = False
        # The runner's own XLOCK_* settings never leak into a case: each case sets what it tests.
        full_env = {k: v for k, v in os.environ.items() if not k.startswith("XLOCK_")}
        full_env.update(spec.env)
        if env is not None:
            for key, value in env.items():
                if value is None:
                    full_env.pop(key, None)
                else:
                    full_env[key] = value
        kwargs: dict[str, Any] = {}
        if umask is not None:
            kwargs["umask"] = umask
        try:
            self.proc = subprocess.Popen(
                spec.argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                cwd=spec.cwd,
                env=full_env,
                start_new_session=True,
                **kwargs,
            )
        except OSError as exc:
            raise DriverError(
                f"driver '{label}' could not be started ({' '.join(spec.argv)}): {exc}"
            ) from exc
        self._readers = [
            threading.Thread(target=self._read_stdout, daemon=True),
            threading.Thread(target=self._read_stderr, daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    # -- threads -------------------------------------------------------------------------------------
    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            self._lines.put(raw)
        self._lines.put(_EOF)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for raw in self.proc.stderr:
            self.stderr_tail.append(raw.decode("utf-8", "replace").rstrip("\n"))

    # -- protocol ------------------------------------------------------------------------------------
    def _stamp(self) -> str:
        return f"{time.monotonic() - self._t0:8.3f}"

    def handshake(self, timeout: float = START_TIMEOUT) -> None:
        rid = self.send("hello", protocol=PROTOCOL)
        try:
            reply = self.wait(rid, timeout)
        except DriverError as exc:
            if self.proc.poll() is None:
                self.spec.hung_at_start = f"in an earlier case, {exc}"
            raise
        if not reply.ok:
            raise DriverError(f"driver '{self.label}' refused the handshake: {reply.data}")
        problems = []
        if reply.get("protocol") != PROTOCOL:
            problems.append(f"protocol {reply.get('protocol')!r} (want {PROTOCOL})")
        if reply.get("spec") != SPEC:
            problems.append(f"spec {reply.get('spec')!r} (want {SPEC!r})")
        if not isinstance(reply.get("pid"), int) or isinstance(reply.get("pid"), bool):
            problems.append(f"pid {reply.get('pid')!r} (want an integer)")
        caps = reply.get("capabilities")
        if not isinstance(caps, list) or not all(isinstance(c, str) for c in caps):
            problems.append(f"capabilities {caps!r} (want a list of strings)")
        if problems:
            raise DriverError(f"driver '{self.label}' answered hello with " + "; ".join(problems))
        self.hello = reply.data
        self.pid = reply["pid"]
        self.capabilities = set(caps)

    def send(self, op: str, /, **args: Any) -> int:
        """Write one request; returns its id. The reply is collected with `wait`."""
        rid = self._next_id
        self._next_id += 1
        msg = {"id": rid, "op": op, **args}
        if op in ("open", "remove") and isinstance(args.get("name"), str):
            self.names.add(args["name"])
        self.send_raw(json.dumps(msg, ensure_ascii=False))
        self._pending[rid] = op
        return rid

    def send_raw(self, line: str) -> None:
        self.trace.append(f"{self._stamp()} > {line}")
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line.encode("utf-8") + b"\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise DriverError(
                f"driver '{self.label}' cannot be written to ({exc}): {self._death_note(1.0)}"
            ) from exc

    def _take(self, timeout: float) -> Optional[dict[str, Any]]:
        """Next reply line within `timeout` s, None if none came; raises on death or junk."""
        if self._dead:
            raise DriverError(f"driver '{self.label}' is gone: {self._death_note(2.0)}")
        try:
            raw = self._lines.get(timeout=max(timeout, 0))
        except queue.Empty:
            return None
        if raw is _EOF:
            self._dead = True
            raise DriverError(f"driver '{self.label}' closed its stdout: {self._death_note(2.0)}")
        text = raw.decode("utf-8", "replace").rstrip("\n")
        self.trace.append(f"{self._stamp()} < {text}")
        try:
            data = json.loads(text)
        except ValueError:
            raise DriverError(
                f"driver '{self.label}' printed a line that is not JSON on stdout: {text[:200]!r} "
                "(stdout is for replies only; diagnostics go to stderr)"
            ) from None
        if not isinstance(data, dict) or "id" not in data or not isinstance(data.get("ok"), bool):
            raise DriverError(
                f"driver '{self.label}' printed a line that is not a protocol reply "
                f'(needs "id" and boolean "ok"): {text[:200]!r}'
            )
        if not data["ok"] and not isinstance(data.get("error"), str):
            raise DriverError(
                f"driver '{self.label}' sent a failure without an \"error\" kind: {text[:200]!r}"
            )
        return data

    def wait(self, rid: int, timeout: float = REPLY_TIMEOUT) -> Reply:
        """The reply to request `rid`, or DriverError when `timeout` s pass without it."""
        op = self._pending.get(rid, "?")
        timeout *= SLOW["factor"]
        deadline = time.monotonic() + timeout
        while rid not in self._stash:
            data = self._take(deadline - time.monotonic())
            if data is None:
                raise DriverError(
                    f"driver '{self.label}' did not reply to {op} (id {rid}) within {timeout:.1f} s: "
                    f"it is blocked or hung{self._alive_note()} — {HANG_HINT}"
                )
            self._stash[data["id"]] = data
        self._pending.pop(rid, None)
        data = self._stash.pop(rid)
        sem = data.get("semaphore")
        if isinstance(sem, str) and sem.startswith("/xl1"):
            self.semaphores.add(sem)  # the case removes the raw semaphores its drivers made
        return Reply(data, op)

    def next_reply(self, what: str, timeout: float = REPLY_TIMEOUT) -> dict[str, Any]:
        """The next reply line whatever its id (for requests whose id the driver cannot read)."""
        timeout *= SLOW["factor"]
        data = self._take(timeout)
        if data is None:
            raise DriverError(
                f"driver '{self.label}' did not reply to {what} within {timeout:.1f} s: "
                f"it is blocked or hung{self._alive_note()} — {HANG_HINT}"
            )
        return data

    def poll(self, rid: int, timeout: float) -> Optional[Reply]:
        """The reply to `rid` if it arrives within `timeout` s, else None (the request stays pending)."""
        deadline = time.monotonic() + timeout
        while rid not in self._stash:
            left = deadline - time.monotonic()
            data = self._take(max(left, 0))  # at least one look, even with timeout 0
            if data is not None:
                self._stash[data["id"]] = data
            elif left <= 0:
                return None
        return self.wait(rid, 0)

    def no_reply_within(self, rid: int, seconds: float, why: str) -> None:
        """Assert that request `rid` is still unanswered after `seconds` (a deadline, not a sleep)."""
        deadline = time.monotonic() + seconds
        while rid not in self._stash:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            data = self._take(left)
            if data is not None:
                self._stash[data["id"]] = data
        data = self._stash[rid]
        raise AssertionError(
            f"driver '{self.label}' answered {self._pending.get(rid, '?')} (id {rid}) "
            f"within {seconds * 1000:.0f} ms, but {why}: {json.dumps(data)}"
        )

    def request(self, op: str, /, timeout: float = REPLY_TIMEOUT, **args: Any) -> Reply:
        return self.wait(self.send(op, **args), timeout)

    def call(self, op: str, /, timeout: float = REPLY_TIMEOUT, **args: Any) -> Reply:
        """A request that must succeed."""
        reply = self.request(op, timeout=timeout, **args)
        if not reply.ok:
            raise AssertionError(
                f"driver '{self.label}': {op} {_brief(args)} failed with "
                f"{reply.error}: {reply.get('message')}"
            )
        return reply

    def fails(
        self, expect: str, op: str, /, timeout: float = REPLY_TIMEOUT, why: str = "", **args: Any
    ) -> Reply:
        """A request that must fail with error `expect`; `why` says what makes that the right answer."""
        reply = self.request(op, timeout=timeout, **args)
        because = f" because {why}" if why else ""
        if reply.ok:
            raise AssertionError(
                f"driver '{self.label}': {op} {_brief(args)} succeeded "
                f"({json.dumps(reply.data)}), expected {expect}{because}"
            )
        if reply.error != expect:
            raise AssertionError(
                f"driver '{self.label}': {op} {_brief(args)} failed with {reply.error} "
                f"({reply.get('message')}), expected {expect}{because}"
            )
        return reply

    # -- life and death ------------------------------------------------------------------------------
    def kill(self) -> None:
        """SIGKILL the holder process (the hello pid) and the driver's process group, then reap."""
        if self.pid and self.pid != self.proc.pid:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        for reader in self._readers:  # they end at EOF, which the kill brings
            reader.join(timeout=1.0)
        streams = [self.proc.stdin]
        if not any(r.is_alive() for r in self._readers):  # never close a pipe under a reading thread
            streams += [self.proc.stdout, self.proc.stderr]
        for stream in streams:
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass
        self._dead = True

    def _alive_note(self) -> str:
        code = self.proc.poll()
        return "" if code is None else f"; and it has exited: {self._describe_exit(code)}"

    def _death_note(self, grace: float) -> str:
        try:
            code = self.proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            return "it is still running"
        return self._describe_exit(code)

    def _describe_exit(self, code: int) -> str:
        if code < 0:
            try:
                what = f"killed by signal {signal.Signals(-code).name}"
            except ValueError:
                what = f"killed by signal {-code}"
        else:
            what = f"exit status {code}"
        tail = "\n    ".join(list(self.stderr_tail)[-10:]) or "(empty)"
        return f"{what}; stderr tail:\n    {tail}"

    def report(self) -> str:
        """The trace a person reads when a case fails."""
        head = f"--- driver {self.label} ({' '.join(self.spec.argv)}), pid {self.pid}"
        code = self.proc.poll()
        if code is not None:
            head += f", exited: {'signal ' + str(-code) if code < 0 else 'status ' + str(code)}"
        lines = [head, "  last requests (>) and replies (<), seconds since start:"]
        lines += [f"    {t}" for t in self.trace] or ["    (none)"]
        lines.append("  stderr tail:")
        lines += [f"    {t}" for t in self.stderr_tail] or ["    (empty)"]
        return "\n".join(lines)


def _brief(args: dict[str, Any]) -> str:
    text = json.dumps(args, ensure_ascii=False)
    return text if len(text) < 160 else text[:157] + "..."
