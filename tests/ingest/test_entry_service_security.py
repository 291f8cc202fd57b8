"""The entry service answers "is this traveller in the country, since when": only gates that
prove who they are may ask, over TLS, with bounded requests; the gate's adapters never
send a traveller's name or number over plain HTTP to another machine."""

from __future__ import annotations

import datetime as dt
import socket
import ssl
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import yaml

from autogate.ingest.entries import MAX_BODY, build_app
from autogate.ingest.records import to_record
from autogate.ingest.store import Store
from drivers.watchlist import build
from gate.config import HttpListsConfig
from sim.broker import free_port, make_certs
from tests.ingest.helpers import KEY, crossing, raw
from tests.policy.helpers import mrz

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime.now(dt.UTC)
CLI = [sys.executable, "-m", "autogate.cli", "ingest"]


def _config(tmp_path: Path, **extra: object) -> Path:
    (tmp_path / "document.key").write_bytes(KEY)
    url = f"sqlite:///{tmp_path / 'record.sqlite'}"
    store = Store(url)
    store.migrate()
    store.write([to_record(*raw(crossing("S1234567", nationality="SGP", ts=NOW)), KEY)])  # type: ignore[misc]
    store.close()
    cfg = {"database": url, "document_key_file": str(tmp_path / "document.key"), **extra}
    path = tmp_path / "ingest.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _serve(config: Path, port: int, log: Path, host: str = "127.0.0.1") -> subprocess.Popen[bytes]:
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*CLI, "serve", "--config", str(config), "--host", host, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text(errors="replace")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"entry service not listening: {log.read_text(errors='replace')}")


def test_off_loopback_without_tls_it_refuses_to_start(tmp_path: Path) -> None:
    res = subprocess.run(
        [*CLI, "serve", "--config", str(_config(tmp_path)), "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert res.returncode == 2, res.stderr
    assert "serve.tls" in res.stderr and "Traceback" not in res.stderr


def test_a_bad_service_key_is_one_line(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "pki", ["gate-01"])
    (tmp_path / "broken.key").write_text("not a key\n")
    tls = {"cert_file": str(certs.server_cert), "key_file": str(tmp_path / "broken.key"),
           "client_ca_file": str(certs.ca)}  # fmt: skip
    res = subprocess.run(
        [*CLI, "serve", "--config", str(_config(tmp_path, serve={"tls": tls}))],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert res.returncode == 2 and "serve.tls" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_only_a_gate_with_a_client_certificate_is_answered(tmp_path: Path) -> None:
    certs = make_certs(tmp_path / "pki", ["gate-01"])
    stranger = make_certs(tmp_path / "other-pki", ["intruder"])  # another CA's client
    tls = {"cert_file": str(certs.server_cert), "key_file": str(certs.server_key),
           "client_ca_file": str(certs.ca)}  # fmt: skip
    config = _config(tmp_path, serve={"tls": tls})
    port = free_port()
    proc = _serve(config, port, tmp_path / "serve.log")
    url = f"https://127.0.0.1:{port}"
    body = {"document_number": "S1234567", "issuing_state": "SGP", "nationality": "SGP"}
    try:
        # no client certificate, or one from another CA: the handshake fails, no answer
        for cert in (None, stranger.clients["intruder"]):
            ctx = ssl.create_default_context(cafile=certs.ca)
            if cert:
                ctx.load_cert_chain(*cert)
            with pytest.raises(httpx.HTTPError):
                httpx.post(f"{url}/v1/last-entry", json=body, verify=ctx, timeout=5)
        # plain HTTP on the TLS port gets nothing either
        try:
            r = httpx.post(f"http://127.0.0.1:{port}/v1/last-entry", json=body, timeout=5)
        except httpx.HTTPError:
            pass
        else:  # uvicorn may answer 400 before it closes
            assert r.status_code >= 400 and "last_entry" not in r.text
        # the gate, configured as a departure gate is: its certificate, the service's CA
        gate_cert, gate_key = certs.clients["gate-01"]
        cfg = HttpListsConfig(name="record", url=url, service="entries", ca_file=certs.ca,
                              cert_file=gate_cert, key_file=gate_key)  # fmt: skip
        adapter = build(cfg)

        async def ask():  # type: ignore[no-untyped-def]
            try:
                return await adapter.check(mrz(document_number="S1234567", nationality="SGP"))
            finally:
                await adapter.close()

        import asyncio

        got = asyncio.run(ask())
        assert got.entry_checked and got.last_entry == NOW.date()
    finally:
        proc.terminate()
        proc.wait(10)


async def test_an_oversized_request_is_refused_unread(tmp_path: Path) -> None:
    _config(tmp_path)
    app = build_app(Store(f"sqlite:///{tmp_path / 'record.sqlite'}", read_only=True), KEY)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://x") as c:
        padded = {"document_number": "S1234567", "pad": "x" * (MAX_BODY + 1)}
        r = await c.post("/v1/last-entry", json=padded)
        assert r.status_code == 413
        r = await c.post("/v1/last-entry", json={"document_number": "S1234567"})
        assert r.status_code == 200 and r.json()["last_entry"] is not None


@pytest.mark.parametrize(
    "url", ["http://watchlist.example/v1", "http://10.0.0.5:8080", "http://127.0.0.1.evil.example"]
)
def test_a_gate_never_sends_a_traveller_over_plain_http_to_another_machine(url: str) -> None:
    with pytest.raises(ValueError, match="https"):
        HttpListsConfig(name="national", url=url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://localhost:9000/x", "http://[::1]:80", "https://a.b"]
)
def test_loopback_and_https_are_allowed(url: str) -> None:
    assert HttpListsConfig(name="national", url=url).url == url


def test_client_certificate_and_key_go_together() -> None:
    with pytest.raises(ValueError, match="together"):
        HttpListsConfig(name="national", url="https://a.b", cert_file=Path("/x.pem"))


def test_a_client_that_never_finishes_its_request_is_cut_off(tmp_path: Path) -> None:
    # slowloris: uvicorn armed no timer on a new connection, so a client that sends a
    # request head a line at a time held a connection of the service for ever
    from autogate.http_deadline import REQUEST_TIMEOUT_S

    port = free_port()
    proc = _serve(_config(tmp_path), port, tmp_path / "serve.log")
    try:
        with socket.create_connection(("127.0.0.1", port)) as s:
            s.sendall(b"POST /v1/last-entry HTTP/1.1\r\n")
            s.settimeout(1.0)
            t0, closed = time.monotonic(), False
            while time.monotonic() - t0 < REQUEST_TIMEOUT_S + 10:
                try:
                    s.sendall(b"X-Pad: a\r\n")
                    if s.recv(4096) == b"":
                        closed = True
                        break
                except TimeoutError:
                    continue
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
            assert closed, "the entry service kept a trickling client"
            assert time.monotonic() - t0 < REQUEST_TIMEOUT_S + 5
        assert proc.poll() is None
    finally:
        proc.terminate()
        proc.wait(10)
