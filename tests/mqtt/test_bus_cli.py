"""``autogate mqtt keygen | sign | validate`` (through ``add_subcommands``)."""

from __future__ import annotations

import datetime as dt
import io
import json
import sys
from pathlib import Path

import pytest

from autogate.cli import main
from gate.commands import NonceStore, load_public_key, verify_command
from gate.inputs import Command, OfficerCommand


def test_keygen_then_sign_gives_a_command_the_gate_accepts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = tmp_path / "console-1"
    assert main(["mqtt", "keygen", str(name)]) == 0
    assert (tmp_path / "console-1.key").stat().st_mode & 0o077 == 0
    assert main(["mqtt", "keygen", str(name)]) == 2  # never overwrites a key (a user mistake)
    capsys.readouterr()
    argv = ["mqtt", "sign", "release", "--key", str(name) + ".key", "--key-id", "console-1"]
    assert main([*argv, "--site", "kul1", "--gate", "g01", "--officer", "o7", "--txn", "t1"]) == 0
    out = capsys.readouterr()
    assert out.err.strip() == "autogate/v1/kul1/g01/cmd/release"
    key = load_public_key((tmp_path / "console-1.pub").read_text())
    now = dt.datetime.now(dt.UTC)
    result = verify_command(
        out.out,
        topic_command="release",
        site="kul1",
        gate="g01",
        keys={"console-1": key},
        now=now,
        nonces=NonceStore(30, now - dt.timedelta(seconds=60)),
    )
    assert isinstance(result, OfficerCommand) and result.command is Command.RELEASE


def test_sign_refuses_a_key_that_is_not_ed25519(tmp_path: Path) -> None:
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    argv = ["mqtt", "sign", "release", "--key", str(bad), "--key-id", "k"]
    assert main([*argv, "--site", "kul1", "--gate", "g01", "--officer", "o7"]) == 2


def test_validate_reports_each_bad_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    good = {
        "schema": "alarm/1",
        "type": "alarm.raised",
        "event_id": "0b0e4c1e-4a8f-4c55-9b8e-0c2b3f0e7d11",
        "site": "kul1",
        "gate": "g01",
        "ts": "2026-11-25T10:00:00.000Z",
        "reasons": ["gate_tamper"],
    }
    f = tmp_path / "msgs.jsonl"
    f.write_text(json.dumps(good) + "\n" + json.dumps({**good, "reasons": []}) + "\nnot json\n")
    assert main(["mqtt", "validate", str(f)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split(":")[1] for ln in lines] == ["2", "3"]
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(good) + "\n"))
    assert main(["mqtt", "validate"]) == 0


def test_sign_binds_a_reset_to_its_alarm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name = tmp_path / "console-1"
    assert main(["mqtt", "keygen", str(name)]) == 0
    capsys.readouterr()
    argv = ["mqtt", "sign", "reset_alarm", "--key", str(name) + ".key", "--key-id", "console-1"]
    argv += ["--site", "kul1", "--gate", "g01", "--officer", "o7", "--alarm", "b1-a000003"]
    assert main(argv) == 0
    key = load_public_key((tmp_path / "console-1.pub").read_text())
    now = dt.datetime.now(dt.UTC)
    result = verify_command(
        capsys.readouterr().out,
        topic_command="reset_alarm",
        site="kul1",
        gate="g01",
        keys={"console-1": key},
        now=now,
        nonces=NonceStore(30, now - dt.timedelta(seconds=60)),
    )
    assert isinstance(result, OfficerCommand) and result.alarm_id == "b1-a000003"
