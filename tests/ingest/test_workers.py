"""Workers on a real Mosquitto: a shared subscription, and a worker SIGKILLed mid-stream
loses nothing and doubles nothing (QoS 1, persistent session, commit before PUBACK)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from autogate.ingest.store import Store
from sim.broker import PASSWORDS, Broker, make_certs
from tests.ingest.helpers import KEY, crossing, referral

N = 3000


@pytest.fixture()
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path / "broker", make_certs(tmp_path / "certs", ["gate-kul1-g01"]))
    b.start()
    yield b
    b.stop()


def _config(tmp: Path, broker: Broker, database: str) -> Path:
    (tmp / "key").write_bytes(KEY)
    (tmp / "pw").write_text(PASSWORDS["ingest"])
    path = tmp / "ingest.yaml"
    path.write_text(
        f"database: '{database}'\n"
        f"document_key_file: {tmp / 'key'}\n"
        f"broker: {{host: 127.0.0.1, port: {broker.port}, username: 'ingest-{{index}}',"
        f" password_file: {tmp / 'pw'}}}\n"
        "batch_max: 200\n"
    )
    return path


class Workers:
    def __init__(self, config: Path, tmp: Path) -> None:
        self.config, self.tmp = config, tmp
        self.procs: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, i: int, wait: bool = True) -> None:
        log = self.tmp / f"worker-{i}-{len(self.procs)}-{time.monotonic_ns()}.log"
        self.procs[i] = subprocess.Popen(
            [sys.executable, "-m", "autogate.cli", "ingest", "worker"]
            + ["--config", str(self.config), "--index", str(i)],
            stderr=log.open("wb"),
            cwd=Path(__file__).parents[2],
        )
        deadline = time.monotonic() + 30
        while wait and b"subscribed to" not in log.read_bytes():
            assert self.procs[i].poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"worker {i} did not subscribe: {log.read_text()}"
            time.sleep(0.05)

    def kill(self, i: int) -> None:
        os.kill(self.procs[i].pid, signal.SIGKILL)
        self.procs[i].wait(10)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.terminate()
                p.wait(10)


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_killed_worker_loses_nothing_and_doubles_nothing(
    dialect: str, broker: Broker, tmp_path: Path, request: pytest.FixtureRequest
):
    url = (
        request.getfixturevalue("pg_url")
        if dialect == "postgresql"
        else f"sqlite:///{tmp_path / 'record.sqlite'}"
    )
    workers = Workers(_config(tmp_path, broker, url), tmp_path)
    gate = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gate-kul1-g01")
    gate.username_pw_set("gate-kul1-g01", PASSWORDS["gate-kul1-g01"])
    gate.max_inflight_messages_set(200)
    gate.connect("127.0.0.1", broker.port)
    gate.loop_start()
    sent: set[str] = set()
    try:
        workers.start(0)
        workers.start(1)
        infos = []
        for n in range(N):
            topic, payload = referral(f"X{n:08d}") if n % 10 == 0 else crossing(f"A{n:08d}")
            sent.add(payload["event_id"])
            infos.append(gate.publish(topic, json.dumps(payload), qos=1))
            if n == N // 3:
                workers.kill(0)  # mid-batch: some of its messages committed, none acked
            if n == 2 * N // 3:
                workers.start(0)  # same client id: its session and queue come back
        for info in infos:
            info.wait_for_publish(30)
        store = Store(url, read_only=True)
        deadline = time.monotonic() + 60
        got: list[str] = []
        while time.monotonic() < deadline:
            got = [
                r["event_id"]
                for t in ("crossings", "referrals")
                for r in store.query(f"SELECT event_id FROM {t}")
            ]
            if len(got) >= N:
                break
            time.sleep(0.2)
        assert len(got) == len(set(got))
        assert set(got) == sent, f"lost {len(sent - set(got))} of {N}"
        rejects = store.query("SELECT COUNT(*) AS n FROM rejects")[0]["n"]
        assert rejects == 0
        # each worker kept its own session: none took another's (one account each)
        assert b"already connected" not in (broker.directory / "mosquitto.log").read_bytes()
    finally:
        gate.disconnect()
        gate.loop_stop()
        workers.stop()


def test_run_restarts_a_worker_that_dies(broker: Broker, tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'record.sqlite'}"
    log = tmp_path / "run.log"
    run = subprocess.Popen(
        [sys.executable, "-m", "autogate.cli", "ingest", "run", "--workers", "2"]
        + ["--config", str(_config(tmp_path, broker, url))],
        stderr=log.open("wb"),
        cwd=Path(__file__).parents[2],
    )

    def children() -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(run.pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]

    try:
        deadline = time.monotonic() + 30
        while log.read_bytes().count(b"subscribed to") < 2:
            assert run.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)
        first = children()
        assert len(first) == 2
        os.kill(first[0], signal.SIGKILL)
        while log.read_bytes().count(b"subscribed to") < 3:
            assert time.monotonic() < deadline + 30, log.read_text()
            time.sleep(0.05)
        now = children()
        assert len(now) == 2 and first[0] not in now and first[1] in now
    finally:
        run.terminate()
        run.wait(20)
    assert run.returncode == 0


def test_two_workers_on_one_account_are_told_apart(broker: Broker, tmp_path: Path):
    """On a broker that binds client ids to accounts, two workers on one account keep
    taking one session from each other: the worker says so, as an error."""
    config = _config(tmp_path, broker, f"sqlite:///{tmp_path / 'record.sqlite'}")
    config.write_text(config.read_text().replace("'ingest-{index}'", "ingest-0"))
    workers = Workers(config, tmp_path)
    try:
        workers.start(0)
        # not waited for: whichever of the two reconnects first may keep the other from
        # ever finishing its SUBSCRIBE (seen in a clean-clone run); the point is that one
        # of them says why the connection keeps dropping
        workers.start(1, wait=False)
        deadline = time.monotonic() + 90
        said = b""
        while b"using this account" not in said:
            assert time.monotonic() < deadline, "no worker noticed the shared account"
            time.sleep(0.2)
            said = b"".join(p.read_bytes() for p in tmp_path.glob("worker-*.log"))
    finally:
        workers.stop()


def test_a_worker_that_cannot_commit_acknowledges_nothing(broker: Broker, tmp_path: Path):
    """The PUBACKs follow the commit: a worker holding a batch its database will not
    take, then dying without a word (its socket closed, no DISCONNECT), leaves every
    message with the broker, and its successor under the same id writes them all."""
    import sqlite3
    import threading

    from autogate.ingest.config import load_ingest_config
    from autogate.ingest.worker import Worker

    url = f"sqlite:///{tmp_path / 'record.sqlite'}"
    config = _config(tmp_path, broker, url)
    tried: list[int] = []

    class DownStore:
        def write(self, records: list[object]) -> None:
            tried.append(len(records))
            raise sqlite3.OperationalError("database is down")

        def ping(self) -> None:
            raise sqlite3.OperationalError("database is down")

        def close(self) -> None:
            pass

    worker = Worker(load_ingest_config(config), 0)
    worker.store.close()
    worker.store = DownStore()  # type: ignore[assignment]
    worker._reopen = lambda: None  # type: ignore[method-assign]
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,), daemon=True)
    thread.start()
    gate = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gate-kul1-g01")
    gate.username_pw_set("gate-kul1-g01", PASSWORDS["gate-kul1-g01"])
    gate.max_inflight_messages_set(200)
    gate.connect("127.0.0.1", broker.port)
    gate.loop_start()
    workers = Workers(config, tmp_path)
    n = 300
    try:
        assert worker.subscribed.wait(30)
        sent = set()
        infos = []
        for i in range(n):
            topic, payload = crossing(f"D{i:08d}")
            sent.add(payload["event_id"])
            infos.append(gate.publish(topic, json.dumps(payload), qos=1))
        for info in infos:
            info.wait_for_publish(30)
        deadline = time.monotonic() + 30
        while not tried:
            assert time.monotonic() < deadline, "the worker never tried to write"
            time.sleep(0.05)
        worker.consumer._sock.close()  # type: ignore[union-attr]  # dies without a word
        stop.set()
        thread.join(30)
        assert worker.counters.received == 0
        workers.start(0)  # same client id: the session and its unacknowledged messages
        store = Store(url, read_only=True)
        got: list[str] = []
        while time.monotonic() < deadline + 60:
            got = [r["event_id"] for r in store.query("SELECT event_id FROM crossings")]
            if len(got) >= n:
                break
            time.sleep(0.2)
        assert set(got) == sent, f"lost {len(sent - set(got))} of {n}"
    finally:
        stop.set()
        gate.disconnect()
        gate.loop_stop()
        workers.stop()


def test_workers_on_tls_present_each_their_own_certificate(tmp_path: Path):
    """Attack review: the broker's TLS listener takes the account from the client
    certificate's CN, so workers that shared one certificate were one account (and one
    session) whatever username each sent. ``{index}`` in the certificate's path gives
    worker i ingest-i's certificate: both subscribe, each on its own session, and the
    config that gives an account per worker but one certificate is refused."""
    from autogate.ingest.config import load_ingest_config
    from gate.config import ConfigError

    certs = make_certs(tmp_path / "certs", ["gate-kul1-g01", "ingest-0", "ingest-1"])
    broker = Broker(tmp_path / "broker", certs)
    broker.start()
    config = _config(tmp_path, broker, f"sqlite:///{tmp_path / 'record.sqlite'}")
    tls = f"tls: {{ca_file: {certs.ca}, cert_file: '{certs.ca.parent}/ingest-{{index}}.pem',"
    tls += f" key_file: '{certs.ca.parent}/ingest-{{index}}.key'}}"
    config.write_text(
        config.read_text()
        .replace(f"port: {broker.port}", f"port: {broker.tls_port}")
        .replace("host: 127.0.0.1", f"host: 127.0.0.1, {tls}")
    )
    workers = Workers(config, tmp_path)
    gate = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="gate-kul1-g01")
    gate.username_pw_set("gate-kul1-g01", PASSWORDS["gate-kul1-g01"])
    try:
        workers.start(0)
        workers.start(1)
        gate.connect("127.0.0.1", broker.port)
        gate.loop_start()
        sent = []
        for n in range(40):
            topic, payload = crossing(f"T{n:08d}")
            sent.append(payload["event_id"])
            gate.publish(topic, json.dumps(payload), qos=1).wait_for_publish(10)
        store = Store(f"sqlite:///{tmp_path / 'record.sqlite'}", read_only=True)
        deadline = time.monotonic() + 30
        while len(store.query("SELECT event_id FROM crossings")) < len(sent):
            assert time.monotonic() < deadline, "the workers did not write every event"
            time.sleep(0.1)
        log = (broker.directory / "mosquitto.log").read_bytes()
        assert b"already connected" not in log  # no worker took another's session
    finally:
        gate.disconnect()
        gate.loop_stop()
        workers.stop()
        broker.stop()
    one_cert = config.read_text().replace("ingest-{index}.pem", "ingest-0.pem")
    config.write_text(one_cert.replace("ingest-{index}.key", "ingest-0.key"))
    with pytest.raises(ConfigError, match="tls.cert_file"):
        load_ingest_config(config)
