"""`./run demo`'s console: lab config in the rig's folder, officers that can log in, and
commands the sim gate trusts (Send back, Out of service / In service for a supervisor)."""

from __future__ import annotations

import asyncio
import stat
import time
from pathlib import Path

import httpx
import pytest

from sim.rig import GATE, Rig
from sim.scenario import Identity, Traveller


def _login(client: httpx.Client, name: str, password: str) -> str:
    token = client.get("/api/login-token").json()["csrf"]
    resp = client.post(
        "/api/login", json={"name": name, "password": password}, headers={"x-csrf-token": token}
    )
    assert resp.status_code == 200, resp.text
    return str(resp.json()["csrf"])


def _console_sees(client: httpx.Client, state: str) -> None:
    """The officer clicks on what the card shows: the console hears of a state over the
    broker a moment after the rig's own monitor (a clean-clone run posted in_service
    while the console still showed IDLE, and the console rightly refused it)."""
    deadline = time.monotonic() + 10
    while True:
        (gate,) = [g for g in client.get("/api/hall").json()["gates"] if g["gate"] == GATE]
        if gate["state"] == state:
            return
        assert time.monotonic() < deadline, gate
        time.sleep(0.05)


def _command(client: httpx.Client, csrf: str, command: str) -> None:
    """As the page sends it: a decision names the referral on screen."""
    body: dict[str, str] = {}
    deadline = time.monotonic() + 10
    while command in ("release", "send_back") and not body:
        (gate,) = [g for g in client.get("/api/hall").json()["gates"] if g["gate"] == GATE]
        if gate["referral"] is not None:
            body = {"txn_id": gate["referral"]["txn_id"]}
        else:  # the console hears of the referral over the broker, a moment after the gate
            assert time.monotonic() < deadline, gate
            time.sleep(0.05)
    resp = client.post(
        f"/api/gates/{GATE}/cmd/{command}", headers={"x-csrf-token": csrf}, json=body
    )
    assert resp.status_code == 202, resp.text


async def _demo(run_dir: Path) -> None:
    rig = Rig(run_dir)
    await rig.start()
    try:
        lab = await asyncio.to_thread(rig.start_console)
        folder = lab.config.parent
        assert folder.parent == run_dir  # generated in the rig's folder, no /etc
        for secret in ("session.secret", "broker.password", "signing.pem", "officers.json"):
            assert stat.S_IMODE((folder / secret).stat().st_mode) == 0o600, secret
        expired = Traveller(identity=Identity(document_number="B11223344", expiry_in_days=-30))
        await rig.place_document(expired)
        rig.states_mark = len(rig.monitor.states)
        await rig.wait_state(expired, "REFERRED")

        with httpx.Client(base_url=lab.url, timeout=10) as officer:
            name, pw = lab.officers["officer"]
            csrf = await asyncio.to_thread(_login, officer, name, pw)
            mark = len(rig.monitor.events)
            await asyncio.to_thread(_command, officer, csrf, "send_back")
            ack = await asyncio.to_thread(rig.wait_ack, mark, 10)
            assert ack is not None and ack["accepted"] is True, ack  # not bad_signature
            await rig.remove_document(expired)
            await rig.wait_state(expired, "IDLE")

        with httpx.Client(base_url=lab.url, timeout=10) as supervisor:
            name, pw = lab.officers["supervisor"]
            csrf = await asyncio.to_thread(_login, supervisor, name, pw)
            for command, state in (("out_of_service", "OUT_OF_SERVICE"), ("in_service", "IDLE")):
                shown = "IDLE" if command == "out_of_service" else "OUT_OF_SERVICE"
                await asyncio.to_thread(_console_sees, supervisor, shown)
                mark = len(rig.monitor.events)
                await asyncio.to_thread(_command, supervisor, csrf, command)
                ack = await asyncio.to_thread(rig.wait_ack, mark, 10)
                assert ack is not None and ack["accepted"] is True, ack
                await rig.wait_state(expired, state)
    finally:
        await rig.stop()
    assert rig.console.proc.poll() is not None  # the console stops with the rig


def test_the_demo_console_commands_the_sim_gate(tmp_path: Path) -> None:
    asyncio.run(_demo(tmp_path / "rig"))


def test_the_lab_secret_survives_the_consoles_strip(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console strips whitespace off its secret file: random bytes that begin or end
    with a newline (about one lab in four) made the demo's console refuse to start."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from console.cli import build_console
    from console.config import load_console_config
    from sim.lab_console import write_lab_console

    monkeypatch.setattr("secrets.token_bytes", lambda n=32: b"\n" * n)  # the worst draw
    lab = write_lab_console(
        tmp_path, site="kul1", gates=["g01"], broker_port=1883, password="pw",
        key=Ed25519PrivateKey.generate(),
    )  # fmt: skip
    build_console(load_console_config(lab.config))  # raises on a short secret
