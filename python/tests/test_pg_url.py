"""PostgreSQL namespace URIs and keys, without a server [XL-PG-1, XL-PG-2, XL-PG-3, XL-PG-14]."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import SPEC

import xlock
from xlock._pg import keys_of, pg_namespace
from xlock._pg.keys import channel, key, split
from xlock._pg.url import parse, redact

VECTORS = SPEC / "vectors" / "pg_keys.json"
pytest.importorskip("psycopg", reason="install the extra: pip install './python[postgresql]'")


def test_key_vectors() -> None:
    """[XL-PG-3, XL-PG-12]: every vector, with its pg_locks split."""
    cases = json.loads(VECTORS.read_text())["cases"]
    assert cases
    for case in cases:
        k = key(case["kind"], case["label"], case["name"], case.get("extra"))
        assert k == case["key"], case["description"]
        assert split(k) == (case["classid"], case["objid"]), case["description"]


def test_keys_are_pure_and_name_checked() -> None:
    """[XL-PG-3]: names obey §3 before anything else; a lock and a slot never share a key."""
    with pytest.raises(xlock.InvalidName):
        key("l", "default", "")
    with pytest.raises(xlock.InvalidName):
        key("l", "default", "x" * 81)
    mapped = keys_of("gpu")
    assert len(set(mapped.values())) == 3
    assert channel("default", "gpu") == "xl1s_%016x" % (mapped["s0"] & (2**64 - 1))


def test_uri_parsing() -> None:
    """[XL-PG-1, XL-PG-2]: xlock_ parameters are ours, the rest goes to libpq unchanged."""
    ns = parse("postgresql://u@db1:5433/locks?sslmode=disable&xlock_namespace=billing&application_name=a")
    assert ns.label == "billing"
    assert ns.url == "postgresql://u@db1:5433/locks?sslmode=disable&application_name=a"
    assert ns.conninfo["sslmode"] == "disable"
    assert parse("postgres://h/d").label == "default"
    assert ns.connect_options()["connect_timeout"] == "10"
    assert parse("postgresql://h/d?connect_timeout=3").connect_options().get("connect_timeout") is None
    assert parse("postgresql://h/d?xlock_release_ms=4000").connect_options()["tcp_user_timeout"] == "1000"


@pytest.mark.parametrize(
    "uri",
    [
        "postgresql://h/d?xlock_nope=1",
        "postgresql://h/d?xlock_namespace=",
        "postgresql://h/d?xlock_namespace=%0a",
        "postgresql://h/d?xlock_release_ms=999",
        "postgresql://h/d?xlock_release_ms=abc",
        "postgresql://h/d?nosuchparam=1",
        "postgresql://[::1/d",
        "postgresql://u:pw@h/d?xlock_namespace=a&xlock_namespace=b",
    ],
)
def test_malformed_uri_is_invalid_argument(uri: str) -> None:
    """[XL-PG-1, XL-PG-2]: before any connection, INVALID_ARGUMENT naming the URI without password."""
    with pytest.raises(xlock.InvalidArgument) as info:
        parse(uri)
    assert "pw" not in str(info.value).replace("pw@", "***@")


def test_password_is_redacted() -> None:
    """[XL-PG-14]: in the user info and in a password parameter."""
    assert redact("postgresql://u:secret@h/d") == "postgresql://u:***@h/d"
    assert redact("postgresql://h/d?password=secret&x=1") == "postgresql://h/d?password=***&x=1"
    ns = parse("postgresql://u:se%40cret@h/d")
    assert "se@cret" not in ns.shown and "se%40cret" not in ns.shown
    assert ns.scrub("oops se@cret and se%40cret") == "oops *** and ***"
    with pytest.raises(xlock.InvalidArgument) as info:
        parse("postgresql://u:topsecret@h/d?bogus=1")
    assert "topsecret" not in str(info.value)


def test_namespace_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    """[XL-PG-1]: explicit argument first, then XLOCK_NAMESPACE; anything else is a path."""
    monkeypatch.delenv("XLOCK_NAMESPACE", raising=False)
    assert pg_namespace(None) is None
    assert pg_namespace("/tmp/x") is None
    assert pg_namespace("postgresql://h/d") == "postgresql://h/d"
    monkeypatch.setenv("XLOCK_NAMESPACE", "postgres://h/d")
    assert pg_namespace(None) == "postgres://h/d"
    assert pg_namespace("/tmp/x") is None


def test_import_xlock_does_not_import_psycopg() -> None:
    """A local namespace never pays for the PostgreSQL client."""
    code = "import sys, xlock, xlock.cli; print('psycopg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
