"""Database URL validation and redaction, so errors can name the database without leaking secrets."""

from __future__ import annotations

import os

import psycopg
from psycopg.conninfo import conninfo_to_dict

from workloads.errors import DynolineError

ENV_VAR = "DYNOLINE_DATABASE_URL"


def resolve(url: str | None) -> str:
    """The URL given on the command line, else $DYNOLINE_DATABASE_URL, validated."""
    chosen = url if url else os.environ.get(ENV_VAR, "")
    if not chosen:
        raise DynolineError(f"no database given: pass --database-url or set {ENV_VAR}")
    return validate(chosen)


def validate(url: str) -> str:
    """Reject what libpq would reject, with a message that does not echo the password."""
    text = url.strip()
    if "://" in text and not text.startswith(("postgresql://", "postgres://")):
        scheme = text.split("://", 1)[0]
        raise DynolineError(
            f"malformed database URL: scheme {scheme!r} is not postgresql:// (in {redact(text)})"
        )
    try:
        parts = conninfo_to_dict(text)
    except psycopg.ProgrammingError as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise DynolineError(f"malformed database URL {redact(text)}: {reason}") from None
    for port in str(parts.get("port") or "5432").split(","):
        if not port.isdigit() or not 0 < int(port) < 65536:
            raise DynolineError(f"malformed database URL {redact(text)}: port {port!r} is not 1..65535")
    return text


def describe(url: str) -> str:
    """host:port/dbname, for messages and logs."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<malformed URL>"
    host = str(parts.get("host") or "localhost")
    port = str(parts.get("port") or "5432")
    return f"{host}:{port}/{parts.get('dbname') or parts.get('user') or ''}"


def redact(url: str) -> str:
    """The URL with any password replaced, safe to print."""
    if "://" in url and "@" in url:
        scheme, rest = url.split("://", 1)
        creds, _, tail = rest.rpartition("@")
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{tail}" if ":" in creds else url
    if "password=" in url:
        return " ".join("password=***" if p.startswith("password=") else p for p in url.split())
    return url
