"""A throwaway PostgreSQL server for tests: `initdb` into a temporary directory, never a system service.

The server listens on a unix socket in that directory and on a free 127.0.0.1 port, with `fsync=off`,
and is stopped with `-m immediate` at the end. `initdb` refuses to run as root, so as root every server
command runs as the `postgres` user (or XLOCK_TEST_PG_USER) through `runuser`. Binaries are found in
XLOCK_TEST_PG_BINDIR, `pg_config --bindir`, or /usr/lib/postgresql/*/bin. Administrative SQL goes
through the server's own `psql`, so this module needs nothing beyond the standard library.

Used by the conformance cases (`cases/test_pg*.py`), the Python binding's tests and `bench/pg.py`.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any, Optional
from urllib.parse import quote

__all__ = ["PASSWORD", "PASSWORD_ROLE", "PgBouncer", "PgServer", "PgUnavailable", "find_bindir"]

SUPERUSER = "xlock"
DATABASE = "xlock"
PASSWORD_ROLE = "xlock_pw"
# A password that cannot appear in any output by chance; the cases grep every reply and stderr for it.
PASSWORD = "s3cr3t-Xl0ck-9f2b7c"
START_TIMEOUT = 60


class PgUnavailable(RuntimeError):
    """No PostgreSQL server binaries here (run ./bootstrap), or the server would not start."""


def find_bindir() -> str:
    """The directory holding initdb, pg_ctl, postgres and psql."""
    candidates = []
    env = os.environ.get("XLOCK_TEST_PG_BINDIR")
    if env:
        candidates.append(env)
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            candidates.append(out.stdout.strip())
        except (OSError, subprocess.SubprocessError):
            pass
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    for bindir in candidates:
        if all(
            os.access(os.path.join(bindir, exe), os.X_OK) for exe in ("initdb", "pg_ctl", "postgres", "psql")
        ):
            return bindir
    raise PgUnavailable(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres, psql) not found in XLOCK_TEST_PG_BINDIR, "
        "`pg_config --bindir` or /usr/lib/postgresql/*/bin: run ./bootstrap (it installs Debian's postgresql)"
    )


def _version_key(path: str) -> int:
    try:
        return int(Path(path).parent.name)
    except ValueError:
        return 0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _as_user() -> Optional[pwd.struct_passwd]:
    """The unprivileged user that runs the server programs when we are root (initdb refuses root)."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get("XLOCK_TEST_PG_USER", "postgres")
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise PgUnavailable(
            f"running as root, and there is no user {name!r} to run the server as (set XLOCK_TEST_PG_USER)"
        ) from None


class PgServer:
    """One throwaway cluster. `start()` it, use `url()`/`sql()`, `stop()` it (also at interpreter exit)."""

    def __init__(self, bindir: Optional[str] = None) -> None:
        self.bindir = bindir or find_bindir()
        self.user = _as_user()
        self.dir = Path(tempfile.mkdtemp(prefix="xlock-pg-"))
        os.chmod(self.dir, 0o755)
        if self.user is not None:
            os.chown(self.dir, self.user.pw_uid, self.user.pw_gid)
        self.data = self.dir / "data"
        self.port = 0
        self.running = False
        self.children: list[PgServer] = []

    def drop_privileges(self) -> dict[str, Any]:
        """subprocess arguments that run a program as the server's user (nothing when not root)."""
        if self.user is None:
            return {}
        return {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}

    def _bin(self, exe: str) -> str:
        return os.path.join(self.bindir, exe)

    def _run(self, argv: list[str], timeout: float = START_TIMEOUT, check: bool = True) -> str:
        env = {**os.environ, "LC_ALL": "C", "PGTZ": "UTC"}
        for key in ("PGHOST", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE"):
            env.pop(key, None)
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=str(self.dir),
            env=env,
            **self.drop_privileges(),
        )
        if check and proc.returncode != 0:
            raise PgUnavailable(
                f"{' '.join(argv[:2])} failed (status {proc.returncode}): "
                f"{(proc.stderr or proc.stdout).strip()[-800:]}"
            )
        out: str = proc.stdout
        return out

    # -- life -----------------------------------------------------------------------------------------

    def init(self) -> None:
        self._run(
            [
                self._bin("initdb"),
                "-D",
                str(self.data),
                "-A",
                "trust",
                "-U",
                SUPERUSER,
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        hba = (
            f"local all {PASSWORD_ROLE} scram-sha-256\n"
            f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
            "local replication all trust\nhost replication all 127.0.0.1/32 trust\n"
        )
        self._write(self.data / "pg_hba.conf", hba)

    def _write(self, path: Path, text: str) -> None:
        path.write_text(text)
        if self.user is not None:
            os.chown(path, self.user.pw_uid, self.user.pw_gid)

    def start(self, port: Optional[int] = None) -> PgServer:
        if not self.data.exists():
            self.init()
        self.port = port or self.port or free_port()
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.dir} "
            "-c fsync=off -c full_page_writes=off -c synchronous_commit=off -c max_connections=200 "
            "-c shared_buffers=16MB -c max_wal_senders=4 -c wal_level=replica"
        )
        self._pg_ctl("-o", options, "start")
        if not self.running:
            atexit.register(self.stop)
        self.running = True
        return self

    def _connection(self) -> list[str]:
        """The client options of pg_basebackup and psql that reach this server as its superuser."""
        return ["-h", str(self.dir), "-p", str(self.port), "-U", SUPERUSER]

    def _pg_ctl(self, *args: str) -> None:
        """pg_ctl on this data directory, logging to server.log and waiting up to START_TIMEOUT."""
        log = str(self.dir / "server.log")
        self._run(
            [self._bin("pg_ctl"), "-D", str(self.data), "-l", log, "-w", "-t", str(START_TIMEOUT), *args]
        )

    def setup_roles(self) -> None:
        """The test database, and a role with a password (for XL-PG-14)."""
        self.sql(f"CREATE DATABASE {DATABASE}", db="postgres")
        self.sql(f"CREATE ROLE {PASSWORD_ROLE} LOGIN PASSWORD '{PASSWORD}'")

    def restart(self) -> None:
        """`pg_ctl restart -m immediate`: every session ends, every advisory lock is gone."""
        self._pg_ctl("-m", "immediate", "restart")

    def stop(self) -> None:
        for child in self.children:
            child.stop()
        if self.running:
            self._run([self._bin("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"], check=False)
            self.running = False
        shutil.rmtree(self.dir, ignore_errors=True)

    def standby(self) -> PgServer:
        """A hot standby of this server made with pg_basebackup, started on its own port."""
        other = PgServer(self.bindir)
        self.children.append(other)
        self._run(
            [
                self._bin("pg_basebackup"),
                "-D",
                str(other.data),
                *self._connection(),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "--no-sync",
            ]
        )
        other.start()
        return other

    # -- use ------------------------------------------------------------------------------------------

    def url(
        self,
        *,
        tcp: bool = False,
        user: str = SUPERUSER,
        password: Optional[str] = None,
        db: str = DATABASE,
        **params: str,
    ) -> str:
        auth = quote(user, safe="") + (":" + quote(password, safe="") if password is not None else "")
        query = dict(params)
        if tcp:
            where = f"127.0.0.1:{self.port}"
        else:
            where = ""
            query = {"host": str(self.dir), "port": str(self.port), **query}
        text = f"postgresql://{auth}@{where}/{db}"
        if query:
            text += "?" + "&".join(f"{k}={quote(str(v), safe='/')}" for k, v in query.items())
        return text

    def sql(self, statement: str, db: str = DATABASE, timeout: float = 30) -> list[list[str]]:
        """Run one statement as the superuser; rows as lists of text fields."""
        out = self._run(
            [
                self._bin("psql"),
                "-X",
                "-q",
                "-At",
                "-F",
                "\t",
                "-v",
                "ON_ERROR_STOP=1",
                *self._connection(),
                "-d",
                db,
                "-c",
                statement,
            ],
            timeout=timeout,
        )
        return [line.split("\t") for line in out.splitlines() if line]

    def advisory_locks(self, key: int) -> list[dict[str, str]]:
        """The pg_locks rows of an int8 advisory key [XL-PG-12], with the client's application_name."""
        unsigned = key & 0xFFFFFFFFFFFFFFFF
        rows = self.sql(
            "SELECT l.pid, l.mode, l.granted, coalesce(a.application_name, '') FROM pg_locks l "
            "LEFT JOIN pg_stat_activity a USING (pid) WHERE l.locktype = 'advisory' AND l.objsubid = 1 "
            f"AND l.classid = {unsigned >> 32} AND l.objid = {unsigned & 0xFFFFFFFF} ORDER BY l.pid"
        )
        return [{"pid": r[0], "mode": r[1], "granted": r[2], "application_name": r[3]} for r in rows]

    def backends_of(self, client_pid: int) -> list[int]:
        """Backend pids of the xlock sessions opened by client process `client_pid` [XL-PG-6]."""
        rows = self.sql(
            "SELECT pid FROM pg_stat_activity WHERE application_name LIKE "
            f"'xlock/1 % pid={int(client_pid)} %' ORDER BY pid"
        )
        return [int(r[0]) for r in rows]

    def locks_of(self, backend_pids: list[int]) -> list[list[str]]:
        """Every advisory pg_locks row (granted or waiting) of these backends."""
        if not backend_pids:
            return []
        pids = ",".join(str(int(p)) for p in backend_pids)
        return self.sql(
            "SELECT pid, classid, objid, mode, granted FROM pg_locks WHERE locktype = 'advisory' "
            f"AND pid IN ({pids})"
        )

    def terminate(self, backend_pid: int) -> None:
        self.sql(f"SELECT pg_terminate_backend({int(backend_pid)}, 5000)")

    def wait_gone(self, backend_pid: int, timeout: float = 5.0) -> None:
        """Until the backend has left pg_stat_activity (a terminated session is gone for good)."""
        deadline = time.monotonic() + timeout
        while self.sql(f"SELECT 1 FROM pg_stat_activity WHERE pid = {int(backend_pid)}"):
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"backend {backend_pid} still there {timeout} s after pg_terminate_backend"
                )
            time.sleep(0.01)


class PgBouncer:
    """PgBouncer in transaction pooling mode with one server connection, in front of `server`."""

    def __init__(self, server: PgServer) -> None:
        exe = shutil.which("pgbouncer") or (
            "/usr/sbin/pgbouncer" if os.access("/usr/sbin/pgbouncer", os.X_OK) else None
        )
        if exe is None:
            raise PgUnavailable(
                "pgbouncer is not installed: run ./bootstrap (it installs Debian's pgbouncer)"
            )
        self.server = server
        self.port = free_port()
        d = server.dir
        server._write(d / "userlist.txt", f'"{SUPERUSER}" ""\n')
        server._write(
            d / "pgbouncer.ini",
            (
                "[databases]\n"
                f"* = host={d} port={server.port}\n"
                "[pgbouncer]\n"
                f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
                f"auth_type = trust\nauth_file = {d}/userlist.txt\n"
                "pool_mode = transaction\ndefault_pool_size = 1\nmax_client_conn = 50\n"
                f"logfile = {d}/pgbouncer.log\n"
                "ignore_startup_parameters = extra_float_digits,options\n"
            ),
        )
        self.proc = subprocess.Popen(
            [exe, str(d / "pgbouncer.ini")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
            **server.drop_privileges(),
        )
        atexit.register(self.stop)
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    err = self.proc.stderr.read().decode(errors="replace") if self.proc.stderr else ""
                    self.stop()
                    raise PgUnavailable(f"pgbouncer did not start: {err.strip()[-400:]}") from None
                time.sleep(0.02)

    def url(self, **params: str) -> str:
        query = "&".join(f"{k}={quote(v, safe='/')}" for k, v in params.items())
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}" + ("?" + query if query else "")

    def stop(self) -> None:
        if self.proc.returncode is None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
