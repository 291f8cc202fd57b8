"""BER-TLV as ISO/IEC 7816-4 and ICAO 9303-10 use it (tags up to 3 bytes, definite lengths).

Hand-written because asn1crypto parses DER with universal semantics and refuses the
application-class constructed tags of the LDS (``61``, ``75``, ``7F61``...) as values;
here a TLV is just ``(tag, value)`` and every malformation raises ``TLVError``.
"""

from __future__ import annotations

from collections.abc import Iterator

from drivers.icao.errors import TLVError

MAX_LENGTH = 0xFFFFFF  # 9303 files fit in 3 length bytes; anything bigger is an attack


def read_tag(data: bytes, pos: int = 0) -> tuple[int, int]:
    """Return ``(tag, next_pos)``; multi-byte tags keep all their bytes (``0x7F61``)."""
    if pos >= len(data):
        raise TLVError("truncated: no tag")
    first = data[pos]
    tag = first
    pos += 1
    if first & 0x1F == 0x1F:
        for _ in range(2):
            if pos >= len(data):
                raise TLVError("truncated multi-byte tag")
            b = data[pos]
            tag = (tag << 8) | b
            pos += 1
            if not b & 0x80:
                break
        else:
            raise TLVError("tag longer than 3 bytes")
    if tag == 0:
        raise TLVError("tag 00")
    return tag, pos


def read_length(data: bytes, pos: int) -> tuple[int, int]:
    """Return ``(length, next_pos)`` for short and long definite forms (``81``..``84``)."""
    if pos >= len(data):
        raise TLVError("truncated: no length")
    first = data[pos]
    pos += 1
    if first < 0x80:
        return first, pos
    n = first & 0x7F
    if n == 0:
        raise TLVError("indefinite length not allowed")
    if n > 4:
        raise TLVError(f"length of {n} bytes")
    if pos + n > len(data):
        raise TLVError("truncated length")
    length = int.from_bytes(data[pos : pos + n], "big")
    if length > MAX_LENGTH:
        raise TLVError(f"length {length} overflows")
    return length, pos + n


def header_size(data: bytes) -> int:
    """Bytes of tag + length at the start of ``data``, and the whole TLV size; for reading
    a file whose length is only known once its header is in (``83 xx xx xx`` included)."""
    _, pos = read_tag(data)
    length, pos = read_length(data, pos)
    return pos + length


def decode(data: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """Decode one TLV at ``pos``: ``(tag, value, next_pos)``."""
    tag, pos = read_tag(data, pos)
    length, pos = read_length(data, pos)
    end = pos + length
    if end > len(data):
        raise TLVError(f"tag {tag:X}: value of {length} bytes, {len(data) - pos} present")
    return tag, bytes(data[pos:end]), end


def iter_tlv(data: bytes) -> Iterator[tuple[int, bytes]]:
    """All TLVs concatenated in ``data`` (the value of a constructed object)."""
    pos = 0
    while pos < len(data):
        tag, value, pos = decode(data, pos)
        yield tag, value


def unwrap(data: bytes, tag: int) -> bytes:
    """The value of the single TLV ``data`` must be, with tag ``tag`` (trailing bytes are
    tolerated: some chips pad files)."""
    got, value, _ = decode(data)
    if got != tag:
        raise TLVError(f"expected tag {tag:X}, got {got:X}")
    return value


def children(value: bytes) -> dict[int, bytes]:
    """Child TLVs by tag (first occurrence wins)."""
    out: dict[int, bytes] = {}
    for tag, v in iter_tlv(value):
        out.setdefault(tag, v)
    return out


def find(value: bytes, tag: int) -> bytes:
    for t, v in iter_tlv(value):
        if t == tag:
            return v
    raise TLVError(f"tag {tag:X} missing")


def encode_length(n: int) -> bytes:
    if n < 0 or n > MAX_LENGTH:
        raise TLVError(f"cannot encode length {n}")
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


def encode(tag: int, value: bytes) -> bytes:
    """One TLV; ``tag`` as an int of 1 to 3 bytes."""
    tag_bytes = tag.to_bytes(max(1, (tag.bit_length() + 7) // 8), "big")
    return tag_bytes + encode_length(len(value)) + value
