"""Events per second into the central record, with 1 and 2 ingest workers.

    .venv/bin/python bench/ingest.py [--events 20000] [--workers 1 2] [--database postgresql]

A real Mosquitto (sim/broker.py) and a throw-away PostgreSQL cluster with its default,
durable settings (fsync on, synchronous_commit on; tests/ingest/pg.py), or SQLite. A
publisher process sends crossing events at QoS 1 as fast as the broker takes them, each
stamped with its send time; the workers (`autogate ingest worker`, one process each)
write them. Prints events per second (first publish to last row committed) and the
publish-to-commit latency p50/p95 (the event's ``ts`` to its row's ``received_at``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autogate.ingest.store import Store  # noqa: E402
from sim.broker import PASSWORDS, Broker, make_certs  # noqa: E402
from tests.ingest.helpers import KEY, crossing  # noqa: E402
from tests.ingest.pg import Cluster  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def publish(port: int, n: int, ready: mp.Event) -> None:  # type: ignore[valid-type]
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    template = [crossing(f"B{i:08d}") for i in range(n)]
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gate-kul1-g01")
    client.username_pw_set("gate-kul1-g01", PASSWORDS["gate-kul1-g01"])
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.set()  # type: ignore[attr-defined]
    infos = []
    for topic, payload in template:
        payload["ts"] = (
            dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        )
        infos.append(client.publish(topic, json.dumps(payload), qos=1))
    for info in infos:
        info.wait_for_publish(120)
    client.disconnect()
    client.loop_stop()


def run(n: int, workers: int, url: str, broker: Broker, tmp: Path) -> dict[str, float]:
    (tmp / "key").write_bytes(KEY)
    (tmp / "pw").write_text(PASSWORDS["ingest"])
    cfg = tmp / f"ingest-{workers}.yaml"
    prefix = f"bench{uuid.uuid4().hex[:6]}"
    cfg.write_text(
        f"database: '{url}'\ndocument_key_file: {tmp / 'key'}\n"
        f"broker: {{port: {broker.port}, username: 'ingest-{{index}}', password_file: {tmp / 'pw'},"
        f" client_id_prefix: {prefix}, share_group: {prefix}}}\n"
        "batch_max: 1000\n"
    )
    store = Store(url)
    store.migrate()
    procs = []
    for i in range(workers):
        log = tmp / f"w{workers}-{i}.log"
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "autogate.cli", "ingest", "worker"]
                + ["--config", str(cfg), "--index", str(i)],
                stderr=log.open("wb"),
                cwd=REPO,
            )
        )
        while b"subscribed to" not in log.read_bytes():
            time.sleep(0.05)
    ready = mp.Event()
    pub = mp.Process(target=publish, args=(broker.port, n, ready))
    pub.start()
    ready.wait(120)
    t0 = time.monotonic()
    published = 0.0
    while True:
        if not published and not pub.is_alive():
            published = time.monotonic() - t0  # every PUBACK received
        count = store.query("SELECT COUNT(*) AS n FROM crossings")[0]["n"]
        if count >= n:
            break
        time.sleep(0.05)
    elapsed = time.monotonic() - t0
    pub.join(60)
    for p in procs:
        p.terminate()
        p.wait(10)
    rows = store.query("SELECT ts, received_at FROM crossings")
    store.close()
    lat = sorted(
        (
            dt.datetime.fromisoformat(r["received_at"].replace("Z", "+00:00"))
            - dt.datetime.fromisoformat(r["ts"].replace("Z", "+00:00"))
        ).total_seconds()
        * 1000
        for r in rows
    )
    return {
        "events": n,
        "publish_s": published or elapsed,
        "seconds": elapsed,
        "per_s": n / elapsed,
        "p50_ms": statistics.median(lat),
        "p95_ms": lat[int(0.95 * (len(lat) - 1))],
    }


def lookups(n: int, url: str, tmp: Path) -> tuple[float, float]:
    """The departure gate's question (drivers.watchlist.HttpEntryRecord) to
    ``autogate ingest serve`` on the record just filled: p50 / p95 in ms."""
    import asyncio

    from drivers.watchlist import HttpEntryRecord
    from gate.results import MrzRecord
    from sim.broker import free_port

    port = free_port()
    cfg = tmp / "serve.yaml"
    cfg.write_text(f"database: '{url}'\ndocument_key_file: {tmp / 'key'}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "autogate.cli", "ingest", "serve", "--config", str(cfg)]
        + ["--port", str(port)],
        cwd=REPO,
    )

    async def ask() -> list[float]:
        adapter = HttpEntryRecord("record", f"http://127.0.0.1:{port}", timeout_s=5)
        times = []
        for i in range(n):
            mrz = MrzRecord(
                format="TD3", document_code="P", issuing_state="UTO", surname="X",
                given_names="Y", document_number=f"B{i:08d}", nationality="UTO",
                date_of_birth=None, sex="F", date_of_expiry=None, valid=True,
            )  # fmt: skip
            t0 = time.perf_counter()
            got = await adapter.check(mrz)
            times.append((time.perf_counter() - t0) * 1000)
            assert got.entry_checked and got.last_entry is not None, got
        await adapter.close()
        return sorted(times)

    try:
        import httpx

        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.HTTPError:
                assert time.monotonic() < deadline, "ingest serve did not start"
                time.sleep(0.1)
        times = asyncio.run(ask())
    finally:
        proc.terminate()
        proc.wait(10)
    return statistics.median(times), times[int(0.95 * (len(times) - 1))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--database", choices=["postgresql", "sqlite"], default="postgresql")
    ap.add_argument("--lookups", type=int, default=500, help="overstay lookups afterwards")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="autogate-bench-ingest-"))
    broker = Broker(tmp / "broker", make_certs(tmp / "certs", ["gate-kul1-g01"]))
    broker.start()
    cluster = Cluster(durable=True) if args.database == "postgresql" else None
    try:
        if cluster is not None:
            cluster.start()
        print(
            f"{'workers':>7} {'events':>7} {'seconds':>8} {'events/s':>9} {'p50 ms':>7} {'p95 ms':>7}"
        )
        for w in args.workers:
            url = (
                cluster.createdb(f"bench{w}")
                if cluster is not None
                else f"sqlite:///{tmp / f'record-{w}.sqlite'}"
            )
            r = run(args.events, w, url, broker, tmp)
            print(
                f"{w:>7} {r['events']:>7} {r['seconds']:>8.2f} {r['per_s']:>9.0f}"
                f" {r['p50_ms']:>7.0f} {r['p95_ms']:>7.0f} {r['publish_s']:>9.2f}",
                flush=True,
            )
        if args.lookups:
            p50, p95 = lookups(args.lookups, url, tmp)
            print(
                f"overstay lookup at the gate ({args.lookups}): p50 {p50:.1f} ms, p95 {p95:.1f} ms"
            )
    finally:
        if cluster is not None:
            cluster.stop()
        broker.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
