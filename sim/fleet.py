"""``autogate sim fleet --gates N``: one site's load on one broker and one console.

N light gates run in this process: each is the real daemon (core, journal, outbox, the
real MQTT bus with its own broker login) over in-process simulated devices, with a
scripted stream of travellers (most accepted, some referred and sent back). A real
Mosquitto and the officers' console (its own process) serve them all. The report is
what a site planner needs: crossings handled, events delivered, and the CPU and memory
the broker and the console used for it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import random
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from gate.resources import shipped
from sim.broker import SITE, Broker, free_port, make_certs
from sim.devices import SimTraveller, sim_mrz

TICKS = os.sysconf("SC_CLK_TCK")
# the simulated nation's key of the document-number hash: every gate's and the ingest's
DOCUMENT_KEY = b"national-document-key-for-the-fleet"


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


@dataclass(frozen=True)
class FleetReport:
    gates: int
    seconds: float
    crossings: int
    referrals: int
    broker_cpu_pct: float
    broker_rss_mb: float
    console_cpu_pct: float
    console_rss_mb: float
    gates_cpu_pct: float

    def table(self) -> str:
        rows = [
            ("gates", f"{self.gates}"),
            ("run", f"{self.seconds:.0f} s"),
            ("travellers accepted / referred", f"{self.crossings} / {self.referrals}"),
            ("broker CPU (one core = 100 %)", f"{self.broker_cpu_pct:.1f} %"),
            ("broker memory (RSS)", f"{self.broker_rss_mb:.0f} MB"),
            ("console CPU", f"{self.console_cpu_pct:.1f} %"),
            ("console memory (RSS)", f"{self.console_rss_mb:.0f} MB"),
            (f"the {self.gates} light gates, one process", f"{self.gates_cpu_pct:.1f} %"),
        ]
        return "\n".join(
            ["| measure | value |", "| --- | --- |"] + [f"| {a} | {b} |" for a, b in rows]
        )


def _gate_config(
    run: Path,
    gid: str,
    broker: Broker,
    command_keys: list[Any] | None = None,
    document_key: bytes = DOCUMENT_KEY,
    image_key: str | None = None,
) -> Any:
    """A light gate of ``broker.site`` (``command_keys``: who may sign its officer
    commands; ``document_key``: the national key of the document-number hash;
    ``image_key``: the console's public key that referral photos are sealed to)."""
    from gate.config import GateConfig

    site = broker.site
    d = run / gid
    d.mkdir(parents=True, exist_ok=True)
    (d / "password").write_text(broker.passwords[f"gate-{site}-{gid}"])
    (d / "document.key").write_bytes(document_key)
    return GateConfig.model_validate(
        {
            "gate": {"site": site, "id": gid},
            "timeouts": {"idle": 10},
            "devices": {
                "bus": {
                    "type": "mqtt",
                    "host": "127.0.0.1",
                    "port": broker.port,
                    "username": f"gate-{site}-{gid}",
                    "password_file": str(d / "password"),
                    "outbox": str(d / "outbox.sqlite"),
                    "outbox_sync": "normal",
                    "command_keys": command_keys or [],
                    "document_key_file": str(d / "document.key"),
                    "image_key": image_key,
                }
            },
            "policy": {"file": str(shipped("config/policy.example.yaml"))},
            "storage": {"data_dir": str(d), "journal": str(d / "journal.jsonl")},
        }
    )


def image_keypair(directory: Path) -> tuple[Path, str]:
    """A console's key for referral photos: its private key file and, for the gates'
    ``image_key``, the public key in base64."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

    from gate.referral_image import public_key_b64

    key = X25519PrivateKey.generate()
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "image.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path, public_key_b64(key.public_key())


def _console(
    run: Path, broker: Broker, gates: list[str], image_key_file: Path | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    d = run / "console"
    d.mkdir(parents=True, exist_ok=True)
    (d / "broker.password").write_text(broker.passwords["console"])
    key = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (d / "signing.pem").write_bytes(key)
    (d / "session.secret").write_text(secrets.token_urlsafe(48))  # the console strips it
    port = free_port()
    cfg = {
        "site": SITE,
        "gates": gates,
        "broker": {
            "host": "127.0.0.1",
            "port": broker.port,
            "username": "console",
            "password_file": str(d / "broker.password"),
            "client_id": "fleet-console",
        },
        "signing": {"key_file": str(d / "signing.pem"), "key_id": "console"},
        "officers_file": str(d / "officers.json"),
        "audit_file": str(d / "audit.jsonl"),
        "session": {"secret_file": str(d / "session.secret"), "secure_cookie": False},
        "listen": {"host": "127.0.0.1", "port": port},
        "image_key_file": str(image_key_file) if image_key_file else None,
    }
    (d / "console.yaml").write_text(yaml.safe_dump(cfg))
    log = open(d / "console.log", "ab")  # noqa: SIM115 - owned by the process
    proc = subprocess.Popen(
        [sys.executable, "-m", "autogate.cli", "console", "--config", str(d / "console.yaml")],
        cwd=d,
        stdout=log,
        stderr=log,
    )
    return proc, port


async def _traveller_stream(
    hall: Any,
    stop: asyncio.Event,
    rng: random.Random,
    tally: dict[str, int],
    open_: asyncio.Event | None = None,
) -> None:
    """Travellers one after another until ``stop``; a cleared ``open_`` holds the next one
    back (an officer at the gate) while the current one finishes."""
    today = dt.date.today()
    n = 0
    while not stop.is_set():
        if open_ is not None and not open_.is_set():
            await open_.wait()
        n += 1
        expired = rng.random() < 0.1  # one in ten is referred at the reader
        expiry = today - dt.timedelta(days=30) if expired else today + dt.timedelta(days=900)
        number = f"F{rng.randrange(10**7):07d}"
        t = SimTraveller(f"t{n}", sim_mrz(number=number, expiry=expiry))
        outcome = await hall.walk(t, decide_s=1.0)
        tally["crossed" if outcome == "crossed" else "sent back"] += 1
        await asyncio.sleep(rng.uniform(0.5, 1.5))  # the next traveller steps up


async def run_fleet(
    n: int, seconds: float, run: Path, screenshot: Path | None = None
) -> FleetReport:
    from autogate.daemon import Daemon
    from autogate.wiring import build_devices, settings_from

    gates = [f"g{i:02d}" for i in range(1, n + 1)]
    certs = make_certs(run / "certs", ["console", "monitor"])
    broker = Broker(run / "broker", certs, gates=tuple(gates))
    broker.start()
    image_key_file, image_key = image_keypair(run / "console")
    console, port = _console(run, broker, gates, image_key_file)
    screen = None
    if screenshot is not None:
        from sim.fleet_screen import HallScreen

        screen = HallScreen(run / "console" / "officers.json", port, run / "chrome")
    stop = asyncio.Event()
    tally = {"crossed": 0, "sent back": 0}
    tasks: list[asyncio.Task[Any]] = []
    rng = random.Random(1)
    try:
        daemons = []
        for gid in gates:
            cfg = _gate_config(run, gid, broker, image_key=image_key)
            devices, hall = build_devices(cfg)
            hall.door_travel_s = 0.05
            daemon = Daemon(cfg, devices, settings_from(cfg))
            hall.emits["bus"] = daemon.emit
            daemons.append((daemon, hall))
            tasks.append(asyncio.ensure_future(daemon.run(stop)))
        t_ready = time.monotonic()
        await asyncio.gather(*(asyncio.wait_for(d.ready.wait(), 120) for d, _ in daemons))
        print(f"fleet: {n} gates ready in {time.monotonic() - t_ready:.1f} s", file=sys.stderr)
        cpu0 = (_cpu_s(broker.proc.pid), _cpu_s(console.pid), _cpu_s(os.getpid()))  # type: ignore[union-attr]
        t0 = time.monotonic()
        streams = [
            asyncio.ensure_future(_traveller_stream(h, stop, random.Random(rng.random()), tally))
            for _, h in daemons
        ]
        if screen is not None:
            await asyncio.to_thread(screen.open)
        await asyncio.sleep(max(0.0, seconds - (time.monotonic() - t0)))
        elapsed = time.monotonic() - t0
        cpu1 = (_cpu_s(broker.proc.pid), _cpu_s(console.pid), _cpu_s(os.getpid()))  # type: ignore[union-attr]
        rss = (_rss_mb(broker.proc.pid), _rss_mb(console.pid))  # type: ignore[union-attr]
        if screen is not None and screenshot is not None:
            fit = await asyncio.to_thread(screen.shoot, screenshot)
            print(f"fleet: hall screenshot {screenshot}: {fit}", file=sys.stderr)
        stop.set()
        print(f"fleet: measured {elapsed:.0f} s; stopping the gates", file=sys.stderr)
        await asyncio.gather(*streams, return_exceptions=True)
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        stop.set()
        if screen is not None:
            screen.close()
        console.terminate()
        console.wait(10)
        broker.stop()
    pct = [100 * (b - a) / elapsed for a, b in zip(cpu0, cpu1, strict=True)]
    return FleetReport(
        n, elapsed, tally["crossed"], tally["sent back"], pct[0], rss[0], pct[1], rss[1], pct[2]
    )
