"""Audit operations: signing journal checkpoints on a timer, and ``autogate audit verify``.

The checkpoint signer writes each checkpoint to a local file (fsync'd) and publishes it
on ``autogate/v1/{site}/{gate}/audit/checkpoint`` so a copy leaves the box: someone who
rewrites the journal here cannot rewrite what the central side already holds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from autogate import credentials
from autogate.cli import add_verify_arguments  # noqa: F401 - the options live with the parser
from gate import checkpoint
from gate.actions import OUTCOME_EVENTS, EventType, Publish
from gate.journal import Head, iter_records, journal_files, verify, verify_all

log = logging.getLogger("autogate.audit")

CHECKPOINT_LEAF = "audit/checkpoint"


def _utc(now: float) -> str:
    stamp = dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")


class Checkpointer:
    """Signs the journal head every ``interval`` seconds (and on demand), if it moved."""

    def __init__(
        self,
        key: Ed25519PrivateKey,
        path: Path,
        site: str,
        gate: str,
        head: Callable[[], Head],
        publish: Callable[[str, dict[str, Any]], Any] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.key = key
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.site, self.gate = site, gate
        self.head = head
        self.publish = publish
        self.clock = clock or time.time
        self.written = 0
        self.last: Head | None = None
        self.on_checkpoint: list[Callable[[checkpoint.Checkpoint], None]] = []

    def write(self, force: bool = False) -> checkpoint.Checkpoint | None:
        """Sign and store the current head; returns the checkpoint (None if unchanged)."""
        head = self.head()
        if head == self.last and not force:
            return None
        cp = checkpoint.sign(self.key, head, self.site, self.gate, _utc(self.clock()))
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(cp.to_json(), sort_keys=True) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        self.last = head
        self.written += 1
        for hook in self.on_checkpoint:
            hook(cp)
        return cp

    def payload(self, cp: checkpoint.Checkpoint) -> dict[str, Any]:
        return cp.to_json() | {
            "type": "audit.checkpoint",
            "event_id": str(uuid.uuid4()),
        }

    async def run(self, interval: float, stop: asyncio.Event) -> None:
        while not stop.is_set():
            cp = self.write()
            if cp is not None and self.publish is not None:
                try:
                    await self.publish(CHECKPOINT_LEAF, self.payload(cp))
                except Exception as exc:  # the local copy is written; the bus retries
                    log.error("publishing checkpoint seq=%d failed: %s", cp.seq, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)


class OutcomeCheckpoints:
    """A daemon observer: sign the head as soon as a transaction's outcome is journalled.

    The timer alone leaves up to ``checkpoint_interval_s`` of records unsigned, enough
    to cut or replace a whole crossing undetected; with a checkpoint at every outcome
    (accepted, referred, aborted) and every referral resolution, at most the transaction
    in progress is unsigned. Cost: one signature and one fsync per transaction
    (``bench/ops.py``).
    """

    KINDS = frozenset({*OUTCOME_EVENTS, EventType.REFERRAL_RESOLVED})

    def __init__(self, checkpointer: Checkpointer) -> None:
        self.checkpointer = checkpointer
        self._tasks: set[asyncio.Future[Any]] = set()

    def on_step(self, _before: Any, _event: Any, _after: Any, actions: Any, _s: float) -> None:
        if not any(isinstance(a, Publish) and a.type in self.KINDS for a in actions):
            return
        cp = self.checkpointer.write()
        if cp is None or self.checkpointer.publish is None:
            return
        sent = self.checkpointer.publish(CHECKPOINT_LEAF, self.checkpointer.payload(cp))
        if asyncio.iscoroutine(sent):
            task = asyncio.ensure_future(sent)
            self._tasks.add(task)
            task.add_done_callback(self._done)

    def _done(self, task: asyncio.Future[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("publishing an outcome checkpoint failed: %s", task.exception())


def last_checkpoint(path: Path) -> checkpoint.Checkpoint | None:
    """The newest checkpoint of a checkpoints file (None if there is none yet)."""
    if not path.exists():
        return None
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    if not lines:
        return None
    return checkpoint.load_lines(lines[-1])[0]


def check_at_start(journal: Path, checkpoints: Path, key: Ed25519PrivateKey) -> str | None:
    """Before the gate runs: does the journal still hold the last head this gate signed?

    Cheap on purpose (start-up must stay fast): only the newest checkpoint, and only the
    journal files from the one holding its record to the live file. Returns the problem
    in one line, or None. A full check is ``autogate audit verify --checkpoints``.
    """
    try:
        cp = last_checkpoint(checkpoints)
    except (OSError, checkpoint.CheckpointError) as exc:
        return f"{checkpoints}: {exc}"
    if cp is None or cp.seq == 0:
        return None
    try:
        checkpoint.check_signature(key.public_key(), cp)
    except checkpoint.CheckpointError as exc:
        return f"{checkpoints}: {exc}"
    files = journal_files(journal)
    tail: list[Path] = []
    for f in reversed(files):  # newest first, until the file that starts at or before cp.seq
        tail.insert(0, f)
        first = next((r for r in iter_records(f) if isinstance(r, dict)), None)
        if first is not None and isinstance(first.get("seq"), int) and first["seq"] <= cp.seq:
            start = Head(first["seq"] - 1, str(first.get("prev", "")))
            break
    else:
        return (
            f"{journal}: no journal record seq={cp.seq}, signed at {cp.ts}: "
            "the journal was replaced or truncated"
        )
    found = False
    for f in tail:
        v = verify(f, start)
        if not v.ok:
            return f"{f}: line {v.line}: {v.problem}"
        start = v.head
    for f in tail:
        for rec in iter_records(f):
            if isinstance(rec, dict) and rec.get("seq") == cp.seq:
                found = rec.get("hash") == cp.hash
                if not found:
                    return (
                        f"{journal}: record seq={cp.seq} differs from the checkpoint signed at "
                        f"{cp.ts}: the journal was rewritten"
                    )
    if not found:
        return f"{journal}: journal ends before seq={cp.seq} signed at {cp.ts}: records removed"
    return None


def _all_records(journal: Path) -> Iterator[Any]:
    for f in journal_files(journal):
        yield from iter_records(f)


def cmd_verify(args: argparse.Namespace) -> int:
    """0 intact (and anchored); 1 broken, rewritten or bad checkpoint; 2 unusable input."""
    path = Path(args.file)
    if path.is_dir():
        print(
            f"{path}: is a folder; give the journal file (e.g. var/journal.jsonl)", file=sys.stderr
        )
        return 2
    if not journal_files(path):
        print(f"{path}: file not found", file=sys.stderr)
        return 2
    cv = verify_all(path)
    v = cv.verdict
    if not v.ok:
        where = f"{cv.broken_file} " if len(cv.files) > 1 else ""
        print(
            f"{path}: BROKEN {where}at line {v.line}: {v.problem} "
            f"({v.records} records verified before it)"
        )
        return 1
    files = f" in {len(cv.files)} files" if len(cv.files) > 1 else ""
    summary = f"{path}: ok, {v.records} records{files}, head seq={v.head.seq} {v.head.hash[:16]}"
    cps_arg = getattr(args, "checkpoints", None)
    if not cps_arg:
        print(summary)
        return 0
    if not getattr(args, "public_key", None):
        print("--checkpoints needs --public-key (the gate's Ed25519 public key)", file=sys.stderr)
        return 2
    try:
        public = credentials.public_key(args.public_key)
        cps = checkpoint.load_lines(Path(cps_arg).read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"cannot read: {exc}", file=sys.stderr)
        return 2
    except credentials.CredentialError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except checkpoint.CheckpointError as exc:
        print(f"{cps_arg}: BAD CHECKPOINT {exc}")
        return 1
    if not cps:
        print(f"{cps_arg}: no checkpoints", file=sys.stderr)
        return 2
    anchoring = checkpoint.check_journal(_all_records(path), cps, public)
    if not anchoring.ok:
        print(f"{path}: NOT ANCHORED: {anchoring.problem}")
        return 1
    print(f"{summary}; anchored by {anchoring.checked} signed checkpoints")
    return 0
