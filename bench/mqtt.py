"""MQTT bus benchmark: outbox + publish throughput and publish-to-receive latency, QoS 1, loopback.

Starts its own Mosquitto (same config, TLS and ACL as the tests) on free loopback ports,
runs the real ``drivers.bus.MqttBus`` over TLS with a client certificate, and a subscriber
in the same process (so both ends read the same monotonic clock).

- throughput: N events published back to back (each ``publish`` awaited, as the daemon
  does), timed until the broker acknowledged the last one (outbox empty);
- latency: events paced a few ms apart, from just before ``publish`` to the subscriber's
  ``on_message`` (outbox write, fsync, drainer, TLS, broker, subscriber).

Usage: ``/work/main/.venv/bin/python bench/mqtt.py [--events 1000] [--latency 200]``
Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import paho.mqtt.client as mqtt  # noqa: E402
from paho.mqtt.enums import CallbackAPIVersion  # noqa: E402

from drivers.bus import build  # noqa: E402
from gate.actions import EventType, Publish  # noqa: E402
from gate.config import parse_config  # noqa: E402
from gate.events import build_payload  # noqa: E402
from sim.broker import PASSWORDS, Broker, make_certs  # noqa: E402
from tests.mqtt.conftest import gate_yaml  # noqa: E402


class Receiver:
    def __init__(self, broker: Broker) -> None:
        self.times: dict[str, float] = {}
        self.cond = threading.Condition()
        self.ready = threading.Event()
        self.c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id="bench-rx", protocol=mqtt.MQTTv5
        )
        self.c.username_pw_set("monitor", PASSWORDS["monitor"])
        self.c.on_connect = lambda c, *_: (
            c.subscribe("autogate/v1/+/+/event/#", qos=1),
            self.ready.set(),
        )
        self.c.on_message = self._msg
        self.c.connect("127.0.0.1", broker.port)
        self.c.loop_start()
        assert self.ready.wait(5)
        time.sleep(0.2)  # SUBACK

    def _msg(self, _c, _u, msg) -> None:  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        txn = msg.payload.split(b'"txn_id":"', 1)[1].split(b'"', 1)[0].decode()
        with self.cond:
            self.times.setdefault(txn, t)
            self.cond.notify_all()

    def wait(self, n: int, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: len(self.times) >= n, timeout)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def payload(txn: str) -> dict:
    action = Publish(EventType.CROSSING_ACCEPTED, txn_id=txn, data={"timings": {"doc": 0.4}})
    return build_payload(
        action, site="kul1", gate="g01", ts=dt.datetime.now(dt.UTC), event_id=str(uuid.uuid4())
    )


async def run(broker: Broker, certs, tmp: Path, sync: str, n: int, m: int) -> dict[str, float]:  # type: ignore[no-untyped-def]
    tmp.mkdir()
    cfg = parse_config(gate_yaml(broker, certs, tmp, outbox_sync=sync))
    bus = build(cfg.devices.bus, cfg)  # type: ignore[arg-type]
    rx = Receiver(broker)
    await bus.start(lambda _i: None)
    while not bus.connected:
        await asyncio.sleep(0.01)
    # throughput
    events = [payload(f"b{sync}{i}") for i in range(n)]
    t0 = time.perf_counter()
    for p in events:
        await bus.publish("event/crossing", p)
    t_disk = time.perf_counter() - t0
    assert await bus.flush(120)
    t_ack = time.perf_counter() - t0
    assert rx.wait(n, 60)
    t_rx = max(rx.times.values()) - t0
    # the same, 16 publishes in flight at once (group commit shares the fsync)
    events = [payload(f"c{sync}{i}") for i in range(n)]
    t0 = time.perf_counter()
    for k in range(0, n, 16):
        await asyncio.gather(*(bus.publish("event/crossing", p) for p in events[k : k + 16]))
    t_group = time.perf_counter() - t0
    assert await bus.flush(120)
    assert rx.wait(2 * n, 60)
    # latency, paced
    sent: dict[str, float] = {}
    for i in range(m):
        txn = f"l{sync}{i}"
        p = payload(txn)
        sent[txn] = time.perf_counter()
        await bus.publish("event/crossing", p)
        await asyncio.sleep(0.005)
    assert rx.wait(2 * n + m, 60)
    lat = sorted((rx.times[t] - sent[t]) * 1000 for t in sent)
    await bus.close()
    rx.close()
    return {
        "disk": n / t_disk,
        "group": n / t_group,
        "acked": n / t_ack,
        "received": n / t_rx,
        "p50": statistics.median(lat),
        "p99": lat[min(len(lat) - 1, int(0.99 * len(lat)))],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=1000)
    ap.add_argument("--latency", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        certs = make_certs(tmp / "certs", ["gate-kul1-g01", "monitor"])
        broker = Broker(tmp / "broker", certs)
        broker.start()
        try:
            rows = {
                s: asyncio.run(run(broker, certs, tmp / s, s, args.events, args.latency))
                for s in ("full", "normal")
            }
        finally:
            broker.stop()
    print(
        f"MQTT bus, QoS 1 over TLS (client cert + password), Mosquitto on loopback; "
        f"{args.events} events back to back (then 16 at a time), {args.latency} paced for "
        "latency; "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}\n"
    )
    print(
        "| outbox sync | on disk (events/s) | acked by broker (events/s) | received (events/s)"
        " | on disk, 16 concurrent (events/s) | latency p50 (ms) | latency p99 (ms) |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for s, r in rows.items():
        print(
            f"| {s} | {r['disk']:.0f} | {r['acked']:.0f} | {r['received']:.0f} | {r['group']:.0f} | {r['p50']:.1f} | {r['p99']:.1f} |"
        )


if __name__ == "__main__":
    main()
