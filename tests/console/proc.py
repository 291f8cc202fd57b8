"""The console as its own process (``autogate console --config``), as an attacker meets it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from sim.broker import PASSWORDS, SITE, free_port

ROOT = Path(__file__).resolve().parents[2]
OFFICERS = {"alice": ("officer", "alice-password-1"), "sam": ("supervisor", "sam-password-12")}


def user_cli(officers: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``autogate console user ...`` as the administrator runs it, in its own process."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "console.cli",
            "console",
            "user",
            *args,
            "--officers",
            str(officers),
        ],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )


class ConsoleProcess:
    """Writes a lab config (secret, keys, officers) into ``tmp`` and runs the console."""

    def __init__(
        self,
        tmp: Path,
        *,
        broker_port: int | None = None,
        gates: tuple[str, ...] = ("g01",),
        listen: dict[str, Any] | None = None,
        session: dict[str, Any] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.tmp = tmp
        self.port = free_port()
        (tmp / "session.secret").write_bytes(os.urandom(48).hex().encode())
        (tmp / "broker.password").write_text(PASSWORDS["console"])
        self.signing_key = Ed25519PrivateKey.generate()
        (tmp / "signing.pem").write_bytes(
            self.signing_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.image_key = X25519PrivateKey.generate()
        (tmp / "image.pem").write_bytes(
            self.image_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        self.officers = tmp / "officers.json"
        for name, (role, pw) in OFFICERS.items():
            user_cli(self.officers, "add", name, "--role", role, "--password-stdin", stdin=pw)
        self.audit = tmp / "audit.jsonl"
        cfg: dict[str, Any] = {
            "site": SITE,
            "gates": list(gates),
            "broker": {
                "host": "127.0.0.1",
                "port": broker_port or free_port(),
                "username": "console",
                "password_file": str(tmp / "broker.password"),
                "client_id": "autogate-console-test",
            },
            "signing": {"key_file": str(tmp / "signing.pem"), "key_id": "console-1"},
            "officers_file": str(self.officers),
            "audit_file": str(self.audit),
            "image_key_file": str(tmp / "image.pem"),
            "session": {
                "secret_file": str(tmp / "session.secret"),
                "secure_cookie": False,
                **(session or {}),
            },
            "listen": {"host": "127.0.0.1", "port": self.port, **(listen or {})},
            **(extra or {}),
        }
        self.config = tmp / "console.yaml"
        self.config.write_text(yaml.safe_dump(cfg))
        self.log = open(tmp / "console.log", "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "console.cli", "console", "--config", str(self.config)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"console exited: {(tmp / 'console.log').read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError("console did not listen") from None
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kw: Any) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30, **kw)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()


def login_token(c: httpx.Client, headers: dict[str, str] | None = None) -> str:
    return str(c.get("/api/login-token", headers=headers).json()["csrf"])


def login(
    c: httpx.Client, name: str, password: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    token = login_token(c, headers)
    return c.post(
        "/api/login",
        json={"name": name, "password": password},
        headers={"X-CSRF-Token": token, **(headers or {})},
    )
