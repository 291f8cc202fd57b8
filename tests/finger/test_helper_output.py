"""Whatever the libfprint helper process sends back is an image or a reasoned refusal."""

from __future__ import annotations

import json

import pytest

from drivers.finger.libfprint import LibfprintReader
from drivers.finger.reader import NoFinger, ReaderFault


def _line(head: object, pixels: bytes = b"") -> bytes:
    return json.dumps(head).encode() + b"\n" + pixels


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"5\n",
        b"[1, 2]\n",
        b"null\n",
        _line({"width": "x", "height": 2}, b"\x00\x00"),
        _line({"width": 1, "height": 1, "ppmm": -3}, b"\x00"),
        _line({"width": 1, "height": 1, "ppmm": "wide"}, b"\x00"),
        _line({"width": 1, "height": 1, "ppmm": 1e300}, b"\x00"),
        _line({"width": 2, "height": 2}, b"\x00"),
        _line({"width": 1e9, "height": 1e9}),
        _line({"error": ["no_finger"]}),
    ],
)
def test_malformed_helper_output_is_a_reader_fault(raw: bytes) -> None:
    with pytest.raises(ReaderFault):
        LibfprintReader()._parse(raw, 0, None)


def test_the_helpers_answers_are_told_apart() -> None:
    r = LibfprintReader()
    with pytest.raises(NoFinger):
        r._parse(_line({"error": "no_finger", "detail": "no finger in 5 s"}), 0, None)
    cap = r._parse(
        _line({"width": 2, "height": 1, "ppmm": 19.685, "driver": "d"}, b"\x01\x02"), 0, None
    )
    assert cap.pixels == b"\x01\x02" and round(cap.resolution_ppi) == 500 and cap.check() is None
