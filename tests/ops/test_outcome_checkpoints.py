"""Issue 17 item 7: the unsigned tail of the gate's journal is at most one transaction.

The gate runs with signed checkpoints on their usual 300 s timer; one traveller crosses.
An attacker on the box then removes that crossing from the journal (cuts the tail, which
keeps the hash chain intact). With a checkpoint at every outcome the cut is detected.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

from autogate.audit import cmd_verify
from autogate.daemon import Daemon
from autogate.ops import Ops
from autogate.wiring import build_devices, settings_from
from gate.config import load_config
from gate.journal import iter_records
from sim.devices import DEFAULT_TRAVELLERS
from tests.ops.helpers import make_config, write_public_key, write_signing_key


def _verify(journal: Path, cps: Path, pub: Path) -> int:
    import argparse

    return cmd_verify(
        argparse.Namespace(file=str(journal), checkpoints=str(cps), public_key=str(pub))
    )


async def test_a_crossing_cut_from_the_journal_is_detected(tmp_path: Path) -> None:
    key = write_signing_key(tmp_path / "signing.pem")
    pub = write_public_key(tmp_path / "signing.pub", key)
    cfg = load_config(
        make_config(
            tmp_path,
            audit={
                "signing_key": str(tmp_path / "signing.pem"),
                "checkpoints": str(tmp_path / "var" / "checkpoints.jsonl"),
                "checkpoint_interval_s": 300,
            },
        )
    )
    ops = Ops.build(cfg, env={})
    devices, hall = build_devices(cfg)
    daemon = Daemon(cfg, devices, settings_from(cfg), vault=ops.vault)
    ops.attach(daemon)
    hall.emits["bus"] = daemon.emit
    stop = asyncio.Event()
    runner = asyncio.ensure_future(daemon.run(stop))
    await ops.start(daemon, stop)
    snap = tmp_path / "snapshot"
    snap.mkdir()
    try:
        await asyncio.wait_for(daemon.ready.wait(), 10)
        await asyncio.sleep(0.3)  # the timer's first checkpoint, at ready
        assert await hall.walk(DEFAULT_TRAVELLERS[0]) == "crossed"
        await asyncio.sleep(0.3)
        # the attacker's view of the running gate's disk
        shutil.copy(cfg.storage.journal, snap / "journal.jsonl")
        shutil.copy(cfg.ops.audit.checkpoints, snap / "checkpoints.jsonl")
    finally:
        stop.set()
        await runner
        await ops.stop()
    journal, cps = snap / "journal.jsonl", snap / "checkpoints.jsonl"
    assert _verify(journal, cps, pub) == 0  # intact: anchored
    lines = journal.read_text().splitlines(keepends=True)
    records = list(iter_records(journal))
    start = next(n for n, r in enumerate(records) if r["kind"] == "txn.start")
    assert any(r["data"].get("type") == "crossing.accepted" for r in records[start:])
    journal.write_text("".join(lines[:start]))  # the crossing never happened
    assert _verify(journal, cps, pub) == 1
