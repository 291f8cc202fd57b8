"""The console's CLI (officer list) and config file."""

from __future__ import annotations

import argparse
import io
import json
import stat
from pathlib import Path

import pytest

from console.auth import Officers
from console.cli import add_subcommands
from console.config import ConsoleConfigError, load_console_config, parse_console_config
from tests.console.helpers import FAST_HASHER

ROOT = Path(__file__).resolve().parents[2]


def run(argv: list[str], stdin: str = "", monkeypatch: pytest.MonkeyPatch | None = None) -> int:
    p = argparse.ArgumentParser(prog="autogate")
    sub = p.add_subparsers(dest="command", required=True)
    add_subcommands(sub)
    args = p.parse_args(argv)
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return args.func(args)


def test_user_add_and_disable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    # the same Argon2id, with small work factors (the test checks behaviour, not cost)
    monkeypatch.setattr("console.auth.PasswordHasher", lambda: FAST_HASHER)
    f = tmp_path / "officers.json"
    base = ["console", "user"]
    assert (
        run(
            base + ["add", "alice", "--officers", str(f), "--password-stdin"],
            "correct horse battery\n",
            monkeypatch,
        )
        == 0
    )
    assert (
        run(
            base + ["add", "sam", "--role", "supervisor", "--officers", str(f), "--password-stdin"],
            "staple battery horse\n",
            monkeypatch,
        )
        == 0
    )
    assert stat.S_IMODE(f.stat().st_mode) == 0o600
    data = json.loads(f.read_text())
    assert data["officers"]["alice"]["hash"].startswith("$argon2id$")
    assert "correct horse" not in f.read_text()
    officers = Officers(f)
    assert officers.check("alice", "correct horse battery") is not None
    assert officers.check("alice", "wrong") is None
    assert officers.check("sam", "staple battery horse").role.value == "supervisor"
    assert run(base + ["disable", "alice", "--officers", str(f)]) == 0
    assert officers.check("alice", "correct horse battery") is None
    assert run(base + ["disable", "nobody", "--officers", str(f)]) == 2
    assert (
        run(
            base + ["add", "x", "--officers", str(f), "--password-stdin"],
            "long enough pw\n",
            monkeypatch,
        )
        == 2
    )  # name too short
    assert (
        run(base + ["add", "bob", "--officers", str(f), "--password-stdin"], "short\n", monkeypatch)
        == 2
    )
    capsys.readouterr()
    assert run(base + ["list", "--officers", str(f)]) == 0
    out = capsys.readouterr().out
    assert "alice\tofficer\tdisabled" in out and "sam\tsupervisor\tactive" in out


def test_user_add_finds_officers_file_through_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("console.auth.PasswordHasher", lambda: FAST_HASHER)
    text = (ROOT / "config" / "console.example.yaml").read_text()
    cfg = tmp_path / "c.yaml"
    f = tmp_path / "officers.json"
    cfg.write_text(text.replace("/var/lib/autogate-console/officers.json", str(f)))
    for argv in (
        ["console", "--config", str(cfg), "user", "add", "alice", "--password-stdin"],
        ["console", "user", "add", "bob", "--config", str(cfg), "--password-stdin"],
    ):
        assert run(argv, "a long password\n", monkeypatch) == 0
    assert {o.name for o in Officers(f).all()} == {"alice", "bob"}


def test_example_config_is_valid() -> None:
    cfg = load_console_config(ROOT / "config" / "console.example.yaml")
    assert cfg.site == "kul1" and cfg.session.secure_cookie


@pytest.mark.parametrize(
    "patch",
    [
        {"sesion": {}},  # typo of a section
        {"site": "KUL 1"},
        {"broker": {"password_file": "/x", "port": 70000}},
        {"signing": {"key_file": "/k", "key_id": "bad id!"}},
    ],
)
def test_bad_config_is_refused(patch: dict) -> None:
    import yaml

    base = yaml.safe_load((ROOT / "config" / "console.example.yaml").read_text())
    base.update(patch)
    with pytest.raises(ConsoleConfigError):
        parse_console_config(yaml.safe_dump(base))


def test_serve_with_missing_secret_is_a_config_error(tmp_path: Path) -> None:
    text = (ROOT / "config" / "console.example.yaml").read_text()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text.replace("/etc/autogate/console/session.secret", str(tmp_path / "none")))
    assert run(["console", "--config", str(cfg)]) == 2


def test_image_key_is_made_once_private_and_its_public_half_fits_a_gate(
    tmp_path: Path, capsys
) -> None:
    from gate.config import MqttBusConfig
    from gate.referral_image import load_public_key

    key = tmp_path / "image.pem"
    assert run(["console", "image-key", str(key)]) == 0
    first = capsys.readouterr().out.strip()
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert run(["console", "image-key", str(key)]) == 0  # never replaced: prints the same
    assert capsys.readouterr().out.strip() == first
    load_public_key(first)
    assert MqttBusConfig(image_key=first).image_key == first
    with pytest.raises(ValueError):
        MqttBusConfig(image_key="bm90IGEga2V5")  # not 32 bytes
