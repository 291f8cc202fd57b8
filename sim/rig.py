"""The whole virtual hardware of one gate, with the daemon as a separate process.

Every part plugs in at the seam a real device uses, so the daemon runs its production
drivers with its normal config file:

- the gate controller: ``sim.barrier.SimController``, a Modbus RTU server on a pty;
- the chip: ``sim.chip.VirtualChip`` behind a pcscd + vpcd of the rig's own
  (``sim.pcscd``: private socket and vpcd ports, so rigs side by side never meet);
- the document reader: pages rendered by ``sim.page`` into the image file the OCR
  scanner watches (a file appearing is a document placed);
- the camera: frames written into the folder the OpenCV camera reads, genuine faces
  from the shared real images, attacks from ``sim.attacks``;
- the thumb reader: ``sim.thumb_reader`` inside the daemon, presenting what the rig
  writes into its scene file (``thumb.json``: whose synthetic finger, no finger,
  garbage, a dead reader); the chip's DG3 behind EAC (``sim.chip_eac``), with the
  gate's trust folders from ``sim.eac_pki`` (a valid and an expired IS certificate);
- the national watchlist and pass registry: ``sim.watchlist_service`` over HTTP;
- the broker: a real Mosquitto (``sim.broker``) with passwords, ACL and TLS;
- the officer: an Ed25519 console key signing commands on ``.../cmd/{command}``.

The rig watches the gate from outside, as an operator would: events and status over
MQTT (a monitor subscriber), door commands from the controller's coils.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from gate.resources import shipped
from sim.pcscd import READER, PrivatePcscd
from sim.pcscd import problems as pcscd_problems
from sim.scenario import ChipSetup, GateSetup, Scenario, Traveller

log = logging.getLogger("autogate.sim")

REPO = Path(__file__).resolve().parents[1]
POLICY_FILES = {"arrival": "policy.example.yaml", "departure": "policy.departure.example.yaml"}
FACES = REPO.parent / "shared" / "data" / "faces"
SITE, GATE = "kul1", "g01"  # the identities sim.broker's password file and ACL know


def available_parts() -> dict[str, str | None]:
    """Each part of the virtual hardware: None when usable, else why not."""
    out: dict[str, str | None] = {}

    def need(part: str, modules: list[str], exes: list[str] = ()) -> None:  # type: ignore[assignment]
        import importlib.util

        for m in modules:
            if importlib.util.find_spec(m) is None:
                out[part] = f"module {m} not landed"
                return
        for exe in exes:
            if shutil.which(exe) is None and not Path(exe).exists():
                out[part] = f"{exe} not installed"
                return
        out[part] = None

    need("barrier", ["drivers.barrier", "sim.barrier"])
    need("chip", ["drivers.chip", "sim.chip"], ["/usr/sbin/pcscd"])
    if out["chip"] is None:
        out["chip"] = pcscd_problems()
    need("mrz", ["drivers.scanner", "sim.page"])
    need("face", ["drivers.camera", "drivers.face.verifier", "sim.attacks"])
    need("mqtt", ["drivers.bus", "sim.broker"], ["/usr/sbin/mosquitto"])
    need("policy", ["gate.policy"])
    need("lists", ["drivers.watchlist", "sim.watchlist_service"])
    need("thumb", ["drivers.finger.verifier", "nbis", "sim.thumb_reader", "sim.chip_eac"])
    return out


# A part that has not landed is replaced in the daemon's config by its in-process stand-in,
# so scenarios that do not exercise it still run; those that do are reported pending.
STANDINS: dict[str, dict[str, Any]] = {
    "face": {"camera": {"type": "sim"}, "face": {"type": "sim"}},
}


# --- observing the gate --------------------------------------------------------------------


class Monitor:
    """Events and status of the gate over MQTT, as the console sees them."""

    def __init__(self, port: int, password: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        self.events: list[dict[str, Any]] = []
        self.seen: set[str] = set()
        self.state: str | None = None
        self.states: list[str] = []  # every state the gate announced, in order
        self.cond = threading.Condition()
        # called (from the MQTT thread) after every message: a live view redraws
        self.listeners: list[Callable[[], None]] = []
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"sim-monitor-{uuid.uuid4().hex[:6]}",
            protocol=mqtt.MQTTv5,
        )
        self.client.username_pw_set("monitor", password)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = lambda c, *_: c.subscribe(f"autogate/v1/{SITE}/{GATE}/#", qos=1)
        self.client.on_message = self._on_message
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 3600  # keep our queue across a broker restart
        self.client.connect("127.0.0.1", port, 30, clean_start=False, properties=props)
        self.client.loop_start()

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            return
        with self.cond:
            if payload.get("type") == "gate.status":
                self.state = payload.get("state")
                if self.state and (not self.states or self.states[-1] != self.state):
                    self.states.append(self.state)
            payload["_rx"] = time.time()  # when the console side had it (latency)
            eid = payload.get("event_id")
            if eid and eid not in self.seen:
                self.seen.add(eid)
                self.events.append(payload)
            self.cond.notify_all()
        for listener in list(self.listeners):
            try:
                listener()
            except Exception:  # a broken view must not stop the monitor
                log.exception("monitor listener failed")

    def wait(self, pred: Any, timeout: float) -> bool:
        with self.cond:
            return self.cond.wait_for(pred, timeout)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


# --- the controller, on a loop of its own -------------------------------------------------------


class ControllerHost:
    """Runs ``SimController`` on its own event loop in its own thread.

    The simulated serial line paces bytes with loop timers; on the orchestrator's loop,
    any CPU-heavy step (rendering a page, building a chip, generating attack frames)
    would stall the line and the daemon would see a dead controller that a real one
    never is. Control calls hop onto the controller's loop.
    """

    def __init__(self, **kw: Any) -> None:
        from sim.barrier import SimController

        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="sim-controller", daemon=True
        )
        self.thread.start()
        self.sim: SimController = self.run(self._make(SimController, kw))

    @staticmethod
    async def _make(cls: Any, kw: dict[str, Any]) -> Any:
        return cls(**kw)  # created on its loop: its locks and timers belong there

    def run(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def arun(self, coro: Any) -> Any:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, self.loop))

    def call(self, fn: Any, *args: Any) -> Any:
        async def once() -> Any:
            return fn(*args)

        return self.run(once())

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.run(self.sim.close(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


# --- the rig ---------------------------------------------------------------------------------


@dataclass
class Rig:
    run_dir: Path
    baudrate: int = 115200
    level: str = "mild"  # degradation of rendered data pages
    door_travel_s: float = 0.2  # the controller's doors (0: the throughput benchmark)
    walk_s: float = 0.1  # a body crossing a doorway beam
    direction: str = "arrival"  # of the gate; a scenario may ask for the other (reset)
    parts: dict[str, str | None] = field(default_factory=available_parts)
    remove_run_dir: bool = False  # a folder the rig was given to make its own: gone after stop

    def __post_init__(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.page = self.run_dir / "reader" / "page.png"
        self.camera_dir = self.run_dir / "camera"
        self.daemon: subprocess.Popen[bytes] | None = None
        self.doors: list[str] = []
        self.door_times: list[float] = []  # wall time each door command reached the coils
        self.cold_starts: list[float] = []  # seconds from daemon spawn to IDLE
        self.rng = np.random.default_rng(7)
        self._tasks: list[asyncio.Task[None]] = []
        self._pcscd: PrivatePcscd | None = None
        self.card: Any = None
        self.gate_setup = GateSetup()  # policy channel and IS certificate of the gate
        self.thumb_scene = self.run_dir / "thumb.json"
        from sim.broker import free_port

        self.metrics_port = free_port()

    @property
    def pcscd_socket(self) -> Path | None:
        return self._pcscd.socket_path if self._pcscd else None

    @property
    def vpcd_port(self) -> int | None:
        return self._pcscd.port if self._pcscd else None

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        missing = {p: why for p, why in self.parts.items() if why and p not in STANDINS}
        if missing:
            raise RuntimeError(f"virtual hardware incomplete: {missing}")
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        from sim.broker import PASSWORDS, Broker, make_certs
        from sim.chip import VpcdCard
        from sim.chip_pki import make_pki
        from sim.watchlist_service import Registry, WatchlistService

        d = self.run_dir
        self.passwords = PASSWORDS
        certs = make_certs(d / "certs", [f"gate-{SITE}-{GATE}", "console", "monitor"])
        self.broker = Broker(d / "broker", certs)
        self.broker.start()
        self.console_key = Ed25519PrivateKey.generate()
        # the console's X25519 key: gates seal referral photos to its public half
        from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

        self.image_key = X25519PrivateKey.generate()
        self.host = ControllerHost(
            baudrate=self.baudrate, travel_s=self.door_travel_s, walk_s=self.walk_s
        )
        self.controller = self.host.sim
        await self.host.arun(self.controller.start())
        self._tasks.append(asyncio.ensure_future(self._watch_doors()))
        self.pki = make_pki("ecdsa")
        self.pki.write_csca(d / "csca")
        if not self.parts.get("thumb"):
            await asyncio.to_thread(self._write_eac_trust)
        self._write_thumb_scene(None)
        self.registry = Registry()
        self.lists = WatchlistService(self.registry).start()
        self.entries = WatchlistService(self.registry).start()  # the central record, apart
        # a pcscd and vpcd ports of this rig's own: no other rig or card can reach them
        self._pcscd = await asyncio.to_thread(PrivatePcscd().start)
        self._card_cls = VpcdCard
        self.page.parent.mkdir(parents=True, exist_ok=True)
        self.page.unlink(missing_ok=True)
        self.camera_dir.mkdir(parents=True, exist_ok=True)
        self._write_scene(None)
        self.config_path = self._write_config()
        self.monitor = Monitor(self.broker.port, PASSWORDS["monitor"])
        self.start_daemon()
        # waits run in a thread: the controller serves the daemon from this event loop
        if not await asyncio.to_thread(self.monitor.wait, lambda: self.monitor.state == "IDLE", 30):
            raise RuntimeError(f"gate did not reach IDLE (state {self.monitor.state})")

    async def stop(self) -> None:
        """Stop every part that was started, also after a start that failed half way."""
        await asyncio.to_thread(self.stop_daemon)
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for name, how in (
            ("console", "stop"),
            ("monitor", "close"),
            ("card", "stop"),
            ("lists", "stop"),
            ("entries", "stop"),
            ("broker", "stop"),
        ):
            part = getattr(self, name, None)
            if part is not None:
                with contextlib.suppress(Exception):
                    getattr(part, how)()
        host = getattr(self, "host", None)
        if host is not None:
            await asyncio.to_thread(host.close)
        if self._pcscd is not None:
            await asyncio.to_thread(self._pcscd.stop)
        if self.remove_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def start_console(self) -> Any:
        """The officers' console on this rig's broker, trusted by its gate (``sim.lab_console``)."""
        from sim.lab_console import start_lab_console, write_lab_console

        lab = write_lab_console(
            self.run_dir / "console",
            site=SITE,
            gates=[GATE],
            broker_port=self.broker.port,
            password=self.passwords["console"],
            key=self.console_key,
        )
        self.console = start_lab_console(lab)
        return self.console

    def _write_eac_trust(self) -> None:
        """The gate's EAC trust folders for the virtual chips' test PKI: ``eac/valid``
        and ``eac/expired`` (its IS certificate out of date), each with the folder of the
        test state and of the rig's travellers' issuing state (MYS)."""
        from sim import eac_pki

        pki = eac_pki.make()
        for name, expired in (("valid", False), ("expired", True)):
            root = eac_pki.write_trust(self.run_dir / "eac" / name, pki, expired=expired)
            mys = root / "MYS"
            if not mys.exists():
                shutil.copytree(root / eac_pki.STATE, mys)

    def _write_thumb_scene(self, t: Traveller | None) -> None:
        """What the thumb reader sees at its next capture: the traveller's right thumb
        (the finger the gate asks for), someone else's, nothing, noise or a dead reader."""
        spec: dict[str, Any] = {"mode": "none"}
        if t is not None:
            live = t.thumb.live
            finger = 2 * t.thumb.finger  # right thumb: DG3's first image
            if live == "impostor":
                finger = 2 * (t.thumb.finger + 97)
            mode = "finger" if live in ("genuine", "impostor") else live
            spec = {"finger": finger, "impression": 1, "mode": mode}
        tmp = self.thumb_scene.with_suffix(".tmp")
        tmp.write_text(json.dumps(spec))
        os.replace(tmp, self.thumb_scene)

    def _policy_file(self) -> Path:
        """The shipped policy of the gate's direction, with the citizens' biometric
        channel the scenario asks for."""
        policy = yaml.safe_load(shipped(f"config/{POLICY_FILES[self.direction]}").read_text())
        for category in policy["categories"]:
            if category["kind"] == "citizen":
                category["biometric"] = self.gate_setup.biometric
        if self.gate_setup.thumb_overturns_pad:
            policy.setdefault("thumb", {})["overturns_pad"] = True
        path = self.run_dir / f"policy.{self.direction}.yaml"
        path.write_text(yaml.safe_dump(policy, sort_keys=False))
        return path

    def _write_config(self) -> Path:
        from gate.commands import public_key_b64
        from gate.referral_image import public_key_b64 as image_key_b64

        d = self.run_dir
        (d / "gate.password").write_text(self.passwords[f"gate-{SITE}-{GATE}"])
        (d / "document.key").write_bytes(os.urandom(32))
        cfg = {
            "gate": {"site": SITE, "id": GATE, "direction": self.direction},
            "timeouts": {"doc_check": 20, "in_mantrap": 20, "idle": 5, "thumb": 10},
            "devices": {
                "scanner": {"type": "ocr", "image_path": str(self.page), "poll_s": 0.05},
                "chip": {"type": "pcsc", "reader": READER, "csca_dir": str(d / "csca")},
                "camera": {"type": "opencv", "source": str(self.camera_dir)},
                "face": {"type": "dlib"},
                **(STANDINS["face"] if self.parts.get("face") else {}),
                "barrier": {
                    "type": "modbus_rtu",
                    "port": self.controller.port,
                    "baudrate": self.baudrate,
                    "parity": "N",
                    "poll_s": 0.02,
                    # the simulated controller shares a Python process (and its GIL) with
                    # the rig's page, chip and attack-frame work; on a loaded 2-core machine
                    # it missed 3 x 0.2 s and the gate went OUT_OF_SERVICE mid-scenario
                    "timeout_s": 0.5,
                },
                "bus": {
                    "type": "mqtt",
                    "host": "127.0.0.1",
                    "port": self.broker.port,
                    "username": f"gate-{SITE}-{GATE}",
                    "password_file": str(d / "gate.password"),
                    "outbox": str(d / "var" / "outbox.sqlite"),
                    "outbox_sync": "normal",
                    "document_key_file": str(d / "document.key"),
                    "command_keys": [
                        {
                            "id": "console",
                            "public_key": public_key_b64(self.console_key.public_key()),
                        }
                    ],
                    "image_key": image_key_b64(self.image_key.public_key()),
                },
                "lists": {
                    "type": "composite",
                    "timeout_s": 2.0,
                    "adapters": [
                        {
                            "type": "http",
                            "name": "national",
                            "url": self.lists.url,
                            "timeout_s": 1.0,
                        },
                        {
                            "type": "http",
                            "name": "passes",
                            "url": self.lists.url,
                            "service": "passes",
                            "timeout_s": 1.0,
                        },
                        {  # the central record's last entry (overstay at departure)
                            "type": "http",
                            "name": "entries",
                            "url": self.entries.url,
                            "service": "entries",
                            "timeout_s": 1.0,
                        },
                    ],
                },
            },
            "policy": {"file": str(self._policy_file())},
            "storage": {"data_dir": str(d / "var"), "journal": str(d / "var" / "journal.jsonl")},
            # the rig's own port, as an operator's scraper would read it
            "ops": {"metrics": {"enabled": True, "port": self.metrics_port}},
        }
        # the thumb channel (issue 19), only where the scenario's policy uses it: a gate
        # without it is the face-only gate every other scenario and benchmark measures
        if not self.parts.get("thumb") and self.gate_setup.biometric != "face":
            devices: dict[str, Any] = cfg["devices"]  # type: ignore[assignment]
            devices["chip"]["eac_dir"] = str(d / "eac" / self.gate_setup.is_certificate)
            devices["thumb"] = {
                "type": "nbis",
                "reader": {"type": "sim"},
                "scene": str(self.thumb_scene),
            }
        path = d / "gate.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False))
        return path

    def start_daemon(self) -> None:
        assert self._pcscd is not None
        env = self._pcscd.client_env(dict(os.environ, PYTHONUNBUFFERED="1"))
        log_file = open(self.run_dir / "daemon.log", "ab")  # noqa: SIM115 - owned by the process
        self.daemon = subprocess.Popen(
            [sys.executable, "-m", "autogate.cli", "run", "--config", str(self.config_path)],
            cwd=self.run_dir,
            env=env,
            stdout=log_file,
            stderr=log_file,
        )

    def stop_daemon(self) -> None:
        if self.daemon is not None and self.daemon.poll() is None:
            self.daemon.send_signal(signal.SIGTERM)
            try:
                self.daemon.wait(15)
            except subprocess.TimeoutExpired:
                self.daemon.kill()
                self.daemon.wait(5)

    async def _watch_doors(self) -> None:
        """Door commands as the controller saw them (coil changes), in order."""
        from sim.barrier import Door

        last = {door: self.controller.door_open_commanded(door) for door in Door}
        while True:
            for door in Door:
                now = self.controller.door_open_commanded(door)
                if now != last[door]:
                    self.doors.append(f"{door.value}:{'open' if now else 'close'}")
                    self.door_times.append(time.time())
                    last[door] = now
            await asyncio.sleep(0.005)

    # -- the traveller's things -------------------------------------------------------

    def _identity(self, t: Traveller) -> Any:
        from sim.page import Identity

        ident = t.identity
        today = dt.date.today()
        return Identity(
            fmt="TD3",
            document_code=ident.document_code,
            issuing_state=ident.issuing_state or ident.nationality,
            surname=ident.surname,
            given_names=ident.given_names,
            document_number=ident.document_number,
            nationality=ident.nationality,
            date_of_birth=ident.birth,
            sex=ident.sex if ident.sex != "<" else "X",
            date_of_expiry=today + dt.timedelta(days=ident.expiry_in_days),
        )

    def _chip(self, t: Traveller, ident: Any) -> Any:
        from sim.chip import Faults, Holder, VirtualChip

        holder = Holder(
            document_number=ident.document_number,
            surname=ident.surname + ("X" if t.identity.dg1_differs else ""),
            given_names=ident.given_names,
            nationality=ident.nationality,
            issuing_state=ident.issuing_state,
            birth=ident.date_of_birth.strftime("%y%m%d"),
            sex=ident.sex,
            expiry=ident.date_of_expiry.strftime("%y%m%d"),
            optional="",
            document_code=ident.document_code,
        )
        faults = Faults(**{f: True for f in t.chip.faults})
        portrait = (FACES / t.face.portrait / "01.jpg").read_bytes()
        pki = (
            None if ("unknown_csca" in t.chip.faults or "expired_ds" in t.chip.faults) else self.pki
        )
        if t.thumb.dg3:  # the thumbs in DG3, behind terminal authentication
            from sim.chip_eac import EACChip, EACFaults, default_fingers

            return EACChip(
                holder,
                portrait,
                faults=faults,
                pki=pki,
                eac_faults=EACFaults(refuse_ta=t.thumb.refuse_ta),
                fingers=default_fingers(t.thumb.finger),
                pace_protocol=t.chip.pace_protocol,
                ca_key=t.chip.ca_key,
            )
        return VirtualChip(
            holder,
            portrait,
            faults=faults,
            pki=pki,
            pace_protocol=t.chip.pace_protocol,
            ca_key=t.chip.ca_key,
        )

    def _write_scene(self, frames: list[np.ndarray] | None) -> None:
        """What the camera sees: frames of a traveller, or the empty mantrap."""
        tmp = self.camera_dir.with_name("camera.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        if frames is None:  # the empty mantrap: a still scene with sensor noise
            base = np.full((480, 640, 3), 90, np.uint8)
            frames = [
                np.clip(base + self.rng.normal(0, 3, base.shape), 0, 255).astype(np.uint8)
                for _ in range(4)
            ]
        for n, f in enumerate(frames):
            cv2.imwrite(str(tmp / f"{n:04d}.jpg"), f)
        old = self.camera_dir.with_name("camera.old")
        shutil.rmtree(old, ignore_errors=True)
        os.rename(self.camera_dir, old)
        os.rename(tmp, self.camera_dir)
        shutil.rmtree(old, ignore_errors=True)

    def _live_frames(self, t: Traveller) -> list[np.ndarray]:
        """What stands in front of the camera, filmed by ``sim.attacks``' gate camera.

        A real face is filmed under the gate camera's own conditions (the training
        settings: the camera is ours and known); attacks use the held-out print and
        screen settings the PAD model never saw (the attacker's instruments are not)."""
        from sim import attacks

        face_w = 270.0  # the dlib face box of the London studio images is 220-320 px
        kind = t.face.live
        if kind in ("genuine", "impostor"):
            who = t.face.portrait if kind == "genuine" else t.face.impostor
            img = cv2.imread(str(FACES / who / "02.jpg"))
            if img is None:
                raise StepFailed(f"no live image for {who}")
            return attacks.bona_fide_burst([img] * 8, face_w, attacks.TRAIN, self.rng)
        photo = cv2.imread(str(FACES / t.face.portrait / "01.jpg"))
        kind_name = "print" if kind == "print_attack" else "screen"
        return attacks.attack_burst(kind_name, [photo] * 8, face_w, attacks.HELDOUT, self.rng)

    # -- steps (names as in scenario files) ---------------------------------------------

    async def place_document(self, t: Traveller, chip: str = "as_set") -> None:
        """The traveller's passport on the reader; ``{place_document: genuine}`` places
        the same traveller's passport with a faultless chip (the next one in the queue)."""
        from sim.page import degrade, render_clean

        if chip == "genuine":
            t = t.model_copy(update={"chip": ChipSetup()})
        elif chip != "as_set":
            raise StepFailed(f"place_document: unknown chip {chip!r} (as_set, genuine)")
        self.traveller = t
        ident = self._identity(t)
        # the same traveller renders the same page and frames in every run, and a new
        # optional field of the scenario model (left at its default) changes no scene
        self.rng = np.random.default_rng(
            zlib.crc32(t.model_dump_json(exclude_defaults=True).encode())
        )
        # the authority's records for this traveller
        state, number = ident.issuing_state, ident.document_number
        self.registry.stolen.discard((state, number))
        if t.lists.stolen:
            self.registry.stolen.add((state, number))
        if t.lists.pass_type:
            valid = dt.timedelta(days=365)
            if t.lists.pass_expired_days_ago is not None:
                valid = -dt.timedelta(days=t.lists.pass_expired_days_ago)
            self.registry.passes[(state, number)] = (t.lists.pass_type, dt.date.today() + valid)
        self.registry.entries.pop(number, None)
        if t.lists.entered_days_ago is not None:
            ago = dt.timedelta(days=t.lists.entered_days_ago)
            self.registry.entries[number] = dt.datetime.now(dt.UTC) - ago
        modes: dict[str, Any] = {"up": "normal", "down": "down", "slow": "slow"}
        self.lists.set_mode(modes[t.lists.service])
        self.entries.set_mode(modes[t.lists.entries_service])
        if t.chip.present:
            chip = await asyncio.to_thread(self._chip, t, ident)
            if self.card is None:
                assert self._pcscd is not None
                self.card = self._card_cls(chip, port=self._pcscd.port).start()
            else:
                await asyncio.to_thread(self.card.insert, chip)
            # A passport's chip is in the field the moment the page is on the glass; the
            # virtual card needs up to ~1.4 s to be dialled in again after a removal
            # (pcscd must see "no card" once, vpcd polls every 0.4 s), longer than the
            # gate's card wait. So the page goes down once vpcd talks to the card.
            connected = getattr(self.card, "connected", None)
            if connected is not None:
                await asyncio.to_thread(connected.wait, 5.0)

        def render() -> None:
            page = degrade(render_clean(ident, self.rng), self.level, self.rng)
            tmp = self.page.with_name("page.tmp.png")
            cv2.imwrite(str(tmp), page)
            os.replace(tmp, self.page)  # the reader sees a whole page or none

        await asyncio.to_thread(render)

    async def remove_document(self, t: Traveller) -> None:
        self.page.unlink(missing_ok=True)
        if self.card is not None:
            await asyncio.to_thread(self.card.remove)

    async def _scene(self, t: Traveller | None) -> None:
        if t is not None and self.parts.get("face"):
            t = None  # no face part yet: the stand-in camera ignores the folder anyway
        frames = None if t is None else await asyncio.to_thread(self._live_frames, t)
        await asyncio.to_thread(self._write_scene, frames)

    async def walk_in(self, t: Traveller) -> None:
        await self._scene(t)
        await asyncio.to_thread(self._write_thumb_scene, t)
        await self.remove_document(t)
        await self.host.arun(self.controller.walk_in())

    async def tailgate(self, t: Traveller) -> None:
        await self._scene(t)
        await self.remove_document(t)
        await self.host.arun(self.controller.tailgate())

    async def walk_out(self, t: Traveller) -> None:
        await self.host.arun(self.controller.walk_out())
        await self._scene(None)

    async def walk_back(self, t: Traveller) -> None:
        await self.host.arun(self.controller.walk_back())
        await self._scene(None)

    def _alarm_id(self) -> str | None:
        return next(
            (
                e["alarm_id"]
                for e in reversed(self.monitor.events)
                if e.get("type") == "alarm.raised" and e.get("alarm_id")
            ),
            None,
        )

    async def officer(self, t: Traveller, command: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from gate.commands import sign_command
        from gate.inputs import Command

        # a release / send-back names the referral it decides (the open one)
        txn = next(
            (
                e["txn_id"]
                for e in reversed(self.monitor.events)
                if e.get("type") == "referral.opened"
            ),
            None,
        )
        msg = sign_command(
            self.console_key,
            key_id="console",
            site=SITE,
            gate=GATE,
            command=Command(command),
            officer="sim-officer",
            ts=dt.datetime.now(dt.UTC),
            txn_id=txn if command in ("release", "send_back") else None,
            # a reset names the alarm it resets (the newest one raised)
            alarm_id=self._alarm_id() if command == "reset_alarm" else None,
        )
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sim-console-{uuid.uuid4().hex[:6]}"
        )
        client.username_pw_set("console", self.passwords["console"])
        client.connect("127.0.0.1", self.broker.port)
        client.loop_start()
        info = client.publish(f"autogate/v1/{SITE}/{GATE}/cmd/{command}", json.dumps(msg), qos=1)
        await asyncio.to_thread(info.wait_for_publish, 5)
        client.disconnect()
        client.loop_stop()

    async def emergency(self, t: Traveller, active: bool) -> None:
        self.host.call(self.controller.set_emergency, bool(active))

    async def pull_cable(self, t: Traveller) -> None:
        self.host.call(self.controller.pull_cable)

    async def restore_cable(self, t: Traveller) -> None:
        self.host.call(self.controller.restore_cable)

    async def stop_broker(self, t: Traveller) -> None:
        self.broker.kill()

    async def start_broker(self, t: Traveller) -> None:
        self.broker.start()

    async def kill_daemon(self, t: Traveller) -> None:
        assert self.daemon is not None
        self.daemon.send_signal(signal.SIGKILL)
        await asyncio.to_thread(self.daemon.wait, 10)

    async def start_daemon_step(self, t: Traveller) -> None:
        self.start_daemon()

    async def sleep(self, t: Traveller, seconds: float) -> None:
        await asyncio.sleep(float(seconds))

    async def wait_state(self, t: Traveller, state: str, timeout: float = 20.0) -> None:
        """Until the gate has been in ``state`` since the last state waited for (a state
        passed through quickly still counts: steps and the gate race otherwise)."""
        start = self.states_mark

        def reached() -> bool:
            return state in self.monitor.states[start:]

        if not await asyncio.to_thread(self.monitor.wait, reached, timeout):
            went = self.monitor.states[start:]
            raise StepFailed(f"state {state} not reached in {timeout:.0f} s (went {went})")
        self.states_mark = start + self.monitor.states[start:].index(state) + 1

    async def wait_door(self, t: Traveller, command: str, timeout: float = 10.0) -> None:
        """Until the controller has received ``command`` (e.g. ``entry:open``)."""
        deadline = time.monotonic() + timeout
        while command not in self.doors[self.doors_mark :]:
            if time.monotonic() > deadline:
                raise StepFailed(f"door command {command} not seen in {timeout:.0f} s")
            await asyncio.sleep(0.01)

    async def wait_event(self, t: Traveller, kind: str, timeout: float = 30.0) -> None:
        start = self.events_mark

        def seen() -> bool:
            return any(e.get("type") == kind for e in self.monitor.events[start:])

        if not await asyncio.to_thread(self.monitor.wait, seen, timeout):
            raise StepFailed(f"no {kind} event in {timeout:.0f} s")

    def wait_ack(self, since: int, timeout: float) -> dict[str, Any] | None:
        """The first ``command.ack`` after event number ``since``, or None in time."""

        def ack() -> dict[str, Any] | None:
            return next(
                (e for e in self.monitor.events[since:] if e.get("type") == "command.ack"), None
            )

        self.monitor.wait(lambda: ack() is not None, timeout)
        return ack()

    events_mark = 0
    doors_mark = 0
    states_mark = 0

    def mark(self) -> None:
        """This scenario's observations start here."""
        self.events_mark, self.doors_mark = len(self.monitor.events), len(self.doors)
        self.states_mark = len(self.monitor.states)

    def observed(self) -> tuple[list[dict[str, Any]], list[str]]:
        return self.monitor.events[self.events_mark :], self.doors[self.doors_mark :]

    async def reset(self, direction: str = "arrival", gate: GateSetup | None = None) -> None:
        """Back to an empty hall and an idle gate between scenarios: a fresh daemon (so no
        scenario inherits another's state), nobody inside, no faults, broker up; the gate
        config rewritten when the scenario's gate serves the other direction."""
        await asyncio.to_thread(self.stop_daemon)
        gate = gate or GateSetup()
        if direction != self.direction or gate != self.gate_setup:
            self.direction, self.gate_setup = direction, gate
            self.config_path = self._write_config()
        self._write_thumb_scene(None)
        self.page.unlink(missing_ok=True)
        if self.card is not None:
            await asyncio.to_thread(self.card.remove)

        def empty_hall() -> None:
            m = self.controller.model
            m.people.clear()
            m.emergency = m.tamper = False
            for door in m.doors.values():
                door.blocked = False
            self.controller.restore_cable()

        self.host.call(empty_hall)
        self.lists.set_mode("normal")
        self.entries.set_mode("normal")
        await asyncio.to_thread(self._write_scene, None)
        if self.broker.proc is None or self.broker.proc.poll() is not None:
            self.broker.start()
        self.monitor.state = None
        t0 = time.monotonic()
        self.start_daemon()
        if not await asyncio.to_thread(self.monitor.wait, lambda: self.monitor.state == "IDLE", 30):
            raise RuntimeError(f"gate did not come back to IDLE (state {self.monitor.state})")
        self.cold_starts.append(time.monotonic() - t0)


class StepFailed(Exception):
    """A step whose expected effect did not happen."""


STEPS = {
    "place_document": "place_document",
    "remove_document": "remove_document",
    "walk_in": "walk_in",
    "walk_out": "walk_out",
    "walk_back": "walk_back",
    "tailgate": "tailgate",
    "officer": "officer",
    "emergency": "emergency",
    "pull_cable": "pull_cable",
    "restore_cable": "restore_cable",
    "stop_broker": "stop_broker",
    "start_broker": "start_broker",
    "kill_daemon": "kill_daemon",
    "start_daemon": "start_daemon_step",
    "sleep": "sleep",
    "wait_state": "wait_state",
    "wait_event": "wait_event",
    "wait_door": "wait_door",
}


def step_call(rig: Rig, step: str | dict[str, Any], t: Traveller) -> Any:
    """The coroutine for one scenario step (``name`` or ``{name: argument}``)."""
    args: tuple[Any, ...] = ()
    if isinstance(step, str):
        name = step
    else:  # {name: argument}
        ((name, arg),) = step.items()
        args = (arg,)
    if name not in STEPS:
        raise StepFailed(f"unknown step {name!r}")
    return getattr(rig, STEPS[name])(t, *args)


def missing_parts(s: Scenario, parts: dict[str, str | None]) -> list[str]:
    return [f"{p}: {parts[p]}" for p in s.needs if parts.get(p)]
