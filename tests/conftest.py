"""Shared fixtures: one real PostgreSQL server per test session, a fresh migrated database per test."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from tests.store import epoch as test_epoch
from workloads.store.embedded import EmbeddedPostgres
from workloads.store.migrate import migrate

pytest_plugins = ["tests.envtest.fixtures", "tests.integration.operator_harness"]

CMAPSS_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cmapss"

_counter = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    if test_epoch.PROBLEM:
        raise pytest.UsageError(test_epoch.PROBLEM)


def pytest_report_header(config: pytest.Config) -> str:
    return test_epoch.header()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    # `-q` (as `make test` runs) hides the header: name the epoch wherever something failed
    if terminalreporter.stats.get("failed") or terminalreporter.stats.get("error"):
        terminalreporter.write_line(test_epoch.header())


@pytest.fixture(scope="session")
def epoch() -> datetime:
    """Midnight UTC of the session's base day: the only date the time-dependent store tests start from."""
    return test_epoch.EPOCH


@pytest.fixture(scope="session")
def pg_server() -> Iterator[EmbeddedPostgres]:
    # Not under tmp_path_factory: every pytest session re-locks /tmp/pytest-of-<user> to 0700, which
    # cuts the (non-root) server user off from a running server's files when sessions overlap.
    base = Path(tempfile.mkdtemp(prefix="dynoline-pg-"))
    server = EmbeddedPostgres(base / "data")
    try:
        server.init()
        server.start()
        yield server
    finally:
        server.destroy()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def empty_database_url(pg_server: EmbeddedPostgres) -> str:
    """A database with nothing in it, not even the schema."""
    pg_server.start()  # a test that rehearsed an outage may have left it stopped
    return pg_server.create_database(f"t{next(_counter)}")


@pytest.fixture
def database_url(empty_database_url: str) -> str:
    """A fresh database with the dynoline schema applied."""
    migrate(empty_database_url)
    return empty_database_url


@pytest.fixture(scope="session")
def cmapss_dir() -> Path:
    if not (CMAPSS_DIR / "train_FD001.txt").exists():
        pytest.fail(f"C-MAPSS FD001 not found at {CMAPSS_DIR} (../shared must sit beside the repo)")
    return CMAPSS_DIR
