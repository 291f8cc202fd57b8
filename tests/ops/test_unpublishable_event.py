"""An event the daemon cannot build as the core gave it (a bug: a value of the wrong
type, a field out of its schema) still goes out, without what would not validate: it
used to be logged and dropped, so an officer never saw that alarm or referral and the
central record never got that crossing."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest

from autogate.daemon import Daemon
from autogate.wiring import build_devices, settings_from
from gate.actions import Publish
from gate.config import load_config
from gate.events import EventType, validate
from gate.reasons import ReasonCode
from tests.ops.helpers import make_config


@pytest.mark.parametrize(
    ("etype", "data"),
    [
        (EventType.CROSSING_ACCEPTED, {"mrz": "P<UTOERIKSSON<<ANNA"}),  # not an MrzRecord
        (EventType.ALARM_RAISED, {"device": "b" * 40}),  # longer than the schema's 32
    ],
)
def test_an_event_that_does_not_validate_goes_out_without_the_bad_part(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, etype: EventType, data: dict[str, Any]
) -> None:
    cfg = load_config(make_config(tmp_path))
    devices, _ = build_devices(cfg)
    daemon = Daemon(cfg, devices, settings_from(cfg))
    sent: list[tuple[str, dict[str, Any]]] = []

    async def publish(leaf: str, payload: dict[str, Any], retain: bool = False) -> None:
        sent.append((leaf, payload))

    daemon._publish = publish  # type: ignore[method-assign]
    spawned: list[Any] = []
    daemon._spawn = lambda coro: spawned.append(coro)  # type: ignore[method-assign, assignment, return-value]
    try:
        with caplog.at_level(logging.ERROR, logger="autogate"):
            reason = ReasonCode.GATE_DEVICE_FAULT
            daemon._send(Publish(etype, txn_id="boot-000001", reasons=(reason,), data=data))
        for coro in spawned:
            asyncio.run(coro)
    finally:
        daemon.journal.close()
    assert len(sent) == 1, "the event must still be published"
    leaf, payload = sent[0]
    validate(payload)
    assert payload["type"] == etype.value and payload["reasons"] == [reason.value]
    assert payload["txn_id"] == "boot-000001"
    assert "not publishable" in payload["detail"]
    assert any("not publishable as built" in r.getMessage() for r in caplog.records)


def test_a_payload_the_bus_refuses_by_its_schema_is_no_bus_fault(tmp_path: Path) -> None:
    # a bus fault takes the lane out of service until the bus says it is back, and the
    # bus, which is fine, never would: a payload it refuses is logged, not a fault
    from gate import inputs as i
    from gate.events import EventError

    cfg = load_config(make_config(tmp_path))
    devices, _ = build_devices(cfg)
    daemon = Daemon(cfg, devices, settings_from(cfg))
    emitted: list[Any] = []
    daemon.emit = emitted.append  # type: ignore[method-assign]

    async def refuse(leaf: str, payload: dict[str, Any], retain: bool = False) -> None:
        raise EventError("alarm/1: detail: fails maxLength 500")

    daemon.dev.bus.publish = refuse  # type: ignore[method-assign]
    try:
        asyncio.run(daemon._publish("event/alarm", {"schema": "alarm/1"}))
    finally:
        daemon.journal.close()
    assert not [e for e in emitted if isinstance(e, i.DeviceFault)]


def test_only_the_field_that_does_not_validate_is_dropped(tmp_path: Path) -> None:
    # a NaN timing used to cost the crossing its document (the central record's row)
    from tests.mqtt.test_events import MRZ

    cfg = load_config(make_config(tmp_path))
    devices, _ = build_devices(cfg)
    daemon = Daemon(cfg, devices, settings_from(cfg))
    sent: list[dict[str, Any]] = []

    async def publish(leaf: str, payload: dict[str, Any], retain: bool = False) -> None:
        sent.append(payload)

    daemon._publish = publish  # type: ignore[method-assign]
    spawned: list[Any] = []
    daemon._spawn = spawned.append  # type: ignore[method-assign, assignment]
    data = {"mrz": MRZ, "timings": {"face": float("nan"), "total": 2.5}}
    try:
        daemon._send(Publish(EventType.CROSSING_ACCEPTED, txn_id="boot-000002", data=data))
        for coro in spawned:
            asyncio.run(coro)
    finally:
        daemon.journal.close()
    (payload,) = sent
    validate(payload)
    assert payload["document"]["number_masked"].endswith("2C3")
    assert "timings" not in payload and "timings.face" in payload["detail"]
