"""``autogate chip readers|read`` through ``add_subcommands`` (the lead's CLI hook)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from drivers.chip_cli import add_subcommands
from sim.chip import Faults, VirtualChip


def run(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(prog="autogate")
    add_subcommands(ap.add_subparsers(dest="command", required=True))
    args = ap.parse_args(argv)
    return args.func(args)


def test_readers(pcscd, capsys) -> None:
    assert run(["chip", "readers"]) == 0
    assert "Virtual PCD 00 00" in json.loads(capsys.readouterr().out)["readers"]


def test_read_writes_portrait_and_files(vpcd, tmp_path: Path, capsys) -> None:
    chip = VirtualChip()
    vpcd(chip)
    chip.trusted.write_csca(tmp_path / "csca")
    argv = [
        "chip",
        "read",
        "--document-number",
        "L898902C3",
        "--birth",
        "740812",
        "--expiry",
        "341231",
    ]
    rc = run([*argv, "--csca", str(tmp_path / "csca"), "--out", str(tmp_path / "out")])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0, out
    assert out["access_control"] == "PACE" and out["passive_auth"]["result"] == "passed"
    assert out["active_auth"] == "passed" and out["dg1"]["surname"] == "ERIKSSON"
    assert out["portrait"]["format"] == "jpeg" and out["apdus"] == sum(
        s["apdus"] for s in out["steps"].values()
    )
    assert (tmp_path / "out" / "portrait.jpg").read_bytes()[:3] == b"\xff\xd8\xff"
    assert (tmp_path / "out" / "DG1.bin").exists() and (tmp_path / "out" / "SOD.bin").exists()


def test_read_without_trust_reports_reason(vpcd, capsys) -> None:
    chip = VirtualChip(pace=False, faults=Faults(wrong_dg_hash=True))
    vpcd(chip)
    rc = run(
        [
            "chip",
            "read",
            "--document-number",
            "L898902C3",
            "--birth",
            "740812",
            "--expiry",
            "341231",
            "--compact",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert rc == 1 and out["access_control"] == "BAC"
    assert set(out["reasons"]) == {"chip_dg_hash", "chip_csca_unknown"}
    assert out["active_auth"] == "not_run"  # AA is not trusted without passive authentication


def test_no_reader(pcscd, capsys) -> None:
    rc = run(
        [
            "chip",
            "read",
            "--reader",
            "Nope",
            "--document-number",
            "X",
            "--birth",
            "740812",
            "--expiry",
            "341231",
        ]
    )
    assert rc == 2 and "error" in json.loads(capsys.readouterr().out)


def test_read_with_eac_writes_the_fingers(vpcd, tmp_path: Path, capsys) -> None:
    from sim import eac_pki
    from sim.chip_eac import EACChip

    chip = EACChip()
    vpcd(chip)
    chip.trusted.write_csca(tmp_path / "csca")
    eac = eac_pki.write_trust(tmp_path / "eac")
    argv = ["chip", "read", "--document-number", "L898902C3", "--birth", "740812"]
    argv += ["--expiry", "341231", "--csca", str(tmp_path / "csca"), "--eac", str(eac)]
    rc = run([*argv, "--out", str(tmp_path / "out")])
    out = json.loads(capsys.readouterr().out)
    assert rc == 0, out
    assert out["terminal_auth"]["result"] == "passed" and len(out["fingers"]) == 2
    assert (tmp_path / "out" / "finger0_pos1.jp2").read_bytes() == chip.fingers[0].image
