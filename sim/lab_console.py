"""The officers' console beside a rig: a lab config in the rig's folder, then the process.

Everything the console needs is generated here, so the demo runs with no /etc files:
the broker password (the rig's Mosquitto knows the ``console`` user), a session secret,
a demo officer and a supervisor with random passwords, and the rig's own command key
(the sim gate lists its public half under ``command_keys``; any other key would get
every Release / Send back / Reset answered ``bad_signature``).
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from sim.procs import stop_process


@dataclass
class LabConsole:
    config: Path
    url: str
    officers: dict[str, tuple[str, str]]  # role -> (name, password)
    proc: subprocess.Popen[bytes] | None = None

    def credentials(self) -> str:
        return ", ".join(f"{role} {n} / {pw}" for role, (n, pw) in self.officers.items())

    def stop(self) -> None:
        stop_process(self.proc)


def write_lab_console(
    folder: Path, *, site: str, gates: list[str], broker_port: int, password: str, key: Any
) -> LabConsole:
    """The lab config in ``folder`` (0600 secrets); ``key`` is the rig's Ed25519 key."""
    from cryptography.hazmat.primitives import serialization

    from console.auth import Officers
    from sim.broker import free_port

    folder.mkdir(parents=True, exist_ok=True)

    def secret(name: str, data: bytes) -> Path:
        path = folder / name
        path.write_bytes(data)
        path.chmod(0o600)
        return path

    secret("broker.password", password.encode())
    secret(
        "signing.pem",
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    # text, not raw bytes: the console strips whitespace off the file before its length check
    secret("session.secret", secrets.token_urlsafe(48).encode())
    officers = {
        "officer": ("demo-officer", secrets.token_urlsafe(9)),
        "supervisor": ("demo-supervisor", secrets.token_urlsafe(9)),
    }
    book = Officers(folder / "officers.json")
    for role, (name, pw) in officers.items():
        book.add(name, pw, role)
    port = free_port()
    cfg = {
        "site": site,
        "gates": gates,
        "broker": {
            "host": "127.0.0.1",
            "port": broker_port,
            "username": "console",
            "password_file": str(folder / "broker.password"),
            "client_id": f"lab-console-{secrets.token_hex(3)}",
        },
        "signing": {"key_file": str(folder / "signing.pem"), "key_id": "console"},
        "officers_file": str(folder / "officers.json"),
        "audit_file": str(folder / "audit.jsonl"),
        "session": {"secret_file": str(folder / "session.secret"), "secure_cookie": False},
        "listen": {"host": "127.0.0.1", "port": port},
    }
    path = folder / "console.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return LabConsole(path, f"http://127.0.0.1:{port}/", officers)


def start_lab_console(lab: LabConsole, timeout: float = 20.0) -> LabConsole:
    """Run ``autogate console`` on the lab config until its login page answers."""
    log = open(lab.config.parent / "console.log", "ab")  # noqa: SIM115 - owned by the process
    lab.proc = subprocess.Popen(
        [sys.executable, "-m", "autogate.cli", "console", "--config", str(lab.config)],
        cwd=lab.config.parent,
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
    )
    log.close()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.proc.poll() is not None:
            tail = (lab.config.parent / "console.log").read_text(errors="replace")[-600:]
            raise RuntimeError(f"console exited ({lab.proc.returncode}): {tail}")
        try:
            with urllib.request.urlopen(lab.url + "login", timeout=1) as resp:
                if resp.status == 200:
                    return lab
        except OSError:
            time.sleep(0.1)
    lab.stop()
    raise RuntimeError(f"console did not answer on {lab.url} in {timeout:.0f} s")
