"""A local append-only spool for batches the database could not take, replayed in order when it is back.

File format: a sequence of frames `b"DLS1" | length u32 | crc32 u32 | payload`, little-endian, where the
CRC covers length and payload; a payload is one batch of one line: `version u8 | line length u16 |
line utf-8 | row count u32 | rows`, each row `unit i32, cycle i32, ts µs i64, 24 f64` (settings then
sensors, catalogue order). Every append is fsync'd before the batch counts as spooled.

Crash safety: a batch leaves the spool only after its commit is confirmed. The replay position lives in
`<spool>.offset` (written to a temporary file, fsync'd, renamed), moved past a batch only after the
database committed it; a crash between commit and offset update replays that batch again, which is why
replay goes through the idempotent insert. When everything is replayed the spool is truncated. A torn
final frame (a crash mid-append) fails its CRC and is cut off on open; nothing after a bad frame is
trusted.
"""

from __future__ import annotations

import fcntl
import logging
import os
import struct
import zlib
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from workloads.catalog import SENSOR_COLUMNS, SETTING_COLUMNS
from workloads.errors import DynolineError
from workloads.simulator.pacing import from_micros, to_micros

log = logging.getLogger(__name__)

Row = tuple[object, ...]

MAGIC = b"DLS1"
VERSION = 1
_HEADER = struct.Struct("<4sII")  # magic, payload length, crc32(length + payload)
_LENGTH = struct.Struct("<I")
_BATCH_HEAD = struct.Struct("<BH")  # version, line length
_COUNT = struct.Struct("<I")
_VALUES = len(SETTING_COLUMNS) + len(SENSOR_COLUMNS)
_ROW = struct.Struct(f"<iiq{_VALUES}d")
MAX_PAYLOAD = 1 << 30


class SpoolFormatError(ValueError):
    """A payload that passed its CRC but does not decode: written by something else."""


def encode_batch(rows: Sequence[Row]) -> bytes:
    """One batch of rows (TELEMETRY_COLUMNS order, all of one line) as a payload."""
    if not rows:
        raise ValueError("cannot spool an empty batch")
    line = rows[0][0]
    if not isinstance(line, str):
        raise TypeError(f"line must be a string, got {line!r}")
    name = line.encode()
    parts = [_BATCH_HEAD.pack(VERSION, len(name)), name, _COUNT.pack(len(rows))]
    pack = _ROW.pack
    for row in rows:
        if row[0] != line:
            raise ValueError(f"a spooled batch holds one line, got {line!r} and {row[0]!r}")
        ts = row[3]
        if not isinstance(ts, datetime):
            raise TypeError(f"ts must be a datetime, got {ts!r}")
        parts.append(pack(row[1], row[2], to_micros(ts), *row[4:]))
    return b"".join(parts)


def decode_batch(payload: bytes) -> list[Row]:
    try:
        version, name_len = _BATCH_HEAD.unpack_from(payload, 0)
        if version != VERSION:
            raise SpoolFormatError(f"unknown spool batch version {version}")
        at = _BATCH_HEAD.size
        line = payload[at : at + name_len].decode()
        at += name_len
        (count,) = _COUNT.unpack_from(payload, at)
        at += _COUNT.size
        if len(payload) - at != count * _ROW.size:
            raise SpoolFormatError(f"batch of {count} rows has {len(payload) - at} bytes of rows")
        return [
            (line, unit, cycle, from_micros(ts_us), *values)
            for unit, cycle, ts_us, *values in _ROW.iter_unpack(payload[at:])
        ]
    except (struct.error, UnicodeDecodeError) as exc:
        raise SpoolFormatError(f"undecodable spool batch: {exc}") from None


def batch_rows(payload: bytes) -> int:
    """The row count of a payload without decoding its rows."""
    (_, name_len) = _BATCH_HEAD.unpack_from(payload, 0)
    (count,) = _COUNT.unpack_from(payload, _BATCH_HEAD.size + name_len)
    return int(count)


def frame(payload: bytes) -> bytes:
    length = _LENGTH.pack(len(payload))
    return _HEADER.pack(MAGIC, len(payload), zlib.crc32(payload, zlib.crc32(length))) + payload


def scan(data: bytes, start: int = 0) -> tuple[list[tuple[int, int, int]], int]:
    """Valid frames from `start`: ([(start, end, rows)], end of the last valid frame)."""
    frames: list[tuple[int, int, int]] = []
    at = start
    while at + _HEADER.size <= len(data):
        magic, length, crc = _HEADER.unpack_from(data, at)
        end = at + _HEADER.size + length
        if magic != MAGIC or length > MAX_PAYLOAD or end > len(data):
            break
        payload = data[at + _HEADER.size : end]
        if zlib.crc32(payload, zlib.crc32(_LENGTH.pack(length))) != crc:
            break
        try:
            rows = batch_rows(payload)
        except struct.error:
            break
        frames.append((at, end, rows))
        at = end
    return frames, at


@dataclass(frozen=True)
class Record:
    start: int
    end: int
    rows: int


class Spool:
    """The spool file of one simulator shard; exclusively locked while open."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.offset_path = self.path.with_name(self.path.name + ".offset")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
        except OSError as exc:
            raise DynolineError(f"cannot open spool {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._fd)
            raise DynolineError(f"spool {self.path} is in use by another simulator") from None
        self._pending: deque[Record] = deque()
        self.pending_rows = 0
        self._recover()

    def _recover(self) -> None:
        size = os.fstat(self._fd).st_size
        offset = self._read_offset()
        if offset > size:
            # a crash between truncating a drained spool and zeroing its offset; anything else is a mystery
            if size:
                log.warning(
                    "spool %s: offset %d beyond end %d, replaying from the start", self.path, offset, size
                )
            offset = 0
            self._write_offset(0)
        data = os.pread(self._fd, size - offset, offset) if size > offset else b""
        frames, end = scan(data)
        if offset + end < size:
            log.warning(
                "spool %s: dropping %d bytes of torn or corrupt data after offset %d",
                self.path,
                size - offset - end,
                offset + end,
            )
            os.ftruncate(self._fd, offset + end)
            os.fsync(self._fd)
        for start, stop, rows in frames:
            self._pending.append(Record(offset + start, offset + stop, rows))
            self.pending_rows += rows
        if not self._pending and size:
            self._reset()

    def _read_offset(self) -> int:
        try:
            text = self.offset_path.read_text().strip()
        except FileNotFoundError:
            return 0
        if not text.isdigit():
            log.warning("spool %s: unreadable offset %r, replaying from the start", self.path, text)
            return 0
        return int(text)

    def _write_offset(self, offset: int) -> None:
        tmp = self.offset_path.with_name(self.offset_path.name + ".tmp")
        with open(tmp, "w") as f:
            f.write(f"{offset}\n")
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.offset_path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)

    def _reset(self) -> None:
        """All replayed: empty the file, then zero the offset (a crash in between leaves offset > size)."""
        os.ftruncate(self._fd, 0)
        os.fsync(self._fd)
        self._write_offset(0)

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    @property
    def pending_records(self) -> int:
        return len(self._pending)

    @property
    def pending_bytes(self) -> int:
        return self._pending[-1].end - self._pending[0].start if self._pending else 0

    def append(self, rows: Sequence[Row]) -> None:
        """Spool one batch durably (fsync'd) behind everything already pending."""
        data = frame(encode_batch(rows))
        start = os.lseek(self._fd, 0, os.SEEK_END)
        written = os.write(self._fd, data)
        if written != len(data):
            os.ftruncate(self._fd, start)
            raise OSError(f"short write to spool {self.path}: {written} of {len(data)} bytes")
        os.fsync(self._fd)
        self._pending.append(Record(start, start + len(data), len(rows)))
        self.pending_rows += len(rows)

    def peek(self, max_rows: int) -> tuple[list[Record], list[Row]]:
        """The oldest pending records (at least one, then as many as fit in `max_rows`) and their rows."""
        records: list[Record] = []
        rows: list[Row] = []
        for record in self._pending:
            if records and len(rows) + record.rows > max_rows:
                break
            payload = os.pread(self._fd, record.end - record.start, record.start)[_HEADER.size :]
            rows.extend(decode_batch(payload))
            records.append(record)
        return records, rows

    def confirm(self, records: Sequence[Record]) -> None:
        """The database committed these records: move the offset past them (durably)."""
        for record in records:
            if not self._pending or self._pending[0] != record:
                raise RuntimeError(f"spool records confirmed out of order: {record}")
            self._pending.popleft()
            self.pending_rows -= record.rows
        if self._pending:
            self._write_offset(self._pending[0].start)
        else:
            self._reset()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)  # releases the flock
            self._fd = -1

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
