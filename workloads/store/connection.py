"""Opening connections with errors a person can act on (and never a silent fallback)."""

from __future__ import annotations

import psycopg

from workloads.errors import DatabaseUnavailable
from workloads.store.dsn import describe


def connect(
    url: str, *, autocommit: bool = False, timeout: float = 5.0
) -> psycopg.Connection[tuple[object, ...]]:
    """Connect or raise DatabaseUnavailable naming the database and libpq's first line of reason."""
    try:
        return psycopg.connect(
            url, autocommit=autocommit, connect_timeout=max(1, int(timeout)), application_name="dynoline"
        )
    except psycopg.OperationalError as exc:
        raise DatabaseUnavailable(f"cannot reach database {describe(url)}: {first_line(exc)}") from None


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
