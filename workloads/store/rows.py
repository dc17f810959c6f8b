"""Typed rows: a query's columns handed to a constructor (psycopg's `args_row`), so callers get `int`,
a NamedTuple or a dataclass instead of `tuple[object, ...]` and no `int(str(...))` casts."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, LiteralString, TypeVar

import psycopg
from psycopg import sql
from psycopg.abc import Params
from psycopg.rows import args_row

T = TypeVar("T")
Conn = psycopg.Connection[Any]
Statement = LiteralString | sql.SQL | sql.Composed


def one(conn: Conn, make: Callable[..., T], query: Statement, params: Params | None = None) -> T | None:
    """The first row as `make(*columns)`, or None when there is none."""
    with conn.cursor(row_factory=args_row(make)) as cur:
        return cur.execute(query, params).fetchone()


def every(conn: Conn, make: Callable[..., T], query: Statement, params: Params | None = None) -> list[T]:
    """Every row as `make(*columns)`."""
    with conn.cursor(row_factory=args_row(make)) as cur:
        return cur.execute(query, params).fetchall()
