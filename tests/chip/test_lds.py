"""LDS files: build and parse both ways, and bad bytes give only our error types."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.icao import lds
from drivers.icao.errors import ICAOError

from .conftest import SHARED

FACE = sorted(SHARED.glob("faces/london_*/01.jpg"))[0]


def test_dg2_round_trip_19794_5() -> None:
    jpeg = FACE.read_bytes()
    raw = lds.build_dg2(jpeg)
    p = lds.parse_dg2(raw)
    assert p.image == jpeg and p.format == "jpeg" and p.container == "19794-5"
    assert (p.width, p.height) == lds.image_size(jpeg)
    assert p.width > 0


def test_dg2_39794_5_container() -> None:
    jpeg = FACE.read_bytes()
    block = bytes.fromhex("A1 03 80 01 00".replace(" ", "")) + jpeg  # any DER prefix
    inst = lds.tlv.encode(0x7F60, lds.tlv.encode(0x7F2E, block))
    raw = lds.tlv.encode(0x75, lds.tlv.encode(0x7F61, lds.tlv.encode(0x02, b"\x01") + inst))
    p = lds.parse_dg2(raw)
    assert p.container == "39794-5" and p.image == jpeg and p.width > 0


def test_com_round_trip() -> None:
    assert lds.parse_com(lds.build_com([1, 2, 14, 15])).data_groups == (1, 2, 14, 15)


def test_td1_dg1() -> None:
    lines = (
        "I<UTOD231458907<<<<<<<<<<<<<<<",
        "7408122F1204159UTO<<<<<<<<<<<6",
        "ERIKSSON<<ANNA<MARIA<<<<<<<<<<",
    )
    rec = lds.dg1_to_mrz(lds.parse_dg1(lds.build_dg1(lines)))
    assert (rec.format, rec.document_number, rec.surname, rec.given_names) == (
        "TD1",
        "D23145890",
        "ERIKSSON",
        "ANNA MARIA",
    )
    assert rec.birth_raw == "740812" and rec.expiry_raw == "120415" and rec.nationality == "UTO"


@pytest.mark.parametrize("raw", ["", "61", "6103", "61035F1F00", "7503", "75027F61", "600A5C0299"])
def test_bad_files(raw: str) -> None:
    for fn in (lds.parse_dg1, lds.parse_dg2, lds.parse_com, lds.parse_dg14):
        with pytest.raises(ICAOError):
            fn(bytes.fromhex(raw))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120), st.sampled_from([0x61, 0x75, 0x60, 0x6E, 0x6F]))
def test_parsers_raise_only_icao_errors(body: bytes, tag: int) -> None:
    raw = lds.tlv.encode(tag, body)
    for data in (raw, body):
        for fn in (lds.parse_dg1, lds.parse_dg2, lds.parse_com, lds.parse_dg14, lds.parse_dg15):
            with contextlib.suppress(ICAOError):
                fn(data)


def test_td2_dg1() -> None:
    lines = ("I<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<", "D231458907UTO7408122F1204159<<<<<<<6")
    rec = lds.dg1_to_mrz(lds.parse_dg1(lds.build_dg1(lines)))
    assert (rec.format, rec.document_number, rec.surname, rec.birth_raw) == (
        "TD2",
        "D23145890",
        "ERIKSSON",
        "740812",
    )


def test_jpeg2000_portrait(tmp_path) -> None:
    from PIL import Image

    im = Image.open(FACE).resize((120, 150))
    im.save(tmp_path / "p.jp2")
    jp2 = (tmp_path / "p.jp2").read_bytes()
    p = lds.parse_dg2(lds.build_dg2(jp2))
    assert p.format == "jpeg2000" and (p.width, p.height) == (120, 150)


def test_truncated_portrait_is_not_a_portrait() -> None:
    """A DG2 that is fine as TLV but holds half a JPEG: caught by decoding, not later."""
    jpeg = FACE.read_bytes()
    raw = lds.build_dg2(jpeg[: len(jpeg) // 2])
    with pytest.raises(ICAOError):
        lds.parse_dg2(raw)
    assert lds.parse_dg2(raw, decode=False).format == "jpeg"


def test_access_key_of_long_document_number() -> None:
    """TD1 numbers over 9 characters continue in the optional data (9303-5 4.2.2)."""
    from drivers.icao.document import access_key
    from drivers.icao.keys import mrz_information

    lines = (
        "I<UTOD23145890<7349<<<<<<<<<<<",
        "3407127M9507122UTO<<<<<<<<<<<2",
        "STEVENSON<<PETER<JOHN<<<<<<<<<",
    )
    rec = lds.dg1_to_mrz(lines)
    assert rec.document_number == "D23145890734"
    assert access_key(rec) == mrz_information("D23145890734", "340712", "950712")
    assert (
        access_key(
            lds.dg1_to_mrz(
                (
                    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
                    "L898902C<3UTO6908061F9406236ZE184226B<<<<<14",
                )
            )
        )
        == "L898902C<369080619406236"
    )
