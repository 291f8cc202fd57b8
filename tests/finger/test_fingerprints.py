"""The synthetic fingerprint set: deterministic, fingerprint-like, written as a pair set
that the calibration reads exactly as it reads the faces' (a real set can replace it)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from drivers.face.calibrate import read_pairs
from drivers.icao import cbeff
from sim import fingerprints as fp
from sim.chip_eac import default_fingers


def test_an_impression_is_a_pure_function_of_finger_and_number() -> None:
    a, b = fp.impression(3, 1), fp.impression(3, 1)
    assert a.dtype == np.uint8 and a.shape == fp.IMPRESSION_SHAPE
    assert np.array_equal(a, b)
    assert not np.array_equal(a, fp.impression(3, 2))  # another touch of the same finger
    assert not np.array_equal(fp.master(3), fp.master(4))


def _ridge_period(img: np.ndarray) -> float:
    """Dominant ridge period (pixels) of the image's centre, from its 2-D spectrum."""
    h, w = img.shape
    c = img[h // 2 - 64 : h // 2 + 64, w // 2 - 64 : w // 2 + 64].astype(float)
    spec = np.abs(np.fft.fftshift(np.fft.fft2(c - c.mean())))
    yy, xx = np.mgrid[-64:64, -64:64]
    r = np.hypot(yy, xx)
    spec[r < 6] = 0  # the contact shape's low frequencies
    return 128 / float(r.flat[int(np.argmax(spec))])


def test_ridges_are_spaced_as_on_a_finger_at_500_ppi() -> None:
    # adult ridges are 0.4-0.55 mm apart: 8-11 pixels at 500 ppi
    for finger in range(4):
        assert 7.5 <= _ridge_period(fp.impression(finger, 0)) <= 11.5


def test_another_touch_of_a_finger_is_not_a_copy_of_the_first() -> None:
    a0, a1 = fp.impression(5, 0), fp.impression(5, 1)
    assert float(np.mean(a0 != a1)) > 0.5  # moved, distorted, noisy
    assert fp.finger_class(5) in fp.CLASSES


def test_the_set_is_a_pairs_csv_the_face_calibration_reads(tmp_path: Path) -> None:
    n = fp.main(["--out", str(tmp_path), "--fingers", "3", "--impressions", "3"])
    assert n == 0
    pairs = read_pairs(tmp_path / "pairs.csv")
    assert int(pairs.same.sum()) == 3 * 3  # every two of the three impressions, per finger
    assert int((~pairs.same).sum()) == 3 * 2  # impression 0 against the others' 1
    for name in pairs.images:
        with Image.open(tmp_path / name) as im:
            assert im.mode == "L" and round(im.info["dpi"][0]) == fp.PPI
    for a, b, same in zip(pairs.a, pairs.b, pairs.same, strict=True):
        assert (a.split("/")[0] == b.split("/")[0]) == bool(same)
    manifest = (tmp_path / "manifest.csv").read_text().splitlines()
    assert manifest[0] == "path,finger,impression,class" and len(manifest) == 1 + 9


def test_the_virtual_chip_carries_impression_0_of_the_seeded_finger() -> None:
    right, left = default_fingers(seed=2)
    assert (right.position, left.position) == (1, 6) and right.resolution_ppi == 500
    got = np.asarray(cbeff.decode(right), dtype=float)
    want = fp.impression(4, 0).astype(float)
    assert got.shape == want.shape == (right.height, right.width)
    assert np.corrcoef(got.ravel(), want.ravel())[0, 1] > 0.95  # JPEG 2000 is lossy
    other = fp.impression(5, 0).astype(float)
    assert np.corrcoef(got.ravel(), other.ravel())[0, 1] < 0.5
    assert Image.open(io.BytesIO(right.image)).format == "JPEG2000"
