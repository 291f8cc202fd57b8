"""Issue 17 item 10: referral photos are deleted when the officer resolves the referral,
unless an operator deliberately configures a retention."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from autogate.vault import Biometrics, ReferralStore
from gate.config import load_config
from tests.ops.helpers import make_config, write_aes_key

ROOT = Path(__file__).resolve().parents[2]


def test_shipped_defaults_delete_sealed_photos_at_resolution(tmp_path: Path) -> None:
    for cfg in (load_config(make_config(tmp_path)), load_config(ROOT / "config/gate.example.yaml")):
        assert cfg.ops.privacy.retention_s == 0
    privacy = load_config(make_config(tmp_path)).ops.privacy
    store = ReferralStore(
        tmp_path / "referrals",
        write_aes_key(tmp_path / "k"),
        privacy.retention_s,
        privacy.max_hold_s,
    )
    store.seal(
        "t1", Biometrics(b"\xff\xd8\xff" + b"x" * 100, np.zeros((4, 4, 3), np.uint8)), 1000.0
    )
    assert store.txns() == ["t1"]
    store.resolve("t1", 1000.5)  # the officer resolves it
    store.purge(1000.5)
    assert list((tmp_path / "referrals").iterdir()) == []
