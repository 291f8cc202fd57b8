"""The thumb channel through the daemon (issue 19), on in-process devices: the verifier
runs off the core's loop, its verdict reaches the events, a reader that fails or hangs
costs one traveller, and DG3's finger images follow the portrait's deletion rules."""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
import yaml

from autogate.daemon import Daemon
from autogate.ops import Ops
from autogate.wiring import build_devices, settings_from
from gate.config import load_config
from sim.devices import SimHall, SimThumb, SimTraveller, sim_mrz
from tests.ops.helpers import make_config, write_aes_key

GOOD_FACE, BAD_FACE = 0.9, 0.2


def traveller(face: float = BAD_FACE, thumb: float | None = 60.0, **kw: Any) -> SimTraveller:
    return SimTraveller("t", sim_mrz(), face_score=face, thumb_score=thumb, **kw)


class Events:
    """The ops observer hook: every payload the daemon published."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []

    def on_publish(self, leaf: str, payload: dict[str, Any], ok: bool) -> None:
        self.seen.append(payload)

    def outcome(self) -> dict[str, Any]:
        (out,) = [p for p in self.seen if p["type"] in ("crossing.accepted", "referral.opened")]
        return out


def config(tmp_path: Path, mode: str, thumb_s: float = 10.0) -> Path:
    policy = yaml.safe_load((Path("config") / "policy.example.yaml").read_text())
    policy["categories"][0]["biometric"] = mode
    (tmp_path / "policy.yaml").write_text(yaml.safe_dump(policy))
    write_aes_key(tmp_path / "referral.key")
    path = make_config(
        tmp_path, privacy={"referral_key": str(tmp_path / "referral.key"), "retention_s": 0}
    )
    cfg = yaml.safe_load(path.read_text())
    cfg["policy"] = {"file": str(tmp_path / "policy.yaml")}
    cfg["devices"]["thumb"] = {"type": "sim", "threshold": 40}
    cfg["timeouts"]["thumb"] = thumb_s
    path.write_text(yaml.safe_dump(cfg))
    return path


async def idle(daemon: Daemon, hall: SimHall) -> None:
    while daemon.gate.state.value != "IDLE" or any(hall.door_open.values()):
        await asyncio.sleep(0.02)


async def play(
    tmp_path: Path,
    walkers: list[SimTraveller],
    mode: str = "face_then_thumb",
    thumb: Any = None,
    thumb_s: float = 10.0,
    decide_s: float = 1.5,  # a traveller referred in the mantrap is sent back 2 s later
) -> tuple[list[str], Events, Daemon]:
    cfg = load_config(config(tmp_path, mode, thumb_s))
    ops = Ops.build(cfg, env={})
    devices, hall = build_devices(cfg)
    if thumb is not None:
        devices.thumb = thumb(hall)
    daemon = Daemon(cfg, devices, settings_from(cfg), vault=ops.vault)
    events = Events()
    daemon.observers.append(events)
    hall.emits["bus"] = daemon.emit
    stop = asyncio.Event()
    runner = asyncio.ensure_future(daemon.run(stop))
    ends: list[str] = []
    try:
        await asyncio.wait_for(daemon.ready.wait(), 10)
        for t in walkers:
            ends.append(await hall.walk(t, decide_s=decide_s))
            # the next traveller comes once the gate is idle behind closed doors (after a
            # send-back the entry is still closing: the hall would see it open)
            await asyncio.wait_for(idle(daemon, hall), 20)
    finally:
        stop.set()
        await runner
    return ends, events, daemon


async def test_a_failed_face_and_a_matching_thumb_cross(tmp_path: Path) -> None:
    ends, events, daemon = await play(tmp_path, [traveller()])
    assert ends == ["crossed"]
    out = events.outcome()
    assert out["biometric"] == {"decided_by": "thumb", "mode": "face_then_thumb"}
    assert out["timings"]["thumb"] == 0.037  # the verifier's capture + match
    thumb = daemon.dev.thumb
    assert isinstance(thumb, SimThumb) and [len(r) for r in thumb.references] == [1]
    assert daemon.vault.held() == []  # DG3's images went with the portrait


async def test_a_wrong_thumb_is_referred_and_its_images_go_at_resolution(tmp_path: Path) -> None:
    ends, events, daemon = await play(tmp_path, [traveller(thumb=12.0)])
    assert ends == ["sent back"]
    out = events.outcome()
    assert out["reasons"] == ["face_no_match", "thumb_no_match"]
    assert out["face"]["score"] == BAD_FACE and out["face"]["threshold"] == 0.5
    assert out["thumb"]["score"] == 12.0 and out["thumb"]["threshold"] == 40.0
    assert daemon.vault.held() == []
    assert list((tmp_path / "var" / "referrals").iterdir()) == []


async def test_a_refused_ta_falls_back_to_the_face_rule(tmp_path: Path) -> None:
    ends, events, daemon = await play(tmp_path, [traveller(ta="refused")])
    assert ends == ["sent back"]
    out = events.outcome()
    assert out["reasons"] == ["face_no_match"] and "thumb" not in out
    assert out["biometric"]["fallback"] == "chip_ta_refused"
    assert isinstance(daemon.dev.thumb, SimThumb) and daemon.dev.thumb.references == []


class BrokenThumb(SimThumb):
    def verify(self, references: Any, timeout_s: float, cancel: Any = None) -> Any:
        raise OSError("USB device gone")


async def test_a_reader_that_raises_refers_one_traveller_and_the_lane_goes_on(
    tmp_path: Path,
) -> None:
    ends, events, daemon = await play(
        tmp_path, [traveller(), traveller(face=GOOD_FACE)], thumb=BrokenThumb
    )
    assert ends == ["sent back", "crossed"]
    referral = [p for p in events.seen if p["type"] == "referral.opened"][0]
    assert referral["reasons"] == ["face_no_match", "thumb_reader_fault"]
    assert not [p for p in events.seen if p["type"] == "alarm.raised"]


class HungThumb(SimThumb):
    """A reader that never answers on its own: only the cancel event frees it."""

    freed = threading.Event()

    def verify(self, references: Any, timeout_s: float, cancel: Any = None) -> Any:
        assert cancel is not None
        if cancel.wait(60):
            HungThumb.freed.set()
        raise TimeoutError("hung")


async def test_a_hung_reader_is_cut_off_by_the_core_and_released(tmp_path: Path) -> None:
    HungThumb.freed.clear()
    # the core gives up 0.5 + 2 s after asking; the officer comes 6 s after entry
    ends, events, _ = await play(
        tmp_path, [traveller()], thumb=HungThumb, thumb_s=0.5, decide_s=4.0
    )
    assert ends == ["sent back"]
    assert events.outcome()["reasons"] == ["face_no_match", "thumb_reader_fault"]
    assert await asyncio.to_thread(HungThumb.freed.wait, 10)  # the worker thread let go


def test_settings_without_a_thumb_section_never_open_the_channel(tmp_path: Path) -> None:
    path = config(tmp_path, "both")
    cfg = yaml.safe_load(path.read_text())
    del cfg["devices"]["thumb"]
    path.write_text(yaml.safe_dump(cfg))
    loaded = load_config(path)
    devices, _ = build_devices(loaded, SimHall())
    assert devices.thumb is None
    plan = settings_from(loaded).plan_biometrics("citizen", None)
    assert not plan.thumb


class ClosingThumb(SimThumb):
    """The real verifier's ``close`` is blocking (its matcher's worker process)."""

    closed = threading.Event()

    def close(self) -> None:
        ClosingThumb.closed.set()


async def test_the_verifier_is_closed_at_stop_without_an_error(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    ClosingThumb.closed.clear()
    with caplog.at_level(logging.ERROR, logger="autogate.daemon"):
        await play(tmp_path, [], thumb=ClosingThumb)
    assert ClosingThumb.closed.is_set()
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
