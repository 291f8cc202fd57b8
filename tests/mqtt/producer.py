"""A gate-like publisher process for the kill tests: ``python -m tests.mqtt.producer CFG PROGRESS N``.

Publishes crossing events 0..N-1 through the real MQTT bus. Event ``i`` always has the
event_id ``uuid5(NS, i)``: after a SIGKILL the process resumes after the last index it
wrote to PROGRESS (a publish that returned is on disk), so an event produced twice is a
duplicate with the same event_id, as a restarted daemon reporting from its journal would be.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import sys
import uuid
from pathlib import Path

from drivers.bus import build
from gate.actions import EventType, Publish
from gate.config import load_config
from gate.events import build_payload

NS = uuid.UUID("6f1c7e38-4b9e-4d0a-9d5e-2a7c1f3b8e11")


def event(i: int, site: str, gate: str) -> dict:
    action = Publish(
        EventType.CROSSING_ACCEPTED, txn_id=f"t{i:05d}", data={"timings": {"doc": 0.1}}
    )
    return build_payload(
        action,
        site=site,
        gate=gate,
        ts=dt.datetime.now(dt.UTC),
        event_id=str(uuid.uuid5(NS, str(i))),
    )


async def main(cfg_path: str, progress_path: str, count: int) -> int:
    cfg = load_config(cfg_path)
    progress = Path(progress_path)
    done = progress.read_text().split() if progress.exists() else []
    start = int(done[-1]) + 1 if done else 0
    bus = build(cfg.devices.bus, cfg)  # type: ignore[arg-type]
    await bus.start(lambda _input: None)
    with progress.open("a", buffering=1) as log:
        for i in range(start, count):
            await bus.publish("event/crossing", event(i, cfg.gate.site, cfg.gate.id))
            log.write(f"{i}\n")
    ok = await bus.flush(timeout=60)
    await bus.close()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]))))
