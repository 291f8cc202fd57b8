"""Issue 17 item 6: the console's audit journal is anchored by signed checkpoints.

The console runs as its own process with an audit signing key; an attacker with write
access to its disk then cuts the journal short, or rewrites it from the first line with
a fresh, self-consistent chain. ``autogate audit verify`` says so (rc 1), and the
console refuses to start on such a journal.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.journal import Journal, iter_records
from tests.console.proc import OFFICERS, ROOT, ConsoleProcess, login


def _verify(journal: Path, cps: Path, pub: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autogate.cli", "audit", "verify", str(journal),
         "--checkpoints", str(cps), "--public-key", str(pub)],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip


def test_cut_or_rechained_console_journal_is_detected(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    keyfile, pub = tmp_path / "audit-signing.pem", tmp_path / "audit-signing.pub"
    keyfile.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    pub.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    extra = {"audit_signing_key_file": str(keyfile)}
    console = ConsoleProcess(tmp_path / "console", extra=extra)
    try:
        with console.client() as c:
            assert login(c, "alice", "not-her-password").status_code == 401
            csrf = login(c, "alice", OFFICERS["alice"][1]).json()["csrf"]
            c.post("/api/logout", headers={"X-CSRF-Token": csrf})
    finally:
        console.stop()
    journal = console.audit
    cps = journal.with_name("audit.checkpoints.jsonl")
    kinds = [r["kind"] for r in iter_records(journal)]
    assert kinds == ["login.failed", "login", "logout"]
    assert _verify(journal, cps, pub).returncode == 0

    evidence = tmp_path / "evidence.jsonl"
    shutil.copy(journal, evidence)
    lines = evidence.read_text().splitlines(keepends=True)

    # 1. cut short: the logout (or any tail) removed; the chain itself is still intact
    journal.write_text("".join(lines[:-1]))
    r = _verify(journal, cps, pub)
    assert r.returncode == 1 and "NOT ANCHORED" in r.stdout

    # 2. rewritten from the first line: a fresh chain of innocent-looking records
    journal.unlink()
    forged = Journal(journal, fsync=False)
    for kind in ("login", "logout", "login"):
        forged.append(kind, {"officer": "alice"}, "2026-12-07T10:00:00.000Z")
    forged.close()
    r = _verify(journal, cps, pub)
    assert r.returncode == 1 and "rewritten" in r.stdout

    # and the console will not run on top of it
    again = subprocess.run(
        [sys.executable, "-m", "console.cli", "console", "--config", str(console.config)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert again.returncode == 2 and "does not match its signed checkpoints" in again.stderr
