"""``autogate face verify`` and ``autogate face calibrate`` through ``add_subcommands``."""

from __future__ import annotations

import argparse
import json
import shutil

import pytest

from drivers import face_cli


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="autogate")
    face_cli.add_subcommands(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_verify_genuine_prints_json_and_exits_0(faces_dir, capsys):
    code = run(
        [
            "face",
            "verify",
            str(faces_dir / "london_006/01.jpg"),
            str(faces_dir / "london_006/02.jpg"),
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 0, out
    assert out["match"] is True and out["backend"] == "dlib"
    assert out["score"] >= out["threshold"]
    assert {"detect", "quality", "pad", "match"} <= set(out["timings_ms"])
    assert out["quality"]["measures"]["faces"] == 1
    assert "texture" in out["pad"]["cues"]


def test_verify_impostor_exits_1(faces_dir, capsys):
    code = run(
        [
            "face",
            "verify",
            str(faces_dir / "london_006/01.jpg"),
            str(faces_dir / "london_004/02.jpg"),
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["reasons"] == ["face_no_match"]


def test_verify_video_without_face_exits_1(faces_dir, capsys):
    code = run(
        [
            "face",
            "verify",
            str(faces_dir / "london_006/01.jpg"),
            str(faces_dir / "video/no_face.mp4"),
            "--frames",
            "3",
        ]
    )
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["reasons"] == ["face_not_found"]


def test_verify_unreadable_portrait_exits_2(faces_dir, tmp_path, capsys):
    bad = tmp_path / "dg2.jpg"
    bad.write_bytes((faces_dir / "london_006/01.jpg").read_bytes()[:300])
    code = run(["face", "verify", str(bad), str(faces_dir / "london_006/02.jpg")])
    out = json.loads(capsys.readouterr().out)
    assert code == 2 and out["reasons"] == ["face_unreadable"]


def test_calibrate_small_set_writes_threshold_and_det(faces_dir, tmp_path, capsys):
    data = tmp_path / "set"
    rows = ["a,b,same"]
    people = ["london_002", "london_004", "london_006", "london_009"]
    for p in people:
        (data / p).mkdir(parents=True)
        for n in ("01.jpg", "02.jpg"):
            shutil.copy(faces_dir / p / n, data / p / n)
        rows.append(f"{p}/01.jpg,{p}/02.jpg,1")
    for i, p in enumerate(people):
        for q in people[i + 1 :]:
            rows.append(f"{p}/01.jpg,{q}/02.jpg,0")
    (data / "pairs.csv").write_text("\n".join(rows) + "\n")
    (data / "manifest.csv").write_text(
        "path,identity,gender,ethnicity\n"
        + "".join(
            f"{p}/{n},{p},{'female' if i % 2 else 'male'},white\n"
            for i, p in enumerate(people)
            for n in ("01.jpg", "02.jpg")
        )
    )
    desc = tmp_path / "desc.json"
    shutil.copy(face_cli.REPO / "models/face/dlib_resnet_v1.json", desc)
    det = tmp_path / "det.png"
    code = run(
        [
            "face",
            "calibrate",
            str(data / "pairs.csv"),
            "--descriptor",
            str(desc),
            "--det",
            str(det),
            "--cache",
            str(tmp_path / "cache.npz"),
            "--target-fmr",
            "0.01",
            "--replace",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "female" in out and "FNMR" in out
    saved = json.loads(desc.read_text())
    assert saved["calibration"]["genuine_pairs"] == 4
    assert saved["calibration"]["impostor_pairs"] == 6
    # London same-session pairs separate: every genuine pair is above the threshold
    assert saved["calibration"]["fnmr_at_threshold"] == 0.0
    assert det.stat().st_size > 5000 and (tmp_path / "cache.npz").is_file()


def test_calibrate_missing_pairs_file_exits_2(tmp_path):
    assert run(["face", "calibrate", str(tmp_path / "nope.csv"), "--dry-run"]) == 2


@pytest.mark.parametrize("argv", [["face"], ["face", "verify"]])
def test_usage_errors(argv):
    with pytest.raises(SystemExit):
        run(argv)
