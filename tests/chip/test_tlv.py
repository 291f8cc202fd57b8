"""BER-TLV: known encodings, and on arbitrary bytes nothing but TLVError."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.icao import tlv
from drivers.icao.errors import TLVError


@pytest.mark.parametrize(
    ("tag", "n", "header"),
    [
        (0x61, 5, "6105"),
        (0x75, 200, "7581C8"),
        (0x7F61, 300, "7F6182012C"),
        (0x75, 70000, "7583011170"),
    ],
)
def test_encode_decode(tag: int, n: int, header: str) -> None:
    raw = tlv.encode(tag, bytes(n))
    assert raw.hex().upper().startswith(header)
    assert tlv.decode(raw) == (tag, bytes(n), len(raw))
    assert tlv.header_size(raw[:8]) == len(raw)


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "61",
        "6105010203",
        "7F",
        "7F7F7F7F01",
        "6180",
        "618500000000010000",
        "6184FFFFFFFF00",
        "0000",
        "61820100",
    ],
)
def test_malformed(raw: str) -> None:
    with pytest.raises(TLVError):
        list(tlv.iter_tlv(bytes.fromhex(raw))) if raw else tlv.decode(b"")
        tlv.decode(bytes.fromhex(raw))


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=64))
def test_arbitrary_bytes_raise_only_tlv_error(data: bytes) -> None:
    for fn in (
        tlv.decode,
        tlv.header_size,
        lambda d: list(tlv.iter_tlv(d)),
        lambda d: tlv.children(d),
    ):
        with contextlib.suppress(TLVError):
            fn(data)


@given(
    st.lists(
        st.tuples(st.sampled_from([0x5F1F, 0x61, 0x7F61, 0x02, 0x5F2E]), st.binary(max_size=300))
    )
)
def test_round_trip(items: list[tuple[int, bytes]]) -> None:
    raw = b"".join(tlv.encode(t, v) for t, v in items)
    assert list(tlv.iter_tlv(raw)) == items
