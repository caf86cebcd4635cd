"""The xlock command on a PostgreSQL namespace: run, status, path, namespace, remove [XL-PG-12, XL-PG-14]."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from xlock._pg.keys import key

pytest_plugins = ("pg_server",)  # the `pg` fixture
pytest.importorskip("psycopg", reason="install the extra: pip install './python[postgresql]'")


def xlock_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k != "XLOCK_NAMESPACE"}
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "xlock", *args], capture_output=True, text=True, env=full, timeout=60
    )


def test_run_status_path_namespace_remove(pg: Any, pg_password: str) -> None:
    url = pg.url(tcp=True, user="xlock_pw", password=pg_password, xlock_namespace="cli")
    env = {"XLOCK_NAMESPACE": url}
    # `run` holds the lock while the command runs; the command itself asks `status`.
    inner = f"{sys.executable} -m xlock status --json job"
    out = xlock_cli("run", "job", "--", "sh", "-c", inner, env=env)
    assert out.returncode == 0, out.stderr
    status = json.loads(out.stdout)
    assert status["namespace"]["label"] == "cli" and status["namespace"]["database"] == "xlock"
    (entry,) = status["locks"]
    (holder,) = entry["holders"]
    assert entry["kind"] == "lock" and holder["mode"] == "exclusive" and holder["client_pid"] is not None
    assert holder["client"].startswith("127.0.0.1:")
    # -n on a held lock: exit 1; -w: TIMEOUT, exit 1.
    nested = f"{sys.executable} -m xlock run -n job true; echo $?"
    out = xlock_cli("run", "job", "--", "sh", "-c", nested, env=env)
    assert out.stdout.strip().endswith("1"), out
    path = xlock_cli("path", "--json", "job", env=env)
    assert json.loads(path.stdout)["key"] == key("l", "cli", "job")
    ns = xlock_cli("namespace", "--json", env=env)
    info = json.loads(ns.stdout)
    assert ns.returncode == 0 and info["accepted"] and info["label"] == "cli"
    rm = xlock_cli("remove", "job", env=env)
    assert rm.returncode == 0 and "nothing to remove" in rm.stdout
    for proc in (out, path, ns, rm):
        assert pg_password not in proc.stdout + proc.stderr
    assert "***" in ns.stdout


def test_errors_name_the_server_never_the_password(pg: Any, pg_password: str) -> None:
    """[XL-PG-14, XL-PG-15]: wrong password → exit 69, no password anywhere."""
    url = pg.url(tcp=True, user="xlock_pw", password=pg_password + "x")
    for args in (
        ("run", "--namespace", url, "job", "true"),
        ("status", "--namespace", url, "job"),
        ("namespace", "--namespace", url),
    ):
        out = xlock_cli(*args)
        assert out.returncode == 69, (args, out)
        assert pg_password not in out.stdout + out.stderr
        assert "xlock_pw" in out.stderr + out.stdout and str(pg.port) in out.stderr + out.stdout
    bad = xlock_cli("path", "--namespace", "postgresql://h/d?xlock_bogus=1", "job")
    assert bad.returncode == 64 and "xlock_bogus" in bad.stderr


def test_run_semaphore_slot_and_no_fork(pg: Any) -> None:
    """`xlock run --permits N` gives COMMAND its slot; -F is refused, since exec would end the session."""
    env = {"XLOCK_NAMESPACE": pg.url()}
    out = xlock_cli("run", "--permits", "2", "slots", "--", "sh", "-c", "echo slot=$XLOCK_SLOT", env=env)
    assert out.returncode == 0 and out.stdout.strip() == "slot=0", out
    refused = xlock_cli("run", "-F", "job", "--", "true", env=env)
    assert refused.returncode == 64 and "--no-fork" in refused.stderr, refused
