"""Per-transaction biometric vault: chip portrait and best live frame, in memory only.

The core never holds images; the daemon keeps them here for the transaction and drops
them on ``ForgetBiometrics``. A referral keeps them (in memory) until the officer has
resolved it, so the console can show both photos side by side.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Biometrics:
    portrait: bytes | None = None
    best_frame: np.ndarray | None = None


@dataclass
class Vault:
    _items: dict[str, Biometrics] = field(default_factory=dict)
    _referred: set[str] = field(default_factory=set)

    def put_portrait(self, txn_id: str, portrait: bytes | None) -> None:
        self._items.setdefault(txn_id, Biometrics()).portrait = portrait

    def put_frame(self, txn_id: str, frame: np.ndarray | None) -> None:
        self._items.setdefault(txn_id, Biometrics()).best_frame = frame

    def get(self, txn_id: str) -> Biometrics | None:
        return self._items.get(txn_id)

    def forget(self, txn_id: str, keep_for_referral: bool = False) -> None:
        if keep_for_referral:
            self._referred.add(txn_id)
            return
        self._referred.discard(txn_id)
        self._items.pop(txn_id, None)

    def held(self) -> list[str]:
        return sorted(self._items)
