"""The converted face network is kept between starts, and a bad cache file is never used."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np
import pytest

from drivers.face import dlib_onnx, dlibmodels
from drivers.face.detect import Detector, decode_image
from drivers.face.match import DEFAULT_DESCRIPTOR, Descriptor, DlibMatcher, build_matcher
from drivers.face.model_cache import cache_path, load_or_build

GOOD = b"the converted graph"
PIN = hashlib.sha256(GOOD).hexdigest()


def _no_build() -> bytes:
    raise AssertionError("converted again although the cache was good")


def test_a_good_cache_file_is_loaded_without_converting(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "m.onnx"
    assert load_or_build(path, PIN, lambda: GOOD) == GOOD
    assert path.read_bytes() == GOOD
    assert load_or_build(path, PIN, _no_build) == GOOD


@pytest.mark.parametrize(
    "bad",
    [b"", GOOD[:-1], b"X" + GOOD[1:], b"another, valid-looking graph"],
    ids=["empty", "truncated", "one byte changed", "replaced"],
)
def test_a_damaged_or_altered_cache_file_is_rebuilt_and_logged(
    tmp_path: Path, bad: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "m.onnx"
    path.write_bytes(bad)
    built = []
    with caplog.at_level(logging.WARNING, "autogate.face"):
        got = load_or_build(path, PIN, lambda: built.append(1) or GOOD)
    assert got == GOOD and built == [1]
    assert path.read_bytes() == GOOD  # replaced by the good conversion
    assert "does not match" in caplog.text


def test_a_conversion_that_misses_the_pin_is_used_but_not_cached(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "m.onnx"
    with caplog.at_level(logging.WARNING, "autogate.face"):
        assert load_or_build(path, PIN, lambda: b"other onnx version") == b"other onnx version"
    assert not path.exists()
    assert "not cached" in caplog.text


def test_no_pin_or_no_folder_means_no_cache(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    assert load_or_build(path, None, lambda: GOOD) == GOOD
    assert not path.exists()
    assert load_or_build(None, PIN, lambda: GOOD) == GOOD


def test_an_unwritable_state_folder_still_starts(tmp_path: Path) -> None:
    """A file where the cache folder should be: the write fails for root too (a chmod'ed
    read-only folder would not stop root, and a skipped test proves nothing)."""
    blocker = tmp_path / "cache"
    blocker.write_bytes(b"a file where the folder should be")
    assert load_or_build(blocker / "m.onnx", PIN, lambda: GOOD) == GOOD


def test_the_descriptor_pins_what_the_converter_builds() -> None:
    """An onnx upgrade that serialises differently fails here: update the pin."""
    pin = Descriptor.load(DEFAULT_DESCRIPTOR).data["weights"]["onnx_sha256"]
    graph = dlib_onnx.to_onnx(dlib_onnx.read_dlib_resnet(dlibmodels.model_path("resnet")))
    assert hashlib.sha256(graph).hexdigest() == pin


def test_the_matcher_starts_from_its_cache_with_the_same_embeddings(
    tmp_path: Path, faces_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    img = decode_image(sorted((faces_dir / "Yao_Ming").glob("*.jpg"))[0].read_bytes())
    assert img is not None
    face = Detector().detect(img)[0]
    descriptor = Descriptor.load(DEFAULT_DESCRIPTOR)
    first = build_matcher(descriptor, cache_dir=tmp_path)
    source_sha = dlibmodels.sha256(dlibmodels.model_path("resnet"))
    assert cache_path(tmp_path, "dlib_resnet_v1", source_sha).is_file()

    def no_conversion(*_a: object) -> bytes:
        raise AssertionError("the second start converted dlib's file again")

    monkeypatch.setattr(dlib_onnx, "to_onnx", no_conversion)
    second = build_matcher(descriptor, cache_dir=tmp_path)
    assert isinstance(second, DlibMatcher)
    assert np.array_equal(first.embed(img, face), second.embed(img, face))


def test_a_tampered_cache_never_changes_the_embedding(
    tmp_path: Path, faces_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A working graph with other weights in the cache file is refused, not loaded."""
    img = decode_image(sorted((faces_dir / "Halle_Berry").glob("*.jpg"))[0].read_bytes())
    assert img is not None
    face = Detector().detect(img)[0]
    net = dlib_onnx.read_dlib_resnet(dlibmodels.model_path("resnet"))
    evil = dlib_onnx.DlibResnet(net.mean_rgb, net.convs, net.affines, net.fc * 0.5)
    source_sha = dlibmodels.sha256(dlibmodels.model_path("resnet"))
    path = cache_path(tmp_path, "dlib_resnet_v1", source_sha)
    path.write_bytes(dlib_onnx.to_onnx(evil))
    descriptor = Descriptor.load(DEFAULT_DESCRIPTOR)
    with caplog.at_level(logging.WARNING, "autogate.face"):
        cached = build_matcher(descriptor, cache_dir=tmp_path)
    plain = build_matcher(descriptor)
    assert np.array_equal(cached.embed(img, face), plain.embed(img, face))
    assert "does not match" in caplog.text
