"""The centre of the fleet speaks TLS only: every client (bridges, monitor, console,
ingest) presents a client certificate and logs in with an account of its own; a
plaintext client finds nothing that answers MQTT."""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from pathlib import Path

import mqtt5
import pytest

from sim.bridge import bridge_account
from sim.broker import Broker, make_certs
from sim.national import CENTRAL_CLIENTS, central_broker

SITES = ["s01", "s02"]


@pytest.fixture()
def centre(tmp_path: Path) -> Iterator[Broker]:
    bridges = [bridge_account(s) for s in SITES]
    certs = make_certs(tmp_path / "certs", bridges + list(CENTRAL_CLIENTS))
    broker = central_broker(tmp_path, SITES, certs, {b: f"pw-{b}" for b in bridges})
    broker.start()
    yield broker
    broker.stop()


def _connack(sock: socket.socket, user: str, password: str) -> object:
    """An MQTT 5 CONNECT on ``sock``; the broker's answer (None: closed without one)."""
    sock.settimeout(10)
    sock.sendall(mqtt5.ConnectPacket(user, username=user, password=password.encode()).write())
    data = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except (ConnectionResetError, ssl.SSLError, TimeoutError):
            return None
        if not chunk:
            return None
        data += chunk
        try:
            return mqtt5.read(memoryview(data))[0]
        except IndexError:
            continue


def _tls(certs_dir: Path, client: str | None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(certs_dir / "ca.pem"))
    if client is not None:
        ctx.load_cert_chain(certs_dir / f"{client}.pem", certs_dir / f"{client}.key")
    return ctx


def test_a_plaintext_client_of_the_centre_is_refused(centre: Broker, tmp_path: Path):
    # the port a plaintext listener would have: nothing listens there
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", centre.port), timeout=5).close()
    # the TLS listener, spoken to in plaintext with a valid account: no CONNACK
    with socket.create_connection(("127.0.0.1", centre.tls_port), timeout=5) as plain:
        assert _connack(plain, "monitor", "pw-monitor") is None


def test_tls_needs_a_client_certificate_and_the_account_password(centre: Broker, tmp_path: Path):
    certs = tmp_path / "certs"

    def attempt(client: str | None, user: str, password: str) -> object:
        raw = socket.create_connection(("127.0.0.1", centre.tls_port), timeout=5)
        try:
            with _tls(certs, client).wrap_socket(raw, server_hostname="127.0.0.1") as s:
                return _connack(s, user, password)
        except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
            return None

    ok = attempt("monitor", "monitor", "pw-monitor")
    assert isinstance(ok, mqtt5.ConnAckPacket)
    assert ok.reason_code == mqtt5.ConnAckReasonCode.SUCCESS
    assert attempt(None, "monitor", "pw-monitor") is None  # no client certificate
    wrong = attempt("monitor", "monitor", "not-the-password")
    assert not (
        isinstance(wrong, mqtt5.ConnAckPacket)
        and wrong.reason_code == mqtt5.ConnAckReasonCode.SUCCESS
    )
