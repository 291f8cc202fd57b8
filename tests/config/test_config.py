"""A bad gate config stops the daemon with one line naming the file and the field."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gate.config import ConfigError, load_config, parse_config
from gate.reasons import TEXT, ReasonCode

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "gate.example.yaml"


def autogate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autogate.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_example_config_is_valid() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.gate.id == "gate-01"
    assert cfg.timeouts.doc_check > 0


def test_every_example_line_is_commented() -> None:
    for n, line in enumerate(EXAMPLE.read_text().splitlines(), 1):
        if line.strip() and ":" in line and not line.strip().startswith("#"):
            assert "#" in line or line.rstrip().endswith(":"), f"line {n} has no comment: {line}"


BAD = {
    "unknown_key": ("gate: {site: s, id: g}\ncolour: red\n", "colour: unknown key"),
    "unknown_nested": (
        "gate: {site: s, id: g}\ntimeouts: {doc_chek: 3}\n",
        "timeouts.doc_chek: unknown key",
    ),
    "wrong_type": ("gate: {site: s, id: g}\ntimeouts: {doc_check: soon}\n", "timeouts.doc_check:"),
    "missing_field": ("timeouts: {doc_check: 3}\n", "gate: Field required"),
    "invalid_yaml": ("gate: {site: s, id: g\n", "invalid YAML"),
    "not_mapping": ("- a\n- b\n", "top level must be a mapping"),
    "bad_device_type": (
        "gate: {site: s, id: g}\ndevices: {barrier: {type: telepathy}}\n",
        "devices.barrier:",
    ),
    "bad_device_field": (
        "gate: {site: s, id: g}\ndevices: {barrier: {type: sim, speed: 3}}\n",
        "devices.barrier.speed: unknown key",
    ),
    "negative_timeout": ("gate: {site: s, id: g}\ntimeouts: {idle: -1}\n", "timeouts.idle:"),
    "bad_country": ("gate: {site: s, id: g}\npolicy: {eligible_nationalities: [sg]}\n", "policy"),
    # YAML's .inf / .nan are floats: "forever" or "never" where a period or a limit is
    # meant silently disables it (photos kept for ever, a state that never times out)
    "infinite_timeout": (
        "gate: {site: s, id: g}\ntimeouts: {doc_check: .inf}\n",
        "timeouts.doc_check:",
    ),
    "huge_timeout": (
        "gate: {site: s, id: g}\ntimeouts: {in_mantrap: 1e300}\n",
        "timeouts.in_mantrap:",
    ),
    "infinite_retention": (
        "gate: {site: s, id: g}\nops: {privacy: {retention_s: .inf}}\n",
        "ops.privacy.retention_s:",
    ),
    "infinite_hold": (
        "gate: {site: s, id: g}\nops: {privacy: {max_hold_s: .inf}}\n",
        "ops.privacy.max_hold_s:",
    ),
    "infinite_watchdog": (
        "gate: {site: s, id: g}\nops: {watchdog_stale_s: .inf}\n",
        "ops.watchdog_stale_s:",
    ),
    "huge_heartbeat": (
        "gate: {site: s, id: g}\ndevices: {bus: {type: mqtt, heartbeat_s: 1e300}}\n",
        "devices.bus.heartbeat_s:",
    ),
    "huge_breaker_reset": (
        "gate: {site: s, id: g}\n"
        "devices: {lists: {type: http, url: 'http://x', reset_after_s: 1e300}}\n",
        "devices.lists",
    ),
    "nan_sim_thumb": (
        "gate: {site: s, id: g}\ndevices: {thumb: {type: sim, threshold: .nan}}\n",
        "devices.thumb",
    ),
    "infinite_door_travel": (
        "gate: {site: s, id: g}\ndevices: {barrier: {type: sim, door_travel_s: .inf}}\n",
        "devices.barrier",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_config_gives_one_line_naming_file_and_field(case: str, tmp_path: Path) -> None:
    text, expected = BAD[case]
    path = tmp_path / f"{case}.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    msg = str(err.value)
    assert "\n" not in msg
    assert msg.startswith(str(path))
    assert expected in msg


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize("case", ["unknown_key", "wrong_type", "invalid_yaml", "missing_field"])
def test_check_config_cli_exits_2_with_one_line(case: str, tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(BAD[case][0])
    res = autogate("check-config", str(path))
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and BAD[case][1] in lines[0]


def test_check_config_cli_missing_file_exits_2(tmp_path: Path) -> None:
    res = autogate("check-config", str(tmp_path / "absent.yaml"))
    assert res.returncode == 2 and "file not found" in res.stderr


def test_check_config_cli_ok() -> None:
    res = autogate("check-config", str(EXAMPLE))
    assert res.returncode == 0, res.stderr


def test_run_with_bad_config_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_text(BAD["unknown_key"][0])
    res = autogate("run", "--config", str(path))
    assert res.returncode == 2


def test_parse_config_accepts_minimal() -> None:
    cfg = parse_config("gate: {site: s1, id: g1}\n")
    assert cfg.devices.barrier.type == "sim"


def test_every_reason_code_has_console_text() -> None:
    assert set(TEXT) == set(ReasonCode)
    assert all(code.value == code.value.lower() for code in ReasonCode)


def test_check_config_refuses_a_bad_policy_file(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("version: 1\nstate: MYS\nage: {min: 18, max: 12}\n")
    cfg = tmp_path / "gate.yaml"
    cfg.write_text(f"gate: {{site: s, id: g}}\npolicy: {{file: {policy}}}\n")
    res = autogate("check-config", str(cfg))
    assert res.returncode == 2
    assert str(policy) in res.stderr and "age" in res.stderr
