"""PostgreSQL namespace URIs [XL-PG-1, XL-PG-2, XL-PG-11, XL-PG-14]: parse, validate, redact.

A namespace whose text starts with ``postgresql://`` or ``postgres://`` is a libpq connection URI. The
``xlock_*`` query parameters are ours and are removed; the rest goes to libpq unchanged. Nothing here
connects. The password (in the user info or a ``password=`` parameter) is never shown: ``shown`` has it
replaced by ``***`` and ``scrub`` removes it from any text, such as a client library's error message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from .._errors import InvalidArgument, InvalidName, UnsupportedBackend
from ..names import name_utf8

__all__ = ["DEFAULT_LABEL", "PgNamespace", "is_pg_url", "parse", "redact"]

from . import SCHEMES

DEFAULT_LABEL = "default"
DEFAULT_CONNECT_TIMEOUT_S = 10  # [XL-PG-1]
DEFAULT_RELEASE_MS = 15000  # the release bound R [XL-PG-11]
MIN_RELEASE_MS = 1000
XLOCK_PARAMS = ("xlock_namespace", "xlock_release_ms")
_USERINFO = re.compile(r"^(?P<scheme>[a-z]+://)(?P<user>[^:@/?]*):(?P<password>[^@/?]*)@")
_PASSWORD_PARAM = re.compile(r"(?P<head>[?&]password=)(?P<value>[^&]*)")


def is_pg_url(text: object) -> bool:
    """True if ``text`` names a PostgreSQL namespace rather than a directory [XL-PG-1]."""
    return isinstance(text, str) and text.startswith(SCHEMES)


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` [XL-PG-14]."""
    url = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", url, count=1)
    return _PASSWORD_PARAM.sub(lambda m: f"{m['head']}***", url)


def _passwords(url: str) -> list[str]:
    found = []
    m = _USERINFO.match(url)
    if m and m["password"]:
        found += [m["password"], unquote(m["password"])]
    for m in _PASSWORD_PARAM.finditer(url):
        if m["value"]:
            found += [m["value"], unquote(m["value"])]
    return sorted({p for p in found if p}, key=len, reverse=True)


@dataclass(frozen=True)
class PgNamespace:
    """A parsed PostgreSQL namespace. ``conninfo`` is what libpq parsed (password included: never show
    it); ``shown`` is the URI as messages and introspection print it."""

    url: str  # the URI for libpq: the xlock_ parameters removed
    shown: str
    label: str
    release_ms: int
    conninfo: dict[str, str]
    secrets: list[str] = field(repr=False, default_factory=list)

    def scrub(self, text: str) -> str:
        """``text`` with every password of this URI replaced by ``***`` [XL-PG-14]."""
        for secret in self.secrets:
            text = text.replace(secret, "***")
        return text

    def server(self) -> str:
        """host, port, database and user, for messages [XL-PG-15]."""
        info = self.conninfo
        host = info.get("host") or info.get("hostaddr") or "the default socket"
        port = info.get("port") or "5432"
        dbname = info.get("dbname") or info.get("user") or "the default database"
        user = info.get("user") or "the default user"
        return f"server {host} port {port} database {dbname} user {user}"

    def connect_options(self) -> dict[str, str]:
        """Client-side settings the URI does not set itself [XL-PG-1, XL-PG-11]."""
        client_user_timeout = max(MIN_RELEASE_MS, self.release_ms - 5000)
        defaults = {
            "connect_timeout": str(DEFAULT_CONNECT_TIMEOUT_S),
            "keepalives": "1",
            "keepalives_idle": "5",
            "keepalives_interval": "2",
            "keepalives_count": "3",
            "tcp_user_timeout": str(client_user_timeout),
        }
        return {k: v for k, v in defaults.items() if k not in self.conninfo}


def _psycopg_conninfo() -> Any:
    try:
        from psycopg import conninfo
    except ImportError as exc:
        raise UnsupportedBackend(
            f"PostgreSQL namespaces need psycopg 3, which this Python cannot import ({exc}); "
            "install it with: pip install 'xlock-ipc[postgresql]'"
        ) from None
    return conninfo


def parse(text: str) -> PgNamespace:
    """Parse and check a PostgreSQL namespace URI without connecting [XL-PG-1].

    Raises ``InvalidArgument`` (naming the URI without its password) for a URI libpq rejects, an unknown
    or malformed ``xlock_`` parameter, or a label that breaks §3 [XL-PG-2].
    """
    shown = redact(text)
    secrets = _passwords(text)
    base, sep, query = text.partition("?")
    kept: list[str] = []
    ours: dict[str, str] = {}
    for piece in query.split("&") if sep else []:
        raw_key, _, raw_value = piece.partition("=")
        param = unquote(raw_key)
        if param.startswith("xlock_"):
            if param not in XLOCK_PARAMS:
                raise InvalidArgument(
                    f"PostgreSQL namespace {shown}: unknown parameter {param!r}; xlock knows "
                    f"{', '.join(XLOCK_PARAMS)} [XL-PG-1]"
                )
            if param in ours:
                raise InvalidArgument(f"PostgreSQL namespace {shown}: parameter {param!r} is given twice")
            ours[param] = unquote(raw_value, errors="strict")
        elif piece:
            kept.append(piece)
    url = base + ("?" + "&".join(kept) if kept else "")
    label = ours.get("xlock_namespace", DEFAULT_LABEL)
    try:
        name_utf8(label)
    except InvalidName as exc:
        raise InvalidArgument(
            f"PostgreSQL namespace {shown}: xlock_namespace={label!r} is not a valid label: "
            f"{str(exc).split(': ', 1)[-1]} [XL-PG-2]"
        ) from None
    release_ms = DEFAULT_RELEASE_MS
    if "xlock_release_ms" in ours:
        value = ours["xlock_release_ms"]
        if not value.isascii() or not value.isdigit() or int(value) < MIN_RELEASE_MS:
            raise InvalidArgument(
                f"PostgreSQL namespace {shown}: xlock_release_ms={value!r} must be an integer of at least "
                f"{MIN_RELEASE_MS} (milliseconds) [XL-PG-11]"
            )
        release_ms = int(value)
    conninfo = _psycopg_conninfo()
    try:
        parsed = conninfo.conninfo_to_dict(url)
    except Exception as exc:  # psycopg.ProgrammingError from libpq's parser
        detail = " ".join(str(exc).split())
        for secret in secrets:
            detail = detail.replace(secret, "***")
        raise InvalidArgument(
            f"PostgreSQL namespace {shown} is not a valid connection URI: {detail} [XL-PG-1]"
        ) from None
    info = {k: str(v) for k, v in parsed.items() if v is not None}
    if info.get("password"):
        secrets = sorted({*secrets, info["password"]}, key=len, reverse=True)
    return PgNamespace(
        url=url, shown=shown, label=label, release_ms=release_ms, conninfo=info, secrets=secrets
    )
