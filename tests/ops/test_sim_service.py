"""A simulated session with every ops feature on: logs, checkpoints, sealed referrals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.ops.helpers import (
    ROOT,
    image_hits,
    make_config,
    write_aes_key,
    write_public_key,
    write_signing_key,
)


def run_sim(cfg: Path, creds: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autogate.cli", "run", "--sim", "--config", str(cfg)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ | {"CREDENTIALS_DIRECTORY": str(creds)},
        timeout=120,
    )


def test_session_leaves_no_biometrics_and_an_anchored_journal(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    key = write_signing_key(creds / "audit-signing-key")
    write_aes_key(creds / "referral-key")
    var = tmp_path / "var"
    cfg = make_config(
        tmp_path,
        audit={
            "signing_key": "audit-signing-key",
            "checkpoints": str(var / "checkpoints.jsonl"),
            "checkpoint_interval_s": 0.5,
        },
        privacy={"referral_key": "referral-key", "retention_s": 0},
    )
    res = run_sim(cfg, creds)
    assert res.returncode == 0, res.stderr

    # nothing biometric on disk: the referral was sealed, then deleted at resolution
    assert (var / "referrals").is_dir() and list((var / "referrals").iterdir()) == []
    assert image_hits(tmp_path, (b"sim-portrait",)) == []

    # checkpoints went out on the bus and to the local file, and anchor the journal
    events = [json.loads(line) for line in res.stdout.splitlines() if line.strip()]
    published = [e for e in events if e["topic"] == "audit/checkpoint"]
    assert published and published[0]["gate"] == "gate-01" and published[0]["sig"]
    pub = write_public_key(tmp_path / "gate.pub", key)
    verify = subprocess.run(
        [
            sys.executable, "-m", "autogate.cli", "audit", "verify", str(var / "journal.jsonl"),
            "--checkpoints", str(var / "checkpoints.jsonl"), "--public-key", str(pub),
        ],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert verify.returncode == 0 and "anchored by" in verify.stdout, verify.stdout

    # logs: one JSON object a line; outcomes carry the transaction and a masked number
    lines = [json.loads(line) for line in res.stderr.splitlines() if line.strip()]
    outcomes = [ln for ln in lines if ln.get("event") in ("crossing.accepted", "referral.opened")]
    assert {ln["event"] for ln in outcomes} == {"crossing.accepted", "referral.opened"}
    for ln in outcomes:
        assert ln["txn_id"] and ln["gate"] == "gate-01" and ln["doc"].startswith("******")
    state_lines = [ln for ln in lines if ln["msg"].startswith("state ")]
    assert any(ln.get("txn_id") for ln in state_lines)  # context: the current transaction
    for personal in ("A12345678", "A98765432", "MEI LING", "1990-05-17", "900517"):
        assert personal not in res.stderr
