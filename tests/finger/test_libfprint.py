"""The libfprint reader, hardware-free: libfprint's own ``virtual_image`` driver takes an
image on a Unix socket (FP_VIRTUAL_IMAGE) as if a finger touched a sensor."""

from __future__ import annotations

import shutil
import socket
import struct
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from drivers.finger.config import FingerConfig, LibfprintReaderConfig
from drivers.finger.libfprint import LibfprintReader
from drivers.finger.reader import NoFinger, ReaderFault
from drivers.finger.verifier import build_verifier
from sim import fingerprints as fp
from sim.chip_eac import default_fingers

PY = Path("/usr/bin/python3")


def _have_libfprint() -> bool:
    import subprocess

    code = "import gi; gi.require_version('FPrint', '2.0'); from gi.repository import FPrint"
    return PY.exists() and subprocess.run([PY, "-c", code], capture_output=True).returncode == 0


# the README's test command turns a "not installed" skip into a failure (tests/conftest.py)
pytestmark = pytest.mark.skipif(
    not _have_libfprint(),
    reason="libfprint's GObject bindings not installed (./run setup installs libfprint-2-2, "
    "gir1.2-fprint-2.0, python3-gi)",
)


def _feed(path: str, img: np.ndarray, stop: threading.Event) -> None:
    """Touch the virtual sensor once: connect when the device has opened, send
    ``width, height`` (int32) and the pixels, as libfprint's own tests do."""
    while not stop.is_set():
        try:
            with socket.socket(socket.AF_UNIX) as s:
                s.connect(path)
                h, w = img.shape
                s.sendall(struct.pack("ii", w, h) + img.tobytes())
                stop.wait(5)
                return
        except OSError:
            time.sleep(0.05)


def _reader(tmp_path: Path) -> tuple[LibfprintReader, str]:
    sock = str(tmp_path / "fp.sock")
    cfg = LibfprintReaderConfig(device="virtual_image", environment={"FP_VIRTUAL_IMAGE": sock})
    return LibfprintReader(cfg), sock


def test_an_impression_comes_back_through_libfprint_unchanged(tmp_path: Path) -> None:
    reader, sock = _reader(tmp_path)
    img = fp.impression(2, 1)
    stop = threading.Event()
    t = threading.Thread(target=_feed, args=(sock, img, stop), daemon=True)
    t.start()
    try:
        cap = reader.capture(timeout_s=60)
    finally:
        stop.set()
        t.join()
    assert (cap.width, cap.height) == (img.shape[1], img.shape[0])
    assert cap.pixels == img.tobytes()
    # the virtual driver states no resolution: the configured one stands in
    assert cap.resolution_ppi == 500 and cap.device == "libfprint virtual_image"


def test_the_thumb_captured_through_libfprint_matches_the_chip(tmp_path: Path) -> None:
    reader, sock = _reader(tmp_path)
    stop = threading.Event()
    t = threading.Thread(target=_feed, args=(sock, fp.impression(2, 2), stop), daemon=True)
    t.start()
    v = build_verifier(FingerConfig(reader=reader.cfg))
    try:
        verdict = v.verify(default_fingers(seed=1), timeout_s=60)
    finally:
        stop.set()
        t.join()
        v.close()
    assert verdict.matched and not verdict.reader_fault, verdict


def test_no_touch_is_no_finger_and_a_cancel_kills_the_capture(tmp_path: Path) -> None:
    reader, _ = _reader(tmp_path)
    with pytest.raises(NoFinger):
        reader.capture(timeout_s=0.5)
    cancel = threading.Event()
    threading.Timer(1.0, cancel.set).start()
    t0 = time.monotonic()
    with pytest.raises(NoFinger, match="cancelled"):
        reader.capture(timeout_s=120, cancel=cancel)
    assert time.monotonic() - t0 < 60  # not the 120 s timeout (wide margin: loaded machine)


def test_a_missing_device_or_interpreter_is_a_reader_fault(tmp_path: Path) -> None:
    absent = LibfprintReader(LibfprintReaderConfig(device="no_such_driver"))
    with pytest.raises(ReaderFault, match="no fingerprint reader"):
        absent.capture(timeout_s=1)
    broken = LibfprintReader(LibfprintReaderConfig(python=tmp_path / "python3"))
    with pytest.raises(ReaderFault, match="cannot start"):
        broken.capture(timeout_s=1)
    assert shutil.which("true")
    wrong = LibfprintReader(LibfprintReaderConfig(python=Path(shutil.which("true") or "true")))
    with pytest.raises(ReaderFault, match="status 0"):
        wrong.capture(timeout_s=1)
