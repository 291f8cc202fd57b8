"""``autogate sim fleet --sites N --gates M``: sites bridged to a centre, one WAN link cut.

Each site is a Mosquitto of its own (passwords, ACL, persistence) with M light gates (the
real daemon, outbox and MQTT bus over simulated devices, as in ``sim/fleet.py``),
bridged to a central Mosquitto through a ``LinkProxy`` (sim/bridge.py). At the centre a
monitor counts every event by ``event_id`` (persistent session, QoS 1) and, when asked,
ingest workers write them into the central record. Mid-run the first site's link is cut
for ``link_cut_s`` and restored; once its bridge is back, an officer at the centre sends
that site's first gate ``out_of_service`` then ``in_service`` (signed with the centre's
key, which the gates trust) and waits for both answers on ``cmd-ack``. The report: events
sent by the gates, received at the centre (once each), duplicates, lost, and the
gate-to-centre latency (the event's ``ts`` to its first arrival).

The centre listens on TLS only: the bridges, the monitor, the console and each ingest
worker present a client certificate of their own, whose CN is their account
(``central_broker``); a plaintext connection finds no listener.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import random
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sim.bridge import BridgeTLS, LinkProxy, bridge_account, bridge_section, central_acl
from sim.broker import INGEST_ACCOUNTS, Broker, Certs, acl_text, make_certs
from sim.fleet import _gate_config, _traveller_stream, image_keypair

EVENT_TOPIC = "autogate/v1/+/+/event/#"
ACK_TOPIC = "autogate/v1/+/+/cmd-ack"
CMD_TOPIC = "autogate/v1/+/+/cmd/#"  # to see that no command comes back up the bridge
RECORDED = ("event/crossing", "event/referral", "event/alarm")
# the centre's own clients, each with a client certificate of its own whose CN is its
# account (the centre takes the account from it): one per ingest worker too
CENTRAL_CLIENTS = ("monitor", "console", *INGEST_ACCOUNTS)


def _ms(pair: tuple[float, float]) -> str:
    return f"{pair[0]:.0f} / {pair[1]:.0f} ms"


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, int(q * (len(s) - 1) + 0.5))]


@dataclass
class Centre:
    """What the centre saw: every event message by ``event_id``, and command answers."""

    arrivals: dict[str, list[float]] = field(default_factory=dict)  # event_id -> wall times
    acks: dict[str, dict[str, Any]] = field(default_factory=dict)  # command_id -> ack
    commands: dict[str, int] = field(default_factory=dict)  # command_id -> copies seen
    messages: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    changed: threading.Condition = field(init=False)

    def __post_init__(self) -> None:
        self.changed = threading.Condition(self.lock)

    def on_message(self, topic: str, payload: bytes) -> None:
        now = time.time()
        try:
            msg = json.loads(payload)
        except ValueError:
            return
        with self.changed:
            if topic.endswith("/cmd-ack"):
                self.acks[str(msg.get("command_id"))] = msg
            elif "/cmd/" in topic:
                cid = str(msg.get("command_id"))
                self.commands[cid] = self.commands.get(cid, 0) + 1
            elif topic.endswith(RECORDED):
                self.messages += 1
                self.arrivals.setdefault(str(msg.get("event_id")), []).append(now)
            self.changed.notify_all()

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(predicate, timeout)


@dataclass
class Sent:
    """Events the gates handed to their bus (the observer hook of the daemon)."""

    events: dict[str, tuple[str, float]] = field(default_factory=dict)  # id -> (site, ts)

    def observer(self, site: str) -> Any:
        sent = self

        class _Observer:
            def on_publish(self, leaf: str, payload: dict[str, Any], ok: bool) -> None:
                if ok and leaf in RECORDED:
                    ts = dt.datetime.fromisoformat(payload["ts"].replace("Z", "+00:00"))
                    sent.events[payload["event_id"]] = (site, ts.timestamp())

        return _Observer()


@dataclass(frozen=True)
class NationalReport:
    sites: int
    gates: int
    seconds: float
    travellers: tuple[int, int]
    link_cut_s: float
    bridge_back_s: float  # restore to the cut site's bridge connected again
    sent: int
    received: int
    duplicates: int
    lost: int
    latency_ms: tuple[float, float]  # gate to centre, every event: p50, p95
    latency_uncut_ms: tuple[float, float]  # events of the sites whose link stayed up
    held_max_s: float  # the longest an event of the cut site waited
    commands: list[tuple[str, bool, float]]  # (command, accepted, round trip ms)
    command_copies: int  # the most copies of one command seen at the centre (1: no echo)
    ingest: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.lost == 0 and len(self.commands) == 2 and all(a for _, a, _ in self.commands)

    def table(self) -> str:
        rows = [
            ("sites x gates", f"{self.sites} x {self.gates}"),
            ("run", f"{self.seconds:.0f} s"),
            ("travellers accepted / referred", f"{self.travellers[0]} / {self.travellers[1]}"),
            (
                "link of site 1 cut",
                f"{self.link_cut_s:.0f} s (bridge back {self.bridge_back_s:.1f} s after)",
            ),
            ("events sent by the gates", f"{self.sent}"),
            ("received at the centre (once each)", f"{self.received}"),
            ("duplicates (de-duplicated by event_id)", f"{self.duplicates}"),
            ("lost", f"{self.lost}"),
            ("gate to centre p50 / p95, all events", "{:.0f} / {:.0f} ms".format(*self.latency_ms)),
            (
                "gate to centre p50 / p95, uncut sites",
                "{:.0f} / {:.0f} ms".format(*self.latency_uncut_ms),
            ),
            ("longest wait of a cut-site event", f"{self.held_max_s:.1f} s"),
        ]
        for cmd, accepted, ms in self.commands:
            answer = "accepted" if accepted else "refused"
            rows.append((f"centre -> site 1 gate: {cmd}", f"{answer}, answer in {ms:.0f} ms"))
        rows.append(("copies of a command at the centre (1: no echo)", f"{self.command_copies}"))
        if self.ingest:
            i = self.ingest
            rows.append(("rows in the central record", f"{i['rows']} ({i['database']})"))
            rows.append(("gate to database p50 / p95, all events", _ms(i["latency_ms"])))
            rows.append(("gate to database p50 / p95, uncut sites", _ms(i["latency_uncut_ms"])))
        return "\n".join(
            ["| measure | value |", "| --- | --- |"] + [f"| {a} | {b} |" for a, b in rows]
        )


def central_broker(run: Path, sites: list[str], certs: Certs, bridge_pw: dict[str, str]) -> Broker:
    """The centre's Mosquitto: a TLS listener only, no plaintext listener at all; every
    client (the bridges, the monitor, the console, each ingest worker) presents a
    certificate of its own whose CN is its account (the passwords are not asked)."""
    return Broker(
        run / "centre", certs, gates=(), site="centre", acl=central_acl(sites),
        users=bridge_pw, plain=False,
    )  # fmt: skip


def _client(name: str, port: int, password: str, on_message: Callable[[str, bytes], None] | None,
            subscribe: list[str], tls: tuple[Path, Path, Path] | None = None) -> Any:  # fmt: skip
    """A paho client with a persistent session (the broker keeps its QoS 1 queue);
    ``tls``: (CA, client certificate, key), as every client of the centre must."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=name, clean_session=False)
    c.username_pw_set(name, password)
    if tls is not None:
        ca, cert, key = tls
        c.tls_set(ca_certs=str(ca), certfile=str(cert), keyfile=str(key))
    c.max_inflight_messages_set(1000)
    subscribed = threading.Event()

    def connected(client: Any, _u: Any, _f: Any, rc: Any, _p: Any) -> None:
        if not rc.is_failure and subscribe:
            client.subscribe([(t, 1) for t in subscribe])
        elif not subscribe:
            subscribed.set()

    c.on_connect = connected
    c.on_subscribe = lambda *_: subscribed.set()
    if on_message is not None:
        c.on_message = lambda _c, _u, m: on_message(m.topic, bytes(m.payload))
    c.connect("127.0.0.1", port)
    c.loop_start()
    if not subscribed.wait(30):
        raise RuntimeError(f"{name} could not subscribe on port {port}")
    return c


class BridgeState:
    """The site broker's own notice of its bridge: ``$SYS/broker/connection/<name>/state``."""

    def __init__(self) -> None:
        self.up: dict[str, bool] = {}
        self.cond = threading.Condition()

    def on_message(self, topic: str, payload: bytes) -> None:
        with self.cond:
            self.up[topic.split("/")[3]] = payload.strip() == b"1"
            self.cond.notify_all()

    def wait(self, name: str, up: bool, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: self.up.get(name) is up, timeout)


async def _command(
    console: Any, key: Any, centre: Centre, site: str, gate: str, command: str
) -> tuple[str, bool, float]:
    from gate.commands import sign_command

    body = sign_command(
        key, site=site, gate=gate, command=command, officer="centre-officer",
        key_id="centre", ts=dt.datetime.now(dt.UTC),
    )  # fmt: skip
    t0 = time.monotonic()
    console.publish(f"autogate/v1/{site}/{gate}/cmd/{command}", json.dumps(body), qos=1)
    cid = body["command_id"]
    got = await asyncio.to_thread(centre.wait, lambda: cid in centre.acks, 60)
    if not got:
        raise RuntimeError(f"no answer from {site}/{gate} to {command} within 60 s")
    return command, bool(centre.acks[cid].get("accepted")), (time.monotonic() - t0) * 1000


async def run_national(
    n_sites: int,
    n_gates: int,
    seconds: float,
    run: Path,
    link_cut_s: float = 30.0,
    ingest: str | None = None,
    log: Callable[[str], None] = lambda s: print(f"fleet: {s}", file=sys.stderr),
) -> NationalReport:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from autogate.daemon import Daemon
    from autogate.wiring import build_devices, settings_from

    sites = [f"s{i:02d}" for i in range(1, n_sites + 1)]
    gates = tuple(f"g{i:02d}" for i in range(1, n_gates + 1))
    bridges = [bridge_account(s) for s in sites]
    certs = make_certs(run / "certs", bridges + list(CENTRAL_CLIENTS))
    bridge_pw = {b: f"pw-{b}" for b in bridges}
    centre_broker = central_broker(run, sites, certs, bridge_pw)
    centre_broker.start()

    def client_tls(name: str) -> tuple[Path, Path, Path]:
        return (certs.ca, *certs.clients[name])

    proxies: list[LinkProxy] = []
    brokers: list[Broker] = []
    centre = Centre()
    state = BridgeState()
    clients: list[Any] = []
    ingest_run = None
    stop = asyncio.Event()  # the gates
    walking = asyncio.Event()  # set: no new traveller steps up
    tasks: list[asyncio.Task[Any]] = []
    streams: list[asyncio.Task[Any]] = []
    tally = {"crossed": 0, "sent back": 0}
    sent = Sent()
    key = Ed25519PrivateKey.generate()
    pub = base64.b64encode(key.public_key().public_bytes_raw()).decode()
    try:
        for s, b in zip(sites, bridges, strict=True):
            proxy = LinkProxy(centre_broker.tls_port)
            proxy.start()
            proxies.append(proxy)
            tls = BridgeTLS(certs.ca, *certs.clients[b])
            broker = Broker(
                run / s, certs, gates=gates, site=s,
                acl=acl_text(s, gates, bridge_state=b),
                extra_conf=bridge_section(s, proxy.port, tls, bridge_pw[b]),
            )  # fmt: skip
            broker.start()
            brokers.append(broker)
        clients.append(
            _client(
                "monitor",
                centre_broker.tls_port,
                "pw-monitor",
                centre.on_message,
                [EVENT_TOPIC, ACK_TOPIC, CMD_TOPIC],
                client_tls("monitor"),
            )  # fmt: skip
        )
        console = _client(
            "console", centre_broker.tls_port, "pw-console", None, [], client_tls("console")
        )
        clients.append(console)
        for broker, b in zip(brokers, bridges, strict=True):
            clients.append(
                _client(
                    "monitor",
                    broker.port,
                    "pw-monitor",
                    state.on_message,
                    [f"$SYS/broker/connection/{b}/state"],
                )  # fmt: skip
            )
        for b in bridges:
            if not await asyncio.to_thread(state.wait, b, True, 60):
                raise RuntimeError(f"bridge {b} did not connect to the centre")
        if ingest is not None:
            from sim.national_ingest import IngestRun

            ingest_run = IngestRun(
                run / "ingest", ingest, centre_broker.tls_port,
                (certs.ca, certs.ca.parent / "ingest-{index}.pem",
                 certs.ca.parent / "ingest-{index}.key"),
            )  # fmt: skip
            await asyncio.to_thread(ingest_run.start)
        daemons: list[tuple[str, Any, Any]] = []
        keys = [{"id": "centre", "public_key": pub}]
        for s, broker in zip(sites, brokers, strict=True):
            # the site console's key for referral photos (the sealed photos go up the
            # bridge like every event; the centre keeps none of them)
            _, image_key = image_keypair(run / s / "console")
            for gid in gates:
                cfg = _gate_config(run / s, gid, broker, keys, image_key=image_key)
                devices, hall = build_devices(cfg)
                hall.door_travel_s = 0.05
                daemon = Daemon(cfg, devices, settings_from(cfg))
                daemon.observers.append(sent.observer(s))
                hall.emits["bus"] = daemon.emit
                daemons.append((s, daemon, hall))
                tasks.append(asyncio.ensure_future(daemon.run(stop)))
        t_ready = time.monotonic()
        await asyncio.gather(*(asyncio.wait_for(d.ready.wait(), 120) for _, d, _ in daemons))
        log(f"{len(daemons)} gates on {n_sites} sites ready in {time.monotonic() - t_ready:.1f} s")
        rng = random.Random(1)
        held = asyncio.Event()  # the command target's traveller stream, paused for the officer
        held.set()
        t0 = time.monotonic()
        for i, (_, _, hall) in enumerate(daemons):
            gate_open = held if i == 0 else None
            streams.append(
                asyncio.ensure_future(
                    _traveller_stream(hall, walking, random.Random(rng.random()), tally, gate_open)
                )
            )
        cut_at = max(2.0, min(seconds / 4, 30.0))
        await asyncio.sleep(cut_at)
        proxies[0].cut()
        t_cut = time.time()
        log(f"link of {sites[0]} cut at {cut_at:.0f} s for {link_cut_s:.0f} s")
        await asyncio.sleep(link_cut_s)
        t_restore = time.monotonic()
        proxies[0].restore()
        # the connections held across the cut are reset now: the bridge reports the link
        # down (at once, if its keepalive had not already) and then up again
        await asyncio.to_thread(state.wait, bridges[0], False, 15)
        if not await asyncio.to_thread(state.wait, bridges[0], True, 120):
            raise RuntimeError(f"bridge {bridges[0]} did not come back")
        back_s = time.monotonic() - t_restore
        log(f"link of {sites[0]} restored; bridge up {back_s:.1f} s later")
        # an officer at the centre takes the site's first gate out of service and back
        held.clear()
        target = daemons[0][2]
        while target.current is not None:  # the traveller in the gate finishes first
            await asyncio.sleep(0.05)
        commands = []
        for cmd in ("out_of_service", "in_service"):
            commands.append(await _command(console, key, centre, sites[0], gates[0], cmd))
        held.set()
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - t0)))
        walking.set()
        elapsed = time.monotonic() - t0
        log(f"ran {elapsed:.0f} s; the travellers in the gates finish")
        await asyncio.gather(*streams)  # each walk is bounded by its door waits
        # every event the gates queued must reach the centre: wait on that, not a clock;
        # the gates keep running meanwhile (their outboxes drain), then stop
        await _all_arrived(centre, sent, 180, log)
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await _all_arrived(centre, sent, 60, log)  # any event of the gates' shutdown
        if ingest_run is not None:
            await asyncio.to_thread(ingest_run.wait_rows, set(sent.events), 180)
    finally:
        stop.set()
        walking.set()
        for t in streams:
            t.cancel()
        for c in clients:
            c.disconnect()
            c.loop_stop()
        if ingest_run is not None:
            ingest_stats = await asyncio.to_thread(ingest_run.stop, sent.events, set(sites[1:]))
        for p in proxies:
            p.stop()
        for broker in brokers:
            broker.stop()
        centre_broker.stop()
    return _report(
        n_sites, n_gates, elapsed, tally, link_cut_s, back_s, sent, centre, sites[0],
        (t_cut, t_cut + link_cut_s), commands,
        ingest_stats if ingest_run is not None else None,
    )  # fmt: skip


async def _all_arrived(
    centre: Centre, sent: Sent, timeout: float, log: Callable[[str], None]
) -> None:
    ids = set(sent.events)
    if not await asyncio.to_thread(centre.wait, lambda: ids <= centre.arrivals.keys(), timeout):
        log(f"{len(ids - centre.arrivals.keys())} event(s) still missing after {timeout:.0f} s")


def _report(
    n_sites: int,
    n_gates: int,
    elapsed: float,
    tally: dict[str, int],
    cut_s: float,
    back_s: float,
    sent: Sent,
    centre: Centre,
    cut_site: str,
    window: tuple[float, float],
    commands: list[tuple[str, bool, float]],
    ingest: dict[str, Any] | None,
) -> NationalReport:
    lat_all: list[float] = []
    lat_uncut: list[float] = []
    held = 0.0
    received = 0
    for eid, (site, ts) in sent.events.items():
        times = centre.arrivals.get(eid)
        if not times:
            continue
        received += 1
        ms = (min(times) - ts) * 1000
        lat_all.append(ms)
        if site == cut_site:
            held = max(held, ms / 1000)
        else:
            lat_uncut.append(ms)
    dupes = centre.messages - len(centre.arrivals)
    return NationalReport(
        sites=n_sites,
        gates=n_gates,
        seconds=elapsed,
        travellers=(tally["crossed"], tally["sent back"]),
        link_cut_s=cut_s,
        bridge_back_s=back_s,
        sent=len(sent.events),
        received=received,
        duplicates=dupes,
        lost=len(sent.events) - received,
        latency_ms=(_pct(lat_all, 0.5), _pct(lat_all, 0.95)),
        latency_uncut_ms=(_pct(lat_uncut, 0.5), _pct(lat_uncut, 0.95)),
        held_max_s=held,
        commands=commands,
        command_copies=max(centre.commands.values(), default=0),
        ingest=ingest,
    )
