"""The console's own audit journal: who did what, chained and signed like the gate's.

Every record names the officer (or the login name tried). Kinds: ``login``,
``login.failed``, ``login.throttled``, ``login.guessing``, ``logout``, ``command.sent``,
``command.refused`` (by role, before anything was signed), ``command.failed``,
``command.ack`` (what the gate answered), ``images.viewed``, and the security alarms
``broker.session_taken_over`` and ``broker.retained_image``.

With a signing key every record is followed by a signed checkpoint of the head (Ed25519,
``gate.checkpoint``) in a separate file, so the unsigned tail is never more than the
record being written: a journal cut short or rewritten from the first line with a fresh
chain no longer holds what was signed. ``autogate audit verify FILE --checkpoints CKPT
--public-key PUB`` checks both; the console itself refuses to start on a journal that
lost its last signed head (keep both files as evidence, move them aside, start again).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate import checkpoint
from gate.journal import Journal, iter_records, journal_files, verify_all

CHECKPOINT_GATE = "console"  # the ``gate`` field of the console's checkpoints

log = logging.getLogger(__name__)


class AuditError(RuntimeError):
    """The journal does not match its signed checkpoints (or its chain is broken)."""


class AuditUnavailable(RuntimeError):
    """The journal cannot be written now: what was to be journalled is not done."""


class Audit:
    def __init__(
        self,
        path: str | Path,
        fsync: bool = True,
        *,
        signing_key: Ed25519PrivateKey | None = None,
        checkpoints: str | Path | None = None,
        site: str = "site",
    ) -> None:
        self.path = Path(path)
        self._key, self._site, self._fsync = signing_key, site, fsync
        self.checkpoints = Path(checkpoints) if checkpoints else _default_checkpoints(self.path)
        if signing_key is not None:
            self._check_at_start(signing_key)
        self._journal = Journal(path, fsync=fsync)
        self._lock = threading.Lock()

    def _check_at_start(self, key: Ed25519PrivateKey) -> None:
        try:
            lines = self.checkpoints.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        last = [ln for ln in lines if ln.strip()][-1:]
        if not last:
            return
        try:
            cps = checkpoint.load_lines(last[0])
        except checkpoint.CheckpointError as exc:
            raise AuditError(f"{self.checkpoints}: {exc}") from None
        if journal_files(self.path):
            chain = verify_all(self.path)
            if not chain.ok:
                raise AuditError(f"{self.path}: line {chain.verdict.line}: {chain.verdict.problem}")
        records = (r for f in journal_files(self.path) for r in iter_records(f))
        anchoring = checkpoint.check_journal(records, cps, key.public_key())
        if not anchoring.ok:
            raise AuditError(f"{self.path}: {anchoring.problem}")

    def record(self, kind: str, officer: str, **data: Any) -> dict[str, Any]:
        """Journal what an officer does, before it is done: ``AuditUnavailable`` when
        the journal cannot be written (disk full, an I/O error), and the caller does
        nothing (a command not journalled is not sent)."""
        ts = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self._lock:
            try:
                rec = self._journal.append(kind, {"officer": officer, **data}, ts)
            except OSError as exc:
                log.error("audit journal %s not writable: %s", self.path, exc)
                raise AuditUnavailable(
                    f"audit journal not writable: {exc.strerror or exc}"
                ) from None
            if self._key is not None:
                cp = checkpoint.sign(
                    self._key, self._journal.head(), self._site, CHECKPOINT_GATE, ts
                )
                try:
                    with open(self.checkpoints, "a", encoding="utf-8") as fh:
                        fh.write(json.dumps(cp.to_json(), sort_keys=True) + "\n")
                        fh.flush()
                        if self._fsync:
                            os.fsync(fh.fileno())
                except OSError as exc:
                    # the record is journalled: the next checkpoint signs a head past it
                    log.error("audit checkpoint not written to %s: %s", self.checkpoints, exc)
            return rec

    def close(self) -> None:
        self._journal.close()


def _default_checkpoints(path: Path) -> Path:
    return path.with_name(path.stem + ".checkpoints.jsonl")
