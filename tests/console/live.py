"""Real peers for the browser test and the benchmark: mosquitto, the console on uvicorn, Chromium."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import uvicorn

from autogate.logs import UVICORN_LOGGING
from console.app import Console, create_app
from console.mqtt import ConsoleBus
from sim.broker import PASSWORDS, SITE, Broker, acl_text, free_port, make_certs

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def gate_user(gate: str) -> tuple[str, str]:
    return f"gate-{SITE}-{gate}", f"pw-{gate}"


def hall_broker(tmp: Path, gates: list[str]) -> Broker:
    """The MQTT tests' mosquitto (password file + ACL), with one gate account per gate."""
    certs = make_certs(tmp / "certs", [])
    broker = Broker(tmp / "broker", certs)
    passwd = broker.directory / "passwd"
    for g in gates:
        user, pw = gate_user(g)
        if user not in PASSWORDS:
            subprocess.run(["mosquitto_passwd", "-b", str(passwd), user, pw], check=True)
    (broker.directory / "acl").write_text(acl_text(SITE, tuple(gates)))
    broker.start()
    return broker


class ConsoleServer:
    """The console app on uvicorn in a thread, with its real broker client."""

    def __init__(self, console: Console, broker_port: int, port: int | None = None) -> None:
        from console.config import BrokerConfig

        self.port = port or free_port()
        cfg = BrokerConfig(
            host="127.0.0.1",
            port=broker_port,
            password_file=Path("/dev/null"),
            client_id=f"console-test-{self.port}",
        )
        self.bus = ConsoleBus(cfg, SITE, PASSWORDS["console"], console.on_message)
        self.bus.on_link = console.on_link
        console.publisher = self.bus
        console.on_start = self.bus.start
        console.on_stop = self.bus.stop
        self.console = console
        config = uvicorn.Config(
            create_app(console),
            host="127.0.0.1",
            port=self.port,
            timeout_graceful_shutdown=1,
            **UVICORN_LOGGING,  # as console/cli.py runs it: through the masking handler
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("console did not start")
            time.sleep(0.02)
        if not self.bus.connected.wait(10):
            raise RuntimeError("console did not connect to the broker")

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.loop.run_until_complete(self.server.serve())
        self.loop.close()

    @property
    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def chrome(tmp: Path, width: int = 1400, height: int = 1000) -> Any:
    """Debian's headless Chromium through Debian's chromedriver (nothing downloaded)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        f"--user-data-dir={tmp}",
    ):
        opts.add_argument(flag)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
