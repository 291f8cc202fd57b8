"""The units pass ``systemd-analyze verify`` and score low exposure in ``security``."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "systemd"
ANALYZE = shutil.which("systemd-analyze")
needs_analyze = pytest.mark.skipif(ANALYZE is None, reason="systemd-analyze not installed")


def staged(tmp_path: Path) -> dict[str, Path]:
    """The units with ExecStart pointed at a stub: verify checks the binary exists."""
    stub = tmp_path / "autogate"
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    out = {}
    for unit, name in (
        ("autogate@.service", "autogate@gate-01.service"),
        ("autogate-console.service", "autogate-console.service"),
        ("autogate-ingest.service", "autogate-ingest.service"),
        ("autogate-ingest-serve.service", "autogate-ingest-serve.service"),
    ):
        text = (UNITS / unit).read_text().replace("/opt/autogate/venv/bin/autogate", str(stub))
        out[name] = tmp_path / name
        out[name].write_text(text)
    return out


def directives(unit: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for line in (UNITS / unit).read_text().splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_daemon_unit_has_what_the_issue_requires() -> None:
    d = directives("autogate@.service")
    assert d["Type"] == ["notify"] and d["Restart"] == ["on-failure"]
    assert d["WatchdogSec"] and d["User"] == ["autogate"]
    for key in ("ProtectSystem", "NoNewPrivileges", "PrivateTmp"):
        assert d[key] in (["strict"], ["yes"])
    assert d["CapabilityBoundingSet"] == [""]
    assert d["SystemCallFilter"][0] == "@system-service"
    assert d["ReadWritePaths"] == ["/var/lib/autogate/%i"]
    assert d["DevicePolicy"] == ["closed"] and len(d["DeviceAllow"]) >= 3
    creds = {v.split(":")[0] for v in d["LoadCredential"]}
    assert {"audit-signing-key", "referral-key"} <= creds


@needs_analyze
def test_units_verify(tmp_path: Path) -> None:
    units = staged(tmp_path)
    res = subprocess.run(
        [ANALYZE, "verify", *map(str, units.values())], capture_output=True, text=True, timeout=60
    )
    assert res.returncode == 0, res.stderr
    assert res.stderr.strip() == ""


@needs_analyze
@pytest.mark.parametrize(
    "name",
    [
        "autogate@gate-01.service",
        "autogate-console.service",
        "autogate-ingest.service",
        "autogate-ingest-serve.service",
    ],
)
def test_units_score_low_exposure(tmp_path: Path, name: str) -> None:
    unit = staged(tmp_path)[name]
    res = subprocess.run(
        [ANALYZE, "security", "--offline=yes", "--threshold=20", str(unit)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    match = re.search(r"Overall exposure level for \S+: ([0-9.]+) (\w+)", res.stdout)
    assert match, res.stdout + res.stderr
    score, label = float(match.group(1)), match.group(2)
    assert score <= 2.0 and label == "OK", res.stdout  # 1.4 (daemon), 1.2 (console, ingest)


def test_the_central_record_installs_as_services() -> None:
    """The national side is a release too: the ingest workers migrate the schema before
    they start, run as their own user, and take every secret from systemd's credentials
    (libpq's password file included), none from the command line; the entry service the
    departure gates ask runs as another user, on loopback behind the TLS proxy."""
    from autogate.cli import build_parser

    ingest = directives("autogate-ingest.service")
    assert ingest["ExecStartPre"][0].endswith("ingest migrate --config /etc/autogate/ingest.yaml")
    assert ingest["ExecStart"][0].endswith("ingest run --config /etc/autogate/ingest.yaml")
    assert ingest["User"] == ["autogate-ingest"] and ingest["RestartPreventExitStatus"] == ["2"]
    creds = {v.split(":")[0] for v in ingest["LoadCredential"]}
    assert {"broker-password", "document-key", "pgpass"} <= creds
    assert ingest["Environment"] == ["PGPASSFILE=%d/pgpass"]
    serve = directives("autogate-ingest-serve.service")
    assert serve["User"] != ingest["User"] and "--host 127.0.0.1" in serve["ExecStart"][0]
    assert "ReadWritePaths" not in serve and serve["ProtectSystem"] == ["strict"]
    for unit in (ingest, serve):
        for line in unit["ExecStart"] + unit.get("ExecStartPre", []):
            assert "password" not in line and "postgresql://" not in line
            argv = line.split()[1:]  # the command the unit runs parses with today's CLI
            build_parser(argv).parse_args(argv)
