"""Crossing and referral events say the gate's direction: the central record needs it to
know an entry from an exit (overstay at departure asks for the last entry)."""

from __future__ import annotations

import asyncio
import io
import json
from pathlib import Path

import pytest
import yaml

from autogate.daemon import Daemon
from autogate.wiring import build_devices, settings_from
from drivers.stdout_bus import StdoutBus
from gate.config import load_config
from sim.devices import DEFAULT_TRAVELLERS

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("direction", ["arrival", "departure"])
async def test_events_carry_the_gates_direction(tmp_path: Path, direction: str):
    cfg = yaml.safe_load((ROOT / "config" / "gate.example.yaml").read_text())
    cfg["storage"] = {"data_dir": str(tmp_path / "var")}
    cfg["gate"]["direction"] = direction
    cfg.pop("policy", None)
    (tmp_path / "gate.yaml").write_text(yaml.safe_dump(cfg))
    gate_cfg = load_config(tmp_path / "gate.yaml")
    devices, hall = build_devices(gate_cfg)
    out = io.StringIO()
    devices.bus = StdoutBus(out)
    daemon = Daemon(gate_cfg, devices, settings_from(gate_cfg))
    hall.emits["bus"] = daemon.emit
    stop = asyncio.Event()
    runner = asyncio.ensure_future(daemon.run(stop))
    try:
        await asyncio.wait_for(daemon.ready.wait(), 10)
        for traveller in DEFAULT_TRAVELLERS[:2]:
            await hall.walk(traveller)
        await asyncio.sleep(0.2)
    finally:
        stop.set()
        await runner
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    outcomes = [p for p in lines if p["topic"] in ("event/crossing", "event/referral")]
    assert outcomes, lines
    assert {p.get("direction") for p in outcomes} == {direction}
