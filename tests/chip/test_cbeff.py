"""DG3 as CBEFF with ISO/IEC 19794-4 finger records: build, parse, decode, refuse."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from drivers.icao import cbeff, tlv
from drivers.icao.errors import ICAOError, LDSError
from sim.chip_eac import default_fingers, synthetic_thumb


def _wsq() -> bytes:
    import wsq  # noqa: F401

    im = Image.open(io.BytesIO(synthetic_thumb(3, 256))).convert("L")
    buf = io.BytesIO()
    im.save(buf, "WSQ")
    return buf.getvalue()


def test_dg3_round_trip_keeps_every_field_and_the_image_bytes() -> None:
    fingers = default_fingers()
    parsed = cbeff.parse_dg3(cbeff.build_dg3(fingers))
    assert list(parsed) == fingers
    assert parsed[1].position == 6 and parsed[0].resolution_ppi == 500


def test_wsq_and_jpeg2000_fingers_decode_to_grey_pixels() -> None:
    w = _wsq()
    fingers = [
        cbeff.FingerImage(1, 1, 70, 0, 256, 256, 500, 8, "wsq", w),
        default_fingers()[1],
    ]
    parsed = cbeff.parse_dg3(cbeff.build_dg3(fingers))
    assert parsed[0].image == w and parsed[0].compression == "wsq"
    for f in parsed:
        im = cbeff.decode(f)
        assert im.mode == "L" and im.size == (f.width, f.height)  # type: ignore[attr-defined]


def test_a_template_in_another_format_is_skipped_but_none_at_all_is_refused() -> None:
    dg3 = cbeff.build_dg3(default_fingers()[:1])
    other = dg3.replace(b"\x88\x02\x00\x07", b"\x88\x02\x00\x99")
    with pytest.raises(LDSError, match="no ISO 19794-4"):
        cbeff.parse_dg3(other)


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda r: r.replace(b"FIR\x00", b"FAC\x00"), "not an ISO 19794-4"),
        (lambda r: r[:29] + b"\x09" + r[30:], "compression 9"),
        (lambda r: r[:18] + b"\x00" + r[19:], "of 0 finger"),
        (lambda r: r[:18] + b"\x02" + r[19:], "truncated|does not fit"),
        (lambda r: r[:41] + b"\x00\x00" + r[43:], "of 0x400"),
        (lambda r: r[:8] + b"\x00\x00\x00\xff\xff\xff" + r[14:], "record length"),
        (lambda r: r[:32] + b"\x00\x00\x00\x05" + r[36:], "does not fit"),
    ],
)
def test_broken_finger_records_are_refused_with_a_reason(edit, why: str) -> None:  # type: ignore[no-untyped-def]
    record = cbeff.build_19794_4(default_fingers()[:1], 4)
    with pytest.raises(LDSError, match=why):
        cbeff.parse_19794_4(edit(record))


def test_a_lying_instance_count_and_a_corrupt_image_are_refused() -> None:
    dg3 = bytearray(cbeff.build_dg3(default_fingers()))
    i = dg3.index(b"\x02\x01\x02")
    dg3[i + 2] = 5
    with pytest.raises(ICAOError, match="counts 5"):
        cbeff.parse_dg3(bytes(dg3))
    f = default_fingers()[0]
    broken = cbeff.FingerImage(*[getattr(f, k) for k in f.__dataclass_fields__][:-1], f.image[:60])  # type: ignore[arg-type]
    with pytest.raises(LDSError, match="cannot be decoded"):
        cbeff.decode(broken)
    with pytest.raises(ICAOError):
        cbeff.parse_dg3(tlv.encode(0x63, b"\x7f\x61\x00"))


def test_a_wsq_stream_that_crashed_the_decoder_is_one_refused_image() -> None:
    """NBIS's WSQ decoder segfaulted on this DG3 (found by the fuzzer): decoded in the
    worker process, it is a refused image and the next finger decodes as usual."""
    from pathlib import Path

    seeds = Path(__file__).parents[1] / "fuzz/seeds/eac_dg3"
    crashed = 0
    for p in sorted(seeds.glob("wsq_decoder_segfault_*.bin")):
        try:
            for f in cbeff.parse_dg3(p.read_bytes()):
                cbeff.decode(f)
        except LDSError as exc:
            crashed += "crashed" in str(exc)
    assert crashed >= 1
    good = cbeff.FingerImage(1, 1, 70, 0, 256, 256, 500, 8, "wsq", _wsq())
    assert cbeff.decode(good).size == (256, 256)  # type: ignore[attr-defined]
