"""The demo's own PostgreSQL: one server under the data directory, on a port kept with it, and a fresh
`demo` database each run, so every run tells the same story (no quarantine or alert left from the last)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workloads.errors import DynolineError
from workloads.store.connection import first_line
from workloads.store.dsn import describe
from workloads.store.embedded import EmbeddedPostgres, remembered_port

from .plan import DEFAULT_DATABASE


@dataclass
class DemoServer:
    server: EmbeddedPostgres
    url: str
    note: str | None  # said once in the header when the kept port was taken


def start(data_dir: Path, default_port: int) -> DemoServer:
    leftover = EmbeddedPostgres(data_dir, port=default_port)
    if leftover.running():  # left behind by a demo that was killed: stop it, so its port is free again
        leftover.stop()
    choice = remembered_port(data_dir, default_port)
    server = EmbeddedPostgres(data_dir, port=choice.port)
    server.init()
    server.start()
    note = None
    if choice.port != choice.wanted:
        note = f"port {choice.wanted} is taken: the demo's PostgreSQL listens on {choice.port} from now on"
    try:
        url = fresh_database(server, DEFAULT_DATABASE)
    except BaseException:
        server.stop()
        raise
    return DemoServer(server, url, note)


def fresh_database(server: EmbeddedPostgres, name: str) -> str:
    import psycopg
    from psycopg import sql

    try:
        with psycopg.connect(server.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        raise DynolineError(
            f"demo database {name!r} on {describe(server.url())}: {first_line(exc)}"
        ) from None
    return server.url(name)
