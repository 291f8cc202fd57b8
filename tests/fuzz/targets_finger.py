"""Fuzz targets of the thumb channel: what the libfprint helper process sends back (a
JSON line, then the pixels), and the capture check that guards the matcher.

The native code itself (libfprint, NBIS mindtct and Bozorth3) runs in processes apart
(``drivers/finger/libfprint.py``, ``drivers/finger/isolated.py``): a crash there is a
refused thumb, shown by ``tests/finger/test_isolated.py``. A reasoned refusal here is
``ReaderFault`` or ``NoFinger``.
"""

from __future__ import annotations

import json

from drivers.finger.libfprint import LibfprintReader
from drivers.finger.reader import NoFinger, ReaderFault
from tests.fuzz.harness import Target

REFUSED = (ReaderFault, NoFinger)


def _seeds() -> list[bytes]:
    head = {"width": 16, "height": 12, "ppmm": 19.7, "driver": "virtual_image", "name": "v"}
    return [
        json.dumps(head).encode() + b"\n" + bytes(range(192)),
        json.dumps({"error": "no_finger", "detail": "no finger in 5 s"}).encode() + b"\n",
        json.dumps({"error": "fault", "detail": "capture failed"}).encode() + b"\n",
    ]


_READER = LibfprintReader()


def _helper_output(data: bytes) -> None:
    cap = _READER._parse(data, 0, None)
    if cap.check():  # the parser's own guard must hold: a capture it returns is an image
        raise AssertionError(f"a capture that is no image came through: {cap.check()}")


TARGETS: list[Target] = [Target("finger_helper_output", _seeds, _helper_output, REFUSED)]
