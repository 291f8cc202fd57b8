"""Attacks through the broker on a real Mosquitto, with the console as its own process.

Issue 17 item 2 (client-id takeover; repeated takeovers alarm) and item 5 (a retained
referral image is refused and deleted from the broker).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from gate.journal import iter_records
from gate.referral_image import build_image_message
from sim.broker import PASSWORDS, Broker
from tests.console.helpers import jpeg
from tests.console.live import hall_broker
from tests.console.proc import OFFICERS, ConsoleProcess, login


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = hall_broker(tmp_path, ["g01", "g02"])
    yield b
    b.stop()


@pytest.fixture()
def console(tmp_path: Path, broker: Broker) -> Iterator[ConsoleProcess]:
    proc = ConsoleProcess(tmp_path / "console", broker_port=broker.port, gates=("g01", "g02"))
    yield proc
    proc.stop()


class Client:
    """One MQTT 5 client; counts how often the broker threw it out."""

    def __init__(self, broker: Broker, user: str, client_id: str, password: str = "") -> None:
        self.drops: list[Any] = []
        self.up = threading.Event()
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.c.username_pw_set(user, password or PASSWORDS[user])
        self.c.on_connect = lambda *a: self.up.set()
        self.c.on_disconnect = lambda _c, _u, _f, rc, _p: (self.up.clear(), self.drops.append(rc))
        self.c.reconnect_delay_set(1, 1)
        self.c.connect("127.0.0.1", broker.port, 30)
        self.c.loop_start()
        assert self.up.wait(5), f"{user} could not connect"

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


def _kinds(console: ConsoleProcess) -> list[str]:
    return [r["kind"] for r in iter_records(console.audit) if isinstance(r, dict)]


def _broker_up(c: Any) -> bool:
    return bool(c.get("/api/hall").json()["broker"])


def _until(pred: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.1)
    return False


def test_a_gate_password_cannot_take_the_console_or_another_gate_offline(
    broker: Broker, console: ConsoleProcess
) -> None:
    g02 = Client(broker, "gate-kul1-g02", "autogate-kul1-g02")  # the real gate g02
    with console.client() as c:
        csrf = login(c, "sam", OFFICERS["sam"][1]).json()["csrf"]
        assert _until(lambda: _broker_up(c), 10)
        codes, up = [], []
        for victim in ["autogate-console-test", "autogate-kul1-g02"] * 5:
            thief = Client(broker, "gate-kul1-g01", victim)  # g01's password, another's id
            time.sleep(0.3)
            up.append(_broker_up(c))
            r = c.post("/api/gates/g01/cmd/out_of_service", headers={"X-CSRF-Token": csrf})
            codes.append(r.status_code)
            thief.close()
    g02.close()
    assert codes == [202] * 10 and all(up)
    assert [d for d in g02.drops if getattr(d, "value", 0) == 0x8E] == []


def test_repeated_takeover_of_the_consoles_session_alerts_supervisors(
    broker: Broker, console: ConsoleProcess
) -> None:
    with console.client() as c:
        login(c, "sam", OFFICERS["sam"][1])
        assert _until(lambda: _broker_up(c), 10)
        for _ in range(4):  # someone holding the console's own broker password
            thief = Client(broker, "console", "anything")
            time.sleep(0.3)
            thief.close()
            assert _until(lambda: _broker_up(c), 10)  # the console comes back each time
    assert _until(lambda: "broker.session_taken_over" in _kinds(console), 5)


def test_a_retained_referral_image_is_refused_and_deleted(
    broker: Broker, console: ConsoleProcess
) -> None:
    with console.client() as c:
        login(c, "alice", OFFICERS["alice"][1])
        assert _until(lambda: _broker_up(c), 10)
    gate = Client(broker, "gate-kul1-g01", "g01")
    topic, raw = build_image_message(
        site="kul1",
        gate="g01",
        txn_id="b1-000001",
        portrait_jpeg=jpeg((9, 9, 9)),
        frame_jpeg=None,
        recipient=console.image_key.public_key(),
    )
    gate.c.publish(topic, raw, qos=1, retain=True).wait_for_publish(5)
    gate.close()
    assert _until(lambda: "broker.retained_image" in _kinds(console), 5)
    time.sleep(0.5)
    got: list[bytes] = []
    late = Client(broker, "monitor2", "late-recorder")
    late.c.on_message = lambda _c, _u, msg: got.append(bytes(msg.payload))
    late.c.subscribe(topic, qos=1)
    time.sleep(1.0)
    late.close()
    assert got == []  # nothing rests on the broker for the next subscriber


def _memory(pid: int) -> bytes:
    """Every readable, writable mapping of the process (heap, arenas, stacks)."""
    chunks = []
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            addr, perms = line.split()[:2]
            if not perms.startswith("rw"):
                continue
            lo, hi = (int(x, 16) for x in addr.split("-"))
            try:
                mem.seek(lo)
                chunks.append(mem.read(hi - lo))
            except (OSError, ValueError, OverflowError):
                continue
    return b"".join(chunks)


def test_photos_leave_the_consoles_memory_when_the_referral_closes(
    broker: Broker, console: ConsoleProcess
) -> None:
    """Item 8: after the referral closes no copy of either photo, raw or base64, remains."""
    import base64

    from gate.actions import EventType
    from gate.reasons import ReasonCode
    from tests.console.helpers import DOCUMENT, message

    portrait, frame = jpeg((201, 17, 33), (300, 380)), jpeg((14, 180, 90), (320, 400))
    gate = Client(broker, "gate-kul1-g01", "g01")
    with console.client() as c:
        login(c, "alice", OFFICERS["alice"][1])
        assert _until(lambda: _broker_up(c), 10)
        t, raw = message(
            "g01",
            EventType.REFERRAL_OPENED,
            "b1-000009",
            (ReasonCode.FACE_NO_MATCH,),
            document=DOCUMENT,
        )
        gate.c.publish(t, raw, qos=1).wait_for_publish(5)
        t, raw = build_image_message(
            site="kul1",
            gate="g01",
            txn_id="b1-000009",
            portrait_jpeg=portrait,
            frame_jpeg=frame,
            recipient=console.image_key.public_key(),
        )
        gate.c.publish(t, raw, qos=1).wait_for_publish(5)
        url = "/api/gates/g01/referral/b1-000009/portrait"
        assert _until(lambda: c.get(url).status_code == 200, 5)
        assert c.get(url).content == portrait
        assert c.get("/api/gates/g01/referral/b1-000009/frame").content == frame
        # windows in the entropy-coded data (the header tables are the same in every JPEG)
        spots = [(img, len(img) * k // 8) for img in (portrait, frame) for k in (4, 5, 6, 7)]
        windows = [img[n : n + 32] for img, n in spots]
        b64 = [base64.b64encode(img)[n // 3 * 4 : n // 3 * 4 + 40] for img, n in spots]
        held = _memory(console.proc.pid)
        assert any(w in held for w in windows)  # the open referral's photos are there
        t, raw = message(
            "g01",
            EventType.REFERRAL_RESOLVED,
            "b1-000009",
            resolution="send_back",
            officer="alice",
        )
        gate.c.publish(t, raw, qos=1).wait_for_publish(5)
        assert _until(lambda: c.get(url).status_code == 404, 5)
    gate.close()
    left = _memory(console.proc.pid)
    assert [w for w in windows if w in left] == []
    assert [w for w in b64 if w in left] == []


def test_the_console_logs_in_with_its_certificate_alone(tmp_path: Path) -> None:
    """The shipped broker takes the account from the client certificate (its CN) and has
    no password file: a console with its own certificate and no broker password logs in
    as the console and its commands go out (the password was required before)."""
    from sim.broker import make_certs

    certs = make_certs(tmp_path / "certs", ["console"])
    b = Broker(tmp_path / "broker", certs)
    b.start()
    cert, key = certs.clients["console"]
    tls = {"ca_file": str(certs.ca), "cert_file": str(cert), "key_file": str(key)}
    broker_cfg = {"host": "127.0.0.1", "port": b.tls_port, "username": "console", "tls": tls}
    seen: list[str] = []
    mon = Client(b, "monitor", "monitor")
    mon.c.on_message = lambda _c, _u, m: seen.append(m.topic)
    mon.c.subscribe("autogate/v1/+/+/cmd/#", qos=1)
    console = None
    try:
        console = ConsoleProcess(tmp_path / "console", extra={"broker": broker_cfg})
        with console.client() as c:
            csrf = login(c, "sam", OFFICERS["sam"][1]).json()["csrf"]
            assert _until(lambda: _broker_up(c), 10), "the console did not log in"
            r = c.post("/api/gates/g01/cmd/out_of_service", headers={"X-CSRF-Token": csrf})
            assert r.status_code == 202
        assert _until(lambda: "autogate/v1/kul1/g01/cmd/out_of_service" in seen, 5)
    finally:
        if console is not None:
            console.stop()
        mon.close()
        b.stop()
