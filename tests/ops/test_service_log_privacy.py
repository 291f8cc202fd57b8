"""The HTTP services' own logs (console, ingest ``serve``) carry no traveller's data.

uvicorn installs its own handlers unless told not to, and those bypass the masking
filter every other line goes through. A client can put anything in a request: h11
quotes a bad request line or header back in the exception uvicorn logs at WARNING. Each
service runs as its own process, as deployed; its whole log is searched afterwards.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml

from sim.broker import free_port
from tests.console.proc import ROOT, ConsoleProcess

# one traveller as a hostile or broken client might send them
NUMBER, SURNAME, GIVEN, BIRTH = "L898902C3", "ERIKSSON", "ANNAMARIA", "1974-08-12"
PERSONAL = (NUMBER, SURNAME, GIVEN, BIRTH, "740812")


def _hostile_requests(port: int) -> None:
    """Requests a service must refuse, each carrying the traveller's data."""
    bad = [
        f"GET /x HTTP/1.1\r\nHost: h\r\nX-{SURNAME} {GIVEN}: {NUMBER}\r\n\r\n",  # bad header
        f"GET /{NUMBER} {SURNAME} {BIRTH} HTTP/1.1\r\nHost: h\r\n\r\n",  # bad request line
        f"{SURNAME}/{NUMBER}/740812\r\n\r\n",
    ]
    for raw in bad:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(raw.encode())
            s.settimeout(5)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as c:
        c.get(f"/api/gates/{NUMBER}", params={"name": SURNAME, "birth": BIRTH})
        c.post("/v1/last-entry", content=f'{{"document_number": "{NUMBER}", "x": [')
        c.post("/v1/last-entry", json={"document_number": NUMBER, "birth": BIRTH})


def _assert_clean(log: str, where: str) -> None:
    """No traveller data, and every line came through the masking handler: a JSON
    object naming its logger (a line in any other shape bypassed the filter)."""
    found = [v for v in PERSONAL if v in log]
    assert not found, f"{found} in the {where} log:\n{log[-2000:]}"
    lines = [json.loads(x) for x in log.splitlines() if x.strip().startswith("{")]
    stray = [x for x in log.splitlines() if x.strip() and not x.strip().startswith("{")]
    assert not stray, f"lines that bypassed the masking handler in the {where} log: {stray}"
    assert any(x["logger"].startswith("uvicorn") for x in lines), lines  # routed, not lost


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"exited: {log.read_text(errors='replace')[-1000:]}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("did not listen") from None
            time.sleep(0.05)


def test_console_log_has_no_traveller_data(tmp_path: Path) -> None:
    console = ConsoleProcess(tmp_path / "console")
    try:
        _hostile_requests(console.port)
    finally:
        console.stop()
    log = (tmp_path / "console" / "console.log").read_text(errors="replace")
    _assert_clean(log, "console")


def test_ingest_service_log_has_no_traveller_data(tmp_path: Path) -> None:
    (tmp_path / "document.key").write_text("ab" * 32)
    cfg = yaml.safe_load((ROOT / "config" / "ingest.example.yaml").read_text())
    cfg["database"] = f"sqlite:///{tmp_path / 'record.sqlite'}"
    cfg["document_key_file"] = str(tmp_path / "document.key")
    cfg["broker"] = {"host": "127.0.0.1", "port": free_port(), "username": "ingest"}
    config = tmp_path / "ingest.yaml"
    config.write_text(yaml.safe_dump(cfg))
    cli = [sys.executable, "-m", "autogate.cli", "ingest"]
    subprocess.run([*cli, "migrate", "--config", str(config)], check=True, capture_output=True)
    port = free_port()
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [*cli, "serve", "--config", str(config), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    try:
        _wait_listening(port, proc, log)
        _hostile_requests(port)
    finally:
        proc.terminate()
        proc.wait(10)
    text = log.read_text(errors="replace")
    _assert_clean(text, "ingest serve")
