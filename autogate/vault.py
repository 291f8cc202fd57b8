"""Per-transaction biometric vault: chip portrait, best live frame, DG3 finger images.

The core never holds images; the daemon keeps them here, in memory, for the transaction
and drops them on ``ForgetBiometrics``. A referral keeps them so the officer can compare
both photos: in memory only by default, or, with ``ops.privacy.referral_key``, sealed on
disk with AES-256-GCM (``ReferralStore``) so a console in another process can read them
and a restart does not lose an open case. Sealed files are deleted once the officer has
resolved the referral plus the configured retention (and after ``max_hold_s`` in any
case); nothing biometric is ever written in the clear (Malaysia's PDPA 2010 in spirit).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import struct
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from drivers.icao.cbeff import FingerImage

log = logging.getLogger("autogate.vault")

MAGIC = b"AGV1"  # file format version; the rest is nonce (12) + AES-GCM ciphertext + tag
_TXN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class VaultError(Exception):
    """A sealed referral that cannot be opened (wrong key, tampered or truncated file)."""


@dataclass
class Biometrics:
    portrait: bytes | None = None
    best_frame: np.ndarray | None = None
    # DG3's finger images, the thumb's references (the live thumb stays in the reader's
    # driver for the match only; nothing of it is returned)
    fingers: tuple[FingerImage, ...] = ()


def _pack(bio: Biometrics) -> bytes:
    frame = bio.best_frame
    fingers = [{**asdict(f), "image": len(f.image)} for f in bio.fingers]
    header = {
        "portrait_len": len(bio.portrait) if bio.portrait is not None else None,
        "frame": None if frame is None else {"shape": list(frame.shape), "dtype": str(frame.dtype)},
        "fingers": fingers,
    }
    head = json.dumps(header).encode()
    parts = [struct.pack(">I", len(head)), head, bio.portrait or b""]
    parts += [f.image for f in bio.fingers]
    if frame is not None:
        parts.append(np.ascontiguousarray(frame).tobytes())
    return b"".join(parts)


def _unpack(data: bytes) -> Biometrics:
    (n,) = struct.unpack(">I", data[:4])
    header = json.loads(data[4 : 4 + n])
    pos = 4 + n
    portrait = None
    if header["portrait_len"] is not None:
        portrait = data[pos : pos + header["portrait_len"]]
        pos += header["portrait_len"]
    fingers = []
    for spec in header.get("fingers", []):  # sealed before the thumb channel: none
        n = spec["image"]
        fingers.append(FingerImage(**{**spec, "image": data[pos : pos + n]}))
        pos += n
    frame = None
    if header["frame"] is not None:
        spec = header["frame"]
        frame = np.frombuffer(data[pos:], dtype=spec["dtype"]).reshape(spec["shape"]).copy()
    return Biometrics(portrait, frame, tuple(fingers))


class ReferralStore:
    """Referral biometrics sealed at rest: ``<txn>.bin`` (AES-GCM) + ``<txn>.json`` (times)."""

    def __init__(self, directory: Path, key: bytes, retention_s: float, max_hold_s: float) -> None:
        if len(key) != 32:
            raise ValueError("referral key must be 32 bytes (AES-256)")
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o700)
        self._aead = AESGCM(key)
        self.retention_s = retention_s
        self.max_hold_s = max_hold_s

    def _paths(self, txn_id: str) -> tuple[Path, Path]:
        if not _TXN.match(txn_id):
            raise ValueError(f"bad transaction id {txn_id!r}")
        return self.dir / f"{txn_id}.bin", self.dir / f"{txn_id}.json"

    def _write(self, path: Path, data: bytes) -> None:
        tmp = path.with_suffix(path.suffix + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

    def seal(self, txn_id: str, bio: Biometrics, now: float) -> None:
        blob, meta = self._paths(txn_id)
        nonce = os.urandom(12)
        sealed = self._aead.encrypt(nonce, _pack(bio), txn_id.encode())
        self._write(blob, MAGIC + nonce + sealed)
        self._write(meta, json.dumps({"txn_id": txn_id, "referred_at": now}).encode())

    def open(self, txn_id: str) -> Biometrics | None:
        blob, _ = self._paths(txn_id)
        try:
            data = blob.read_bytes()
        except FileNotFoundError:
            return None
        if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 12 + 16:
            raise VaultError(f"{blob.name}: not a sealed referral")
        nonce, sealed = data[4:16], data[16:]
        try:
            return _unpack(self._aead.decrypt(nonce, sealed, txn_id.encode()))
        except InvalidTag:
            raise VaultError(f"{blob.name}: wrong key or tampered file") from None

    def resolve(self, txn_id: str, now: float) -> None:
        _, meta = self._paths(txn_id)
        try:
            info = json.loads(meta.read_text())
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:  # damaged: ``purge`` deletes it
            log.warning("referral times of %s unreadable: %s", txn_id, type(exc).__name__)
            return
        if not isinstance(info, dict):
            return
        if info.get("resolved_at") is None:
            info["resolved_at"] = now
            self._write(meta, json.dumps(info).encode())

    def resolve_all(self, now: float) -> None:
        """At start: referrals of an earlier run can no longer be resolved at this gate."""
        for txn_id in self.txns():
            self.resolve(txn_id, now)

    def txns(self) -> list[str]:
        """The referrals held: ``<txn>.bin`` files (anything else there is not one)."""
        return sorted(p.stem for p in self.dir.glob("*.bin") if _TXN.match(p.stem) and p.is_file())

    def purge(self, now: float) -> list[str]:
        """Delete what is past retention; also orphans and half-written temp files."""
        gone: list[str] = []
        for tmp in self.dir.glob("*.tmp"):
            _remove(tmp)
        for blob in self.dir.glob("*.bin"):
            meta = blob.with_suffix(".json")
            try:
                info = json.loads(meta.read_text())
                resolved = info.get("resolved_at")
                expired = (resolved is not None and now - resolved >= self.retention_s) or (
                    now - info["referred_at"] >= self.max_hold_s
                )
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                expired = True  # no readable times: nothing justifies keeping it
            if expired:
                _remove(blob)
                _remove(meta)
                gone.append(blob.stem)
        for meta in self.dir.glob("*.json"):
            if not meta.with_suffix(".bin").exists():
                _remove(meta)
        if gone:
            log.info("deleted referral biometrics of %d transactions", len(gone))
        return gone


def _remove(path: Path) -> None:
    """Delete a file of the store, or what a damaged one became (a folder in its place);
    what cannot be removed is logged, never a start that fails."""
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
    except OSError as exc:
        log.error("referral store: cannot delete %s: %s", path.name, exc.strerror or exc)


@dataclass
class Vault:
    """Biometrics of the transactions in progress (``begin`` .. ``forget``), and of
    referrals kept for the officer.

    A device answer can come after its transaction ended (a chip read or a face burst
    still running when the traveller took the passport away, the gate went out of
    service or timed out). What arrives for a transaction that is not in progress is
    dropped and counted (``dropped_late``), never kept: biometrics live no longer than
    their transaction unless a referral keeps them."""

    store: ReferralStore | None = None
    clock: Callable[[], float] = time.time
    _items: dict[str, Biometrics] = field(default_factory=dict)
    _referred: set[str] = field(default_factory=set)
    _open: set[str] = field(default_factory=set)
    dropped_late: int = 0

    def begin(self, txn_id: str) -> None:
        """A transaction started: its devices' biometrics may be put until ``forget``."""
        self._open.add(txn_id)

    def _admit(self, txn_id: str, what: str) -> Biometrics | None:
        if txn_id not in self._open:
            self.dropped_late += 1
            log.info("%s for %s dropped: that transaction is not in progress", what, txn_id)
            return None
        return self._items.setdefault(txn_id, Biometrics())

    def put_portrait(self, txn_id: str, portrait: bytes | None) -> bool:
        """Keep the chip portrait of ``txn_id``; False when it was dropped (or None)."""
        bio = self._admit(txn_id, "chip portrait") if portrait is not None else None
        if bio is not None:
            bio.portrait = portrait
        return bio is not None

    def put_frame(self, txn_id: str, frame: np.ndarray | None) -> bool:
        """Keep the best live frame of ``txn_id``; False when it was dropped (or None)."""
        bio = self._admit(txn_id, "live frame") if frame is not None else None
        if bio is not None:
            bio.best_frame = frame
        return bio is not None

    def put_fingers(self, txn_id: str, fingers: tuple[FingerImage, ...]) -> bool:
        """Keep DG3's finger images of ``txn_id`` (the thumb's references); False when
        dropped (none, or the transaction is not in progress)."""
        bio = self._admit(txn_id, "finger images") if fingers else None
        if bio is not None:
            bio.fingers = tuple(fingers)
        return bio is not None

    def get(self, txn_id: str) -> Biometrics | None:
        bio = self._items.get(txn_id)
        if bio is None and self.store is not None:
            return self.store.open(txn_id)
        return bio

    def forget(self, txn_id: str, keep_for_referral: bool = False) -> None:
        """The transaction ended: nothing more is admitted for it; its biometrics go now,
        or (``keep_for_referral``) stay sealed or in memory until the referral is resolved
        and this is called again without it."""
        now = self.clock()
        self._open.discard(txn_id)
        if keep_for_referral:
            bio = self._items.get(txn_id)
            if self.store is not None and bio is not None:
                try:
                    self.store.seal(txn_id, bio, now)
                except OSError as exc:
                    # a full or failing disk: the officer still gets the photos (they
                    # stay in memory until the referral is resolved, as without a
                    # store); raised, it ended the daemon between two of its actions
                    log.error("referral of %s kept in memory, not sealed: %s", txn_id, exc)
                    self._referred.add(txn_id)
                    return
                del self._items[txn_id]  # sealed on disk; nothing stays in memory
            else:
                self._referred.add(txn_id)
            return
        self._referred.discard(txn_id)
        self._items.pop(txn_id, None)
        if self.store is not None:
            try:
                self.store.resolve(txn_id, now)
                self.store.purge(now)
            except OSError as exc:  # the purge timer tries again (ops), nothing is lost
                log.error("referral store: %s not marked resolved yet: %s", txn_id, exc)

    def purge(self) -> None:
        if self.store is not None:
            self.store.purge(self.clock())

    def held(self) -> list[str]:
        on_disk = self.store.txns() if self.store is not None else []
        return sorted(set(self._items) | set(on_disk))
