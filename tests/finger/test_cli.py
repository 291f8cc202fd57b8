"""``autogate finger calibrate`` and ``autogate finger verify`` through ``add_subcommands``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from drivers import finger_cli
from drivers.finger.matcher import DEFAULT_DESCRIPTOR
from sim import fingerprints as fp


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="autogate")
    finger_cli.add_subcommands(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


@pytest.fixture(scope="module")
def pair_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fingers")
    fp.write_set(out, fingers=4, impressions=3)
    return out


def test_calibrate_writes_a_new_descriptor_and_leaves_the_shipped_one(
    pair_set, tmp_path, capsys
) -> None:  # type: ignore[no-untyped-def]
    shipped = DEFAULT_DESCRIPTOR.read_bytes()
    out = tmp_path / "finger.json"
    code = run(
        [
            "finger",
            "calibrate",
            str(pair_set / "pairs.csv"),
            "--out",
            str(out),
            "--label",
            "synthetic",
        ]
    )
    assert code == 0
    assert DEFAULT_DESCRIPTOR.read_bytes() == shipped
    desc = json.loads(out.read_text())
    cal = desc["calibration"]
    assert cal["genuine_pairs"] == 4 * 3 and cal["impostor_pairs"] == 4 * 3
    assert cal["label"] == "synthetic" and cal["target_fmr"] == 0.001
    assert cal["fmr_at_threshold"] <= 0.001  # no impostor pair reaches the threshold
    assert desc["threshold"] > 0 and desc["backend"] == "nbis"
    assert {g["attribute"] for g in cal["groups"]} == {"class"}
    assert out.with_suffix(".det.png").is_file()
    assert "synthetic" in capsys.readouterr().out


def test_calibrate_refuses_to_overwrite_the_descriptor_without_replace(pair_set, tmp_path) -> None:  # type: ignore[no-untyped-def]
    desc = tmp_path / "d.json"
    desc.write_bytes(DEFAULT_DESCRIPTOR.read_bytes())
    argv = ["finger", "calibrate", str(pair_set / "pairs.csv"), "--descriptor", str(desc)]
    assert run([*argv, "--out", str(desc)]) == 2
    assert run(["finger", "calibrate", str(tmp_path / "missing.csv")]) == 2


def test_verify_exits_0_on_a_match_1_on_none_2_on_an_unreadable_file(
    pair_set, tmp_path, capsys
) -> None:  # type: ignore[no-untyped-def]
    a, b, other = (str(pair_set / n) for n in ("f0001/0.png", "f0001/1.png", "f0002/1.png"))
    assert run(["finger", "verify", a, b]) == 0
    assert json.loads(capsys.readouterr().out)["matched"] is True
    assert run(["finger", "verify", a, other]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["matched"] is False and out["score"] < out["threshold"]
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    assert run(["finger", "verify", a, str(junk)]) == 2
    assert "cannot read" in capsys.readouterr().err
