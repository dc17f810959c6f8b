"""What every benchmark shares: the database it runs in, the machine it reports, and how it prints.

A benchmark never touches the product's tables: it works in its own schema (search_path set on its
connections), so `--database-url` may point at a database that also serves a line. Without a URL it
starts a throwaway embedded PostgreSQL in a temporary directory and destroys it afterwards.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import os
import platform
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from workloads import quantile
from workloads.errors import DynolineError
from workloads.store import dsn
from workloads.store.connection import connect, first_line
from workloads.store.embedded import EmbeddedPostgres, safe_setting
from workloads.store.migrate import migrate

log = logging.getLogger(__name__)

Conn = psycopg.Connection[tuple[object, ...]]
Result = dict[str, Any]
R = TypeVar("R")

# Server settings that decide write and query speed; reported with every result. `data_checksums` is
# fixed at initdb (on by default from PostgreSQL 18, off before): with it on, setting hint bits and the
# visibility map logs page images, a third of a plant stream's WAL (docs/benchmarks.md, seventh round).
REPORTED_SETTINGS = (
    "fsync",
    "synchronous_commit",
    "shared_buffers",
    "wal_buffers",
    "wal_level",
    "max_wal_size",
    "checkpoint_timeout",
    "data_checksums",
    "jit",
)


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database-url",
        default=None,
        metavar="URL",
        help="PostgreSQL to benchmark (superuser for server-side COPY); the benchmark works in its own"
        " schema there. Default: a throwaway embedded PostgreSQL in a temporary directory",
    )
    parser.add_argument(
        "--server-setting",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting for the throwaway embedded PostgreSQL, e.g. shared_buffers=4GB (repeatable;"
        " reported with the result). With --database-url, set them on that server instead",
    )
    parser.add_argument("--json", action="store_true", help="machine-readable result on stdout")


Setting = tuple[str, str]


def server_setting(text: str) -> Setting:
    """`NAME=VALUE` from the command line, checked as the embedded server checks it."""
    name, sep, value = text.partition("=")
    if not sep or not safe_setting(name, value):
        raise DynolineError(
            f"--server-setting {text!r}: expected NAME=VALUE, a PostgreSQL setting and a value of"
            " letters, digits and ._:+-"
        )
    return name, value


def server_settings(args: argparse.Namespace) -> list[Setting]:
    """The settings for the throwaway server; refused with a server of one's own, which they cannot reach."""
    settings = [server_setting(text) for text in args.server_setting]
    if settings and args.database_url is not None:
        raise DynolineError(
            "--server-setting applies to the throwaway server; with --database-url, set it on that server"
        )
    return settings


@dataclass(frozen=True)
class BenchDatabase:
    url: str  # with search_path set to the benchmark's schema
    schema: str
    embedded: EmbeddedPostgres | None  # the throwaway server, when no URL was given
    workdir: Path  # a private temporary directory (spool files and the like)

    def describe(self) -> str:
        where = "throwaway embedded PostgreSQL" if self.embedded else dsn.describe(self.url)
        return f"{where}, schema {self.schema}"


def with_search_path(url: str, schema: str) -> str:
    """The URL as a conninfo string whose sessions resolve unqualified names in `schema` first."""
    existing = str(conninfo_to_dict(url).get("options") or "")
    return make_conninfo(url, options=f"{existing} -c search_path={schema}".strip())


@contextmanager
def bench_database(
    url: str | None, schema: str, *, keep: bool = False, settings: Sequence[Setting] = ()
) -> Iterator[BenchDatabase]:
    """A migrated schema to benchmark in; dropped afterwards unless `keep` (the server too, if ours,
    which starts with `settings`)."""
    workdir = Path(tempfile.mkdtemp(prefix="dynoline-bench-"))
    server: EmbeddedPostgres | None = None
    base: str | None = None
    try:
        if url is None:
            server = EmbeddedPostgres(workdir / "pg" / "data", settings=settings)
            server.init()
            server.start()
            base = server.create_database("bench")
        else:
            base = dsn.validate(url)
        scoped = with_search_path(base, schema)
        try:
            with connect(base, autocommit=True) as conn:
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            migrate(scoped)
        except psycopg.Error as exc:
            raise DynolineError(
                f"cannot prepare the benchmark schema {schema} in {dsn.describe(base)}: {first_line(exc)}"
            ) from None
        yield BenchDatabase(scoped, schema, server, workdir)
    finally:
        if server is not None:
            server.destroy()
        elif base is not None and not keep:
            _drop_schema(base, schema)
        shutil.rmtree(workdir, ignore_errors=True)


def _drop_schema(url: str, schema: str) -> None:
    try:
        with connect(url, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))
    except (DynolineError, psycopg.Error) as exc:
        log.warning("could not drop benchmark schema %s: %s", schema, exc)


def machine(conn: Conn) -> Result:
    """The machine and server a figure was measured on: the settings that decide speed, and every
    other one the server was started with (`--server-setting`)."""
    started_with = [
        str(r[0])
        for r in conn.execute(
            "SELECT name FROM pg_settings WHERE source = 'command line'"
            " AND name NOT IN ('port', 'listen_addresses', 'unix_socket_directories') ORDER BY name"
        ).fetchall()
    ]
    settings = {
        name: str(row[0])
        if (row := conn.execute(sql.SQL("SHOW {}").format(sql.Identifier(name))).fetchone())
        else None
        for name in [*REPORTED_SETTINGS, *(n for n in started_with if n not in REPORTED_SETTINGS)]
    }
    version = conn.execute("SHOW server_version").fetchone()
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib(),
        "os": platform.platform(),
        "python": platform.python_version(),
        "psycopg": f"{psycopg.__version__} ({psycopg.pq.__impl__})",
        "postgresql": str(version[0]) if version else None,
        "server_settings": settings,
        "load_average_1m_at_start": round(os.getloadavg()[0], 2),
    }


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024**2, 1)
    except (OSError, ValueError, IndexError):
        pass
    return None


def percentile(values: Sequence[float], q: float) -> float:
    """`workloads.quantile.percentile` of values a benchmark has (it never asks about none)."""
    found = quantile.percentile(values, q)
    if found is None:
        raise ValueError("percentile of no values")
    return found


def rate(rows: int, seconds: float) -> float:
    return rows / seconds if seconds > 0 else math.inf


def ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else a / b


def emit(result: R, as_json: bool, render: Callable[[R], str]) -> None:
    """Print a result: `render`ed for people, or as JSON (a dataclass result field by field)."""
    if as_json:
        doc = (
            dataclasses.asdict(result)
            if dataclasses.is_dataclass(result) and not isinstance(result, type)
            else result
        )
        print(json.dumps(doc, indent=2, default=str), flush=True)
    else:
        print(render(result), flush=True)


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain text table, numbers right-aligned."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    numeric = [all(isinstance(r[i], int | float) or r[i] is None for r in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w) for v, w, num in zip(values, widths, numeric, strict=True)
        )

    out = [line(list(headers)), line(["-" * w for w in widths])]
    out.extend(line(r) for r in cells)
    return "\n".join(s.rstrip() for s in out)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if isinstance(value, float):
        if value >= 100:
            return f"{value:,.0f}"
        return f"{value:.3g}" if value < 10 else f"{value:.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def machine_lines(m: Result) -> list[str]:
    s = m.get("server_settings") or {}
    return [
        f"machine: {m['cpu_model']}, {m['cores']} cores, {m['memory_gib']} GiB; Python {m['python']},"
        f" psycopg {m['psycopg']}; PostgreSQL {m['postgresql']}",
        "server: "
        + ", ".join(f"{k}={v}" for k, v in s.items())
        + f"; load avg at start {m['load_average_1m_at_start']}",
    ]
