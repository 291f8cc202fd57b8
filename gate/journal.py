"""Tamper-evident audit journal: append-only JSON lines chained by SHA-256.

Each record carries ``seq`` (1, 2, 3 ...), ``prev`` (the previous record's hash) and
``hash`` = SHA-256 of its own canonical JSON without ``hash``. Editing a line breaks its
hash; deleting or reordering lines breaks ``seq``/``prev``. Rewriting the whole file
from the start is only detectable against signed checkpoints of the head, which the
operations issue adds on top of ``head()``.

This is one of the two modules of the core that write files (the other is the outbox);
it is deliberately synchronous and small: one ``write`` + ``flush`` + ``fsync`` per record.

Rotation (``rotate_bytes``) closes a full file and renames it ``journal.<first seq>.jsonl``;
the next record in the fresh ``journal.jsonl`` continues ``seq`` and ``prev``, so the
chain runs across files and ``verify_all`` walks them in order.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gate import strictjson

GENESIS = "0" * 64


def canonical(obj: Any) -> bytes:
    """The bytes that are hashed and signed: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
    ).encode()


def record_hash(record: dict[str, Any]) -> str:
    body = {k: v for k, v in record.items() if k != "hash"}
    return hashlib.sha256(canonical(body)).hexdigest()


@dataclass(frozen=True)
class Head:
    seq: int
    hash: str


class Journal:
    """Appends chained records to ``path``; resumes the chain of an existing file.

    A write that fails (disk full, an I/O error) raises ``OSError`` and leaves the file
    and the chain as they were: the bytes of a record written in part are cut off again,
    so the next record does not join a torn line (which would break the chain for every
    reader) and the head stays the last record on disk."""

    def __init__(
        self, path: str | Path, fsync: bool = True, rotate_bytes: int | None = None
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._rotate_bytes = rotate_bytes
        self._head = _read_head(self.path)
        self._first = _first_seq(self.path) or self._head.seq + 1
        torn = _torn(self.path)
        self._fd = self._open()
        if torn:  # power lost mid-write: end that line, or the next record joins it
            _write_all(self._fd, b"\n")
        self._size = os.fstat(self._fd).st_size

    def _open(self) -> int:
        return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def head(self) -> Head:
        return self._head

    def append(self, kind: str, data: dict[str, Any], ts: str) -> dict[str, Any]:
        record: dict[str, Any] = {
            "seq": self._head.seq + 1,
            "ts": ts,
            "kind": kind,
            "data": data,
            "prev": self._head.hash,
        }
        record["hash"] = record_hash(record)
        line = canonical(record) + b"\n"
        if self._fd < 0:
            self._fd = self._open()  # a rotation that could not reopen the file
        start = self._size
        try:
            if os.fstat(self._fd).st_size != start:
                # a record written in part before, which could not be cut off then
                os.ftruncate(self._fd, start)
            _write_all(self._fd, line)
            if self._fsync:
                os.fsync(self._fd)
        except OSError:
            # the part that was written goes: the line must be whole or absent (if this
            # fails too, the next append tries again before it writes)
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, start)
            raise
        self._size = start + len(line)
        self._head = Head(record["seq"], record["hash"])
        if self._rotate_bytes is not None and self._size >= self._rotate_bytes:
            self._rotate()
        return record

    def _rotate(self) -> None:
        """Archive the full file under its first seq; the chain goes on in a new file."""
        os.close(self._fd)
        self._fd = -1
        archived = rotated_name(self.path, self._first)
        os.rename(self.path, archived)
        if self._fsync:
            _fsync_dir(self.path.parent)
        self._first = self._head.seq + 1
        self._fd = self._open()
        self._size = 0

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        if n <= 0:
            raise OSError("journal: nothing written")
        view = view[n:]


def _torn(path: Path) -> bool:
    """True when the file's last line has no newline (a write cut short)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(-1, os.SEEK_END)
            return fh.read(1) != b"\n"
    except OSError:  # missing or empty
        return False


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rotated_name(path: Path, first_seq: int) -> Path:
    return path.with_name(f"{path.stem}.{first_seq:010d}{path.suffix}")


def journal_files(path: str | Path) -> list[Path]:
    """Rotated files of ``path`` in chain order, then ``path`` itself if it exists."""
    path = Path(path)
    found: list[tuple[int, Path]] = []
    for p in path.parent.glob(f"{path.stem}.*{path.suffix}"):
        middle = p.name[len(path.stem) + 1 : len(p.name) - len(path.suffix)]
        if middle.isdigit():
            found.append((int(middle), p))
    files = [p for _, p in sorted(found)]
    if path.exists():
        files.append(path)
    return files


def _as_head(rec: Any) -> Head | None:
    """The head a line names, or None for a line that is no record (torn, edited to a
    seq or hash of the wrong type): ``verify`` reports those; the start never fails."""
    if not isinstance(rec, dict):
        return None
    seq, digest = rec.get("seq"), rec.get("hash")
    if type(seq) is not int or seq < 1 or not isinstance(digest, str) or len(digest) != 64:
        return None
    return Head(seq, digest)


def _last_head(path: Path) -> Head | None:
    head = None
    for rec in iter_records(path):
        head = _as_head(rec) or head
    return head


def _first_seq(path: Path) -> int | None:
    if not path.exists():
        return None
    for rec in iter_records(path):
        head = _as_head(rec)
        if head is not None:
            return head.seq
    return None


def _read_head(path: Path) -> Head:
    """The chain's head: the live file's last record, else the newest rotated file's."""
    for p in reversed(journal_files(path)):
        head = _last_head(p)
        if head is not None:
            return head
    return Head(0, GENESIS)


def iter_records(path: str | Path, strict: bool = False) -> Iterator[Any]:
    """Yield each line's JSON value, or ``None`` for a line that is not JSON.

    ``strict`` (what ``verify`` reads): also ``None`` for a line with a duplicate key.
    A record's hash covers what was parsed, and Python keeps the last of two keys, so a
    value put in front of the real one verified while every reader of the line saw it."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                if strict:
                    yield strictjson.loads(line, allow_nan=True, check_unicode=False)
                else:
                    yield json.loads(line)
            # ValueError: also an integer past int()'s digit limit; RecursionError:
            # nested past any record
            except (ValueError, RecursionError):
                yield None


@dataclass(frozen=True)
class Verdict:
    ok: bool
    records: int
    line: int = 0  # 1-based line of the first problem
    problem: str = ""
    head: Head = Head(0, GENESIS)


def verify(path: str | Path, start: Head = Head(0, GENESIS)) -> Verdict:
    """Walk the chain; report the first edited, missing or reordered record.

    ``start`` is the head the file must continue (a rotated file's predecessor).
    """
    prev, expected, count, last = start.hash, start.seq + 1, 0, start
    try:
        records = list(iter_records(path, strict=True))
    except OSError as exc:
        return Verdict(False, 0, 0, f"cannot read: {exc}")
    for lineno, rec in enumerate(records, start=1):
        if not isinstance(rec, dict):
            return Verdict(False, count, lineno, "line is not a JSON record", last)
        seq = rec.get("seq")
        if rec.get("hash") != record_hash(rec):
            return Verdict(
                False, count, lineno, f"record seq={seq} was edited (hash mismatch)", last
            )
        if seq != expected:
            what = "missing" if isinstance(seq, int) and seq > expected else "out of order"
            return Verdict(
                False, count, lineno, f"record seq={expected} {what} (found seq={seq})", last
            )
        if rec.get("prev") != prev:
            return Verdict(
                False, count, lineno, f"record seq={seq} does not chain to its predecessor", last
            )
        prev, expected, count = rec["hash"], expected + 1, count + 1
        last = Head(seq, prev)
    return Verdict(True, count, head=last)


@dataclass(frozen=True)
class ChainVerdict:
    """``verify`` over a rotated journal: which file broke, and the chain's head."""

    verdict: Verdict
    files: tuple[Path, ...]
    broken_file: Path | None = None

    @property
    def ok(self) -> bool:
        return self.verdict.ok


def verify_all(path: str | Path) -> ChainVerdict:
    """Verify ``path`` and its rotated predecessors as one chain from the genesis."""
    files = journal_files(path)
    head, total = Head(0, GENESIS), 0
    for f in files:
        v = verify(f, head)
        total += v.records
        if not v.ok:
            return ChainVerdict(
                Verdict(False, total, v.line, v.problem, v.head), tuple(files), broken_file=f
            )
        head = v.head
    return ChainVerdict(Verdict(True, total, head=head), tuple(files))
