"""Tamper-evident audit journal: append-only JSON lines chained by SHA-256.

Each record carries ``seq`` (1, 2, 3 ...), ``prev`` (the previous record's hash) and
``hash`` = SHA-256 of its own canonical JSON without ``hash``. Editing a line breaks its
hash; deleting or reordering lines breaks ``seq``/``prev``. Rewriting the whole file
from the start is only detectable against signed checkpoints of the head, which the
operations issue adds on top of ``head()``.

This is one of the two modules of the core that write files (the other is the outbox);
it is deliberately synchronous and small: one ``write`` + ``flush`` + ``fsync`` per record.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
    """Appends chained records to ``path``; resumes the chain of an existing file."""

    def __init__(self, path: str | Path, fsync: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fsync = fsync
        self._head = _read_head(self.path)
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held open

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
        self._fh.write(canonical(record).decode() + "\n")
        self._fh.flush()
        if self._fsync:
            os.fsync(self._fh.fileno())
        self._head = Head(record["seq"], record["hash"])
        return record

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.close()


def _read_head(path: Path) -> Head:
    if not path.exists():
        return Head(0, GENESIS)
    head = Head(0, GENESIS)
    for rec in iter_records(path):
        if isinstance(rec, dict) and "seq" in rec and "hash" in rec:
            head = Head(int(rec["seq"]), str(rec["hash"]))
    return head


def iter_records(path: str | Path) -> Iterator[Any]:
    """Yield each line's JSON value, or ``None`` for a line that is not JSON."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                yield None


@dataclass(frozen=True)
class Verdict:
    ok: bool
    records: int
    line: int = 0  # 1-based line of the first problem
    problem: str = ""
    head: Head = Head(0, GENESIS)


def verify(path: str | Path) -> Verdict:
    """Walk the chain; report the first edited, missing or reordered record."""
    prev, expected, count, last = GENESIS, 1, 0, Head(0, GENESIS)
    try:
        records = list(iter_records(path))
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
