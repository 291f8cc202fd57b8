"""``autogate face calibrate``: a new descriptor unless told to replace, a cache keyed by
content, and bursts fused as the verifier fuses them (issue 22.7, issue 23 part 3)."""

from __future__ import annotations

import argparse
import json
import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers import face_cli
from drivers.face import calibrate as cal
from drivers.face.detect import Detector
from drivers.face.match import DEFAULT_DESCRIPTOR, Descriptor, build_matcher

PEOPLE = ["london_002", "london_004", "london_006"]


def run(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="autogate")
    face_cli.add_subcommands(parser.add_subparsers(dest="cmd", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


def pair_set(faces_dir: Path, root: Path, people: list[str], names: list[str]) -> Path:
    """A pair set whose folders are called ``names`` but hold ``people``'s images."""
    rows = ["a,b,same"]
    for who, name in zip(people, names, strict=True):
        (root / name).mkdir(parents=True)
        for n in ("01.jpg", "02.jpg"):
            shutil.copy(faces_dir / who / n, root / name / n)
        rows.append(f"{name}/01.jpg,{name}/02.jpg,1")
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            rows.append(f"{a}/01.jpg,{b}/02.jpg,0")
    (root / "pairs.csv").write_text("\n".join(rows) + "\n")
    return root / "pairs.csv"


@pytest.fixture
def shipped(tmp_path: Path) -> Path:
    """A copy standing in for the shipped descriptor."""
    desc = tmp_path / "models" / "desc.json"
    desc.parent.mkdir()
    shutil.copy(DEFAULT_DESCRIPTOR, desc)
    return desc


def test_calibrate_writes_a_new_descriptor_and_leaves_the_shipped_one(
    faces_dir, tmp_path, shipped, monkeypatch
):
    pairs = pair_set(faces_dir, tmp_path / "set", PEOPLE, PEOPLE)
    before = shipped.read_bytes()
    doc_det = face_cli.REPO / "docs" / "face-det.png"
    det_mtime = doc_det.stat().st_mtime_ns if doc_det.exists() else None
    monkeypatch.chdir(tmp_path)
    argv = ["face", "calibrate", str(pairs), "--descriptor", str(shipped), "--target-fmr", "0.5"]
    assert run([*argv, "--cache", str(tmp_path / "c.npz")]) == 0
    assert shipped.read_bytes() == before
    new = tmp_path / "desc.calibrated.json"
    data = json.loads(new.read_text())
    assert data["calibration"]["genuine_pairs"] == 3
    assert data["derived_from"] == str(shipped)
    assert (tmp_path / "desc.calibrated.det.png").stat().st_size > 5000
    assert (doc_det.stat().st_mtime_ns if doc_det.exists() else None) == det_mtime


def test_calibrate_replace_updates_the_descriptor(faces_dir, tmp_path, shipped):
    pairs = pair_set(faces_dir, tmp_path / "set", PEOPLE, PEOPLE)
    det = tmp_path / "det.png"
    argv = ["face", "calibrate", str(pairs), "--descriptor", str(shipped), "--replace"]
    assert run([*argv, "--det", str(det), "--cache", str(tmp_path / "c.npz")]) == 0
    data = json.loads(shipped.read_text())
    assert data["calibration"]["genuine_pairs"] == 3 and "derived_from" not in data
    assert det.is_file()


def test_calibrate_dry_run_writes_nothing(faces_dir, tmp_path, shipped, monkeypatch):
    pairs = pair_set(faces_dir, tmp_path / "set", PEOPLE, PEOPLE)
    monkeypatch.chdir(tmp_path)
    argv = ["face", "calibrate", str(pairs), "--descriptor", str(shipped), "--dry-run"]
    assert run(argv) == 0
    assert not list(tmp_path.glob("*.json")) and not list(tmp_path.glob("*.png"))


def test_embedding_cache_is_keyed_by_content_not_path(faces_dir, tmp_path):
    """Two sets with the same file names and different people share no embedding."""
    desc = Descriptor.load(DEFAULT_DESCRIPTOR)
    matcher, det = build_matcher(desc), Detector()
    names = ["person_a", "person_b"]
    one = cal.read_pairs(pair_set(faces_dir, tmp_path / "one", PEOPLE[:2], names))
    two = cal.read_pairs(pair_set(faces_dir, tmp_path / "two", PEOPLE[1:3], names))
    cache = tmp_path / "cache.npz"
    v1 = cal.embed_images(one.root, one.images, matcher, det, cache, "t")
    v2 = cal.embed_images(two.root, two.images, matcher, det, cache, "t")
    # person_b of set one is person_a of set two (same bytes): the same embedding
    assert np.allclose(v1["person_b/01.jpg"], v2["person_a/01.jpg"])
    # person_a differs between the sets: a path-keyed cache would hand back set one's
    assert not np.allclose(v1["person_a/01.jpg"], v2["person_a/01.jpg"])
    fresh = cal.embed_images(two.root, two.images, matcher, det, None, "t")
    assert all(np.allclose(fresh[n], v2[n]) for n in two.images)


def test_burst_folders_are_fused_and_the_descriptor_says_so(
    faces_dir, tmp_path, shipped, monkeypatch
):
    root = tmp_path / "bursts"
    rows = ["a,b,same"]
    rng = np.random.default_rng(1)
    for who in PEOPLE:
        (root / who / "live").mkdir(parents=True)
        shutil.copy(faces_dir / who / "01.jpg", root / who / "01.jpg")
        img = cv2.imread(str(faces_dir / who / "02.jpg"))
        for n in range(4):  # the same face through sensor noise: a still traveller
            noisy = np.clip(img + rng.normal(0, 4, img.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / who / "live" / f"{n:02d}.jpg"), noisy)
    for a in PEOPLE:
        for b in PEOPLE:
            rows.append(f"{a}/01.jpg,{b}/live,{int(a == b)}")
    (root / "pairs.csv").write_text("\n".join(rows) + "\n")
    monkeypatch.chdir(tmp_path)
    argv = ["face", "calibrate", str(root / "pairs.csv"), "--descriptor", str(shipped)]
    assert run([*argv, "--fuse", "3", "--cache", str(tmp_path / "c.npz")]) == 0
    data = json.loads((tmp_path / "desc.calibrated.json").read_text())
    assert data["fusion"]["frames"] == 3
    assert data["calibration"]["genuine_pairs"] == 3
    assert data["calibration"]["images_without_face"] == 0
    assert os.path.getsize(tmp_path / "c.npz") > 0
