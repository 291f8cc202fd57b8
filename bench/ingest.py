"""Events per second into the central record, with 1 and 2 ingest workers.

    .venv/bin/python bench/ingest.py [--events 20000] [--workers 1 2] [--database postgresql]
        [--publishers 2] [--backlog] [--publisher raw|paho]

A real Mosquitto (sim/broker.py) and a throw-away PostgreSQL cluster with its default,
durable settings (fsync on, synchronous_commit on; sim/postgres.py), or SQLite.
``--publishers`` processes (one gate account each) send crossing events at QoS 1 as fast
as the broker takes them, serialised before the clock starts and stamped with their
send time: by default as a site's bridge would (``publish_raw``: packets encoded by
``mqtt5``, written 100 at a time, a few µs per event), with ``--publisher paho`` through
the gates' client (about 130 µs per event of the same cores). The workers (`autogate
ingest worker`, one process and one broker account each) write them. Prints events per second (first publish to last row committed) and
the publish-to-commit latency p50/p95 (the event's ``ts`` to its row's ``received_at``).
With ``--backlog`` everything is published first while the workers are away (their
sessions keep the queue), then the workers start: the drain rate is the ingest's own,
with no publisher competing for the two cores (a site back from a WAN cut); there the
workers' CPU includes their start (interpreter and imports, ~0.7 s each)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import multiprocessing as mp
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autogate.ingest.store import Store  # noqa: E402
from sim.broker import PASSWORDS, Broker, make_certs  # noqa: E402
from tests.ingest.helpers import KEY, crossing  # noqa: E402
from tests.ingest.pg import Cluster  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_s(pids: list[int]) -> float:
    """User + system CPU seconds of these processes and their children (from /proc)."""
    stats = {}
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                f = (d / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            stats[int(d.name)] = (int(f[1]), (int(f[11]) + int(f[12])) / TICKS)
    want, total = set(pids), 0.0
    for pid, (ppid, cpu) in stats.items():
        if pid in want or ppid in want:
            total += cpu
    return total


TS = b"2000-01-01T00:00:00.000Z"  # replaced by the send time (same length)


def publish(
    port: int,
    gate: str,
    first: int,
    n: int,
    ready: mp.Event,
    go: mp.Event,
    cpu: Any,  # type: ignore[valid-type]
) -> None:
    """One gate's publisher: payloads serialised before the clock starts, then QoS 1 as
    fast as the broker acknowledges, each stamped with its send time."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    ts0 = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    built = [crossing(f"B{i:08d}", gate=gate, ts=ts0) for i in range(first, first + n)]
    template = [(t, json.dumps(p).encode()) for t, p in built]
    assert all(TS in body for _, body in template)
    account = f"gate-kul1-{gate}"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=account)
    client.username_pw_set(account, f"pw-{gate}")
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    client.connect("127.0.0.1", port)
    client.loop_start()
    ready.set()  # type: ignore[attr-defined]
    go.wait(120)  # type: ignore[attr-defined]
    t = os.times()
    infos = []
    for topic, body in template:
        now = time.time()
        stamp = (
            time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
        )
        infos.append(client.publish(topic, body.replace(TS, stamp.encode()), qos=1))
    for info in infos:
        info.wait_for_publish(120)
    after = os.times()
    with cpu.get_lock():
        cpu.value += (after.user - t.user) + (after.system - t.system)
    client.disconnect()
    client.loop_stop()


WINDOW = 1000  # QoS 1 publishes awaiting their PUBACK (as paho's max_inflight above)
CHUNK = 100  # publishes per write


def publish_raw(
    port: int,
    gate: str,
    first: int,
    n: int,
    ready: mp.Event,
    go: mp.Event,
    cpu: Any,  # type: ignore[valid-type]
) -> None:
    """The same stream as ``publish`` at a fraction of its CPU: packets encoded by
    ``mqtt5`` and written ``CHUNK`` at a time on a plain socket, PUBACKs counted as they
    come, at most ``WINDOW`` unanswered. It stands for a site's bridge (Mosquitto, in C),
    which is what publishes into the central broker; a paho publisher spent about 130 µs
    of the two shared cores per event, more than the whole ingest."""
    import socket

    import mqtt5

    ts0 = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    built = [crossing(f"B{i:08d}", gate=gate, ts=ts0) for i in range(first, first + n)]
    template = [(t, json.dumps(p).encode()) for t, p in built]
    assert all(TS in body for _, body in template)
    account = f"gate-kul1-{gate}"
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    connect = mqtt5.ConnectPacket(account, username=account, password=f"pw-{gate}".encode())
    sock.sendall(connect.write())
    buf = bytearray()

    def packets(block: bool) -> list[Any]:
        """What the socket holds now (or, ``block``, once something comes), decoded."""
        try:
            data = sock.recv(1 << 16, 0 if block else socket.MSG_DONTWAIT)
        except BlockingIOError:
            return []
        if not data:
            raise RuntimeError(f"{account}: the broker closed the connection")
        buf.extend(data)
        out, at = [], 0
        while True:
            try:
                packet, used = mqtt5.read(memoryview(buf)[at:])
            except IndexError:
                break
            out.append(packet)
            at += used
        del buf[:at]
        return out

    while not any(isinstance(p, mqtt5.ConnAckPacket) for p in packets(True)):
        pass
    qos1 = mqtt5.QoS.AT_LEAST_ONCE
    ready.set()  # type: ignore[attr-defined]
    go.wait(120)  # type: ignore[attr-defined]
    t = os.times()
    sent = acked = 0
    while acked < n:
        if sent < n and sent - acked < WINDOW:
            k = min(CHUNK, n - sent, WINDOW - (sent - acked))
            now = time.time()
            stamp = (
                time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now))
                + f".{int(now % 1 * 1000):03d}Z"
            ).encode()
            sock.sendall(
                b"".join(
                    mqtt5.PublishPacket(
                        topic, body.replace(TS, stamp), qos=qos1, packet_id=(sent + j) % 65535 + 1
                    ).write()
                    for j, (topic, body) in enumerate(template[sent : sent + k])
                )
            )
            sent += k
        block = sent >= n or sent - acked >= WINDOW
        acked += sum(isinstance(p, mqtt5.PubAckPacket) for p in packets(block))
    after = os.times()
    with cpu.get_lock():
        cpu.value += (after.user - t.user) + (after.system - t.system)
    sock.sendall(mqtt5.DisconnectPacket().write())
    sock.close()


def clear_sessions(port: int, workers: int) -> None:
    """Start every worker account with an empty session: a session left by an earlier
    run keeps that run's shared subscription, and its worker would get every event of
    the old group on top of its share of the new one (seen: 40,000 deliveries for
    20,000 events)."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    for i in range(workers):
        c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"ingest-{i}", protocol=mqtt.MQTTv5)
        c.username_pw_set(f"ingest-{i}", PASSWORDS[f"ingest-{i}"])
        c.connect("127.0.0.1", port, clean_start=True)  # no expiry: gone at disconnect
        c.loop_start()
        deadline = time.monotonic() + 10
        while not c.is_connected() and time.monotonic() < deadline:
            time.sleep(0.01)
        c.disconnect()
        c.loop_stop()


def run(
    n: int,
    workers: int,
    url: str,
    broker: Broker,
    tmp: Path,
    publishers: int,
    backlog: bool,
    pg: int,
    publisher: str = "raw",
) -> dict[str, float]:
    """``backlog``: the events wait in the broker first (a site back from a WAN cut, a
    restarted ingest), then the workers start: the drain rate is the ingest's alone."""
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
    clear_sessions(broker.port, workers)

    def start_workers(tag: str) -> list[subprocess.Popen[bytes]]:
        procs = []
        for i in range(workers):
            log = tmp / f"w{workers}-{i}-{tag}.log"
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
        return procs

    def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
        for p in procs:
            p.terminate()
            p.wait(10)

    procs = start_workers("a")
    if backlog:  # their sessions (and the shared subscription) stay, queuing
        stop_workers(procs)
    pub_cpu = mp.Value("d", 0.0)
    ready = [mp.Event() for _ in range(publishers)]
    go = mp.Event()
    share = [n // publishers + (1 if k < n % publishers else 0) for k in range(publishers)]
    pubs = [
        mp.Process(
            target=publish_raw if publisher == "raw" else publish,
            args=(broker.port, f"g{k + 1:02d}", sum(share[:k]), share[k], ready[k], go, pub_cpu),
        )
        for k in range(publishers)
    ]
    for p in pubs:
        p.start()
    for r in ready:
        r.wait(120)
    assert broker.proc is not None
    parts = {"broker": [broker.proc.pid], "workers": [p.pid for p in procs], "database": [pg]}
    cpu0 = {k: cpu_s(v) for k, v in parts.items()}
    t0 = time.monotonic()
    go.set()
    published = 0.0
    if backlog:
        for p in pubs:
            p.join(300)
        published = time.monotonic() - t0
        # the drain starts at the spawn: the queued events flood in before the SUBACK
        cpu0 = {k: cpu_s(v) for k, v in parts.items() if k != "workers"}
        cpu0["workers"] = 0.0  # new processes
        t0 = time.monotonic()
        procs = start_workers("b")
        parts["workers"] = [p.pid for p in procs]
    while True:
        if not published and not any(p.is_alive() for p in pubs):
            published = time.monotonic() - t0  # every PUBACK received
        count = store.query("SELECT COUNT(*) AS n FROM crossings")[0]["n"]
        if count >= n:
            break
        time.sleep(0.02)
    elapsed = time.monotonic() - t0
    cpu = {k: cpu_s(v) - cpu0[k] for k, v in parts.items()}
    for p in pubs:
        p.join(60)
    cpu["publishers"] = pub_cpu.value
    stop_workers(procs)
    rows = store.query("SELECT ts, received_at FROM crossings")
    store.close()
    at = sorted(dt.datetime.fromisoformat(r["received_at"].replace("Z", "+00:00")) for r in rows)
    span = (at[-1] - at[0]).total_seconds()  # first to last row written
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
        "written_per_s": n / span if span > 0 else float("nan"),
        "p50_ms": statistics.median(lat),
        "p95_ms": lat[int(0.95 * (len(lat) - 1))],
        **{f"cpu_us_{k}": v / n * 1e6 for k, v in cpu.items()},
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
    ap.add_argument("--publishers", type=int, default=2, help="publisher processes (gates)")
    ap.add_argument(
        "--publisher",
        choices=["raw", "paho"],
        default="raw",
        help="raw: mqtt5 packets on a socket, like a bridge (default); paho: the gate's client",
    )
    ap.add_argument(
        "--backlog",
        action="store_true",
        help="publish everything first, then time the workers draining the broker's queue",
    )
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="autogate-bench-ingest-"))
    gates = tuple(f"g{k + 1:02d}" for k in range(args.publishers))
    broker = Broker(tmp / "broker", make_certs(tmp / "certs", []), gates=gates)
    broker.start()
    cluster = Cluster(durable=True) if args.database == "postgresql" else None
    try:
        if cluster is not None:
            cluster.start()
        mode = "backlog drain" if args.backlog else "live"
        print(
            f"{args.publishers} {args.publisher} publisher(s), {mode}, {args.database}",
            flush=True,
        )
        print(
            f"{'workers':>7} {'events':>7} {'seconds':>8} {'events/s':>9} {'p50 ms':>7}"
            f" {'p95 ms':>7} {'published s':>11} {'written/s':>9}"
        )
        for w in args.workers:
            url = (
                cluster.createdb(f"bench{w}")
                if cluster is not None
                else f"sqlite:///{tmp / f'record-{w}.sqlite'}"
            )
            pg = cluster.pid() if cluster is not None else 0
            r = run(
                args.events, w, url, broker, tmp, args.publishers, args.backlog, pg, args.publisher
            )
            print(
                f"{w:>7} {r['events']:>7} {r['seconds']:>8.2f} {r['per_s']:>9.0f}"
                f" {r['p50_ms']:>7.0f} {r['p95_ms']:>7.0f} {r['publish_s']:>11.2f}"
                f" {r['written_per_s']:>9.0f}",
                flush=True,
            )
            print(
                "        CPU per event (us): "
                + ", ".join(f"{k[7:]} {v:.0f}" for k, v in r.items() if k.startswith("cpu_us_"))
                + f"; total {sum(v for k, v in r.items() if k.startswith('cpu_us_')):.0f}",
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
