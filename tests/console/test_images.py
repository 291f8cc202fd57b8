"""The referral-image message: sealed by the gate to the console's key, opened strictly."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gate.referral_image import (
    MAX_IMAGE_BYTES,
    ImageMessageError,
    build_image_message,
    open_image_message,
)
from tests.console.helpers import IMAGE_KEY, jpeg

P, F = jpeg((1, 2, 3)), jpeg((4, 5, 6))


def _raw(**kw) -> bytes:
    t, raw = build_image_message(
        site="kul1",
        gate="g01",
        txn_id="b1-000001",
        portrait_jpeg=P,
        frame_jpeg=F,
        recipient=IMAGE_KEY.public_key(),
        match=0.5,
        pad=0.1,
        **kw,
    )
    assert t == "autogate/v1/kul1/g01/event/referral-image"
    return raw


def test_roundtrip() -> None:
    got = open_image_message(json.loads(_raw()), "kul1", "g01", IMAGE_KEY)
    assert (got.portrait, got.frame, got.txn_id) == (P, F, "b1-000001")
    assert got.scores == {"match": 0.5, "pad": 0.1}


def test_on_the_wire_there_is_no_photo_not_even_in_base64() -> None:
    raw = _raw()
    for img in (P, F):
        assert img[100:140] not in raw and base64.b64encode(img)[100:140] not in raw
        assert base64.b64encode(img[99:129]) not in raw


def test_wipe_overwrites_the_photos_in_place() -> None:
    got = open_image_message(json.loads(_raw()), "kul1", "g01", IMAGE_KEY)
    buf = got.buffer
    assert P in buf and F in buf
    got.wipe()
    assert got.portrait is None and got.frame is None and not any(buf)


def test_gate_refuses_to_build_non_jpeg_or_huge() -> None:
    for portrait in (b"GIF89a", P + b"\0" * MAX_IMAGE_BYTES):
        with pytest.raises(ImageMessageError):
            build_image_message(
                site="kul1",
                gate="g01",
                txn_id="t",
                portrait_jpeg=portrait,
                frame_jpeg=None,
                recipient=IMAGE_KEY.public_key(),
            )


def _flip(m: dict) -> None:
    ct = bytearray(base64.b64decode(m["enc"]["ct"]))
    ct[5] ^= 1
    m["enc"]["ct"] = base64.b64encode(bytes(ct)).decode()


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m.update(schema="referral.image/1"),
        lambda m: m.update(gate="g02"),
        lambda m: m.update(txn_id=""),
        lambda m: m.update(txn_id="b1-000002"),  # moved to another transaction: AAD
        lambda m: m.update(ts="2030-01-01T00:00:00.000Z"),
        lambda m: m["enc"].update(alg="none"),
        lambda m: m["enc"].update(epk="not base64!"),
        lambda m: m["enc"].update(nonce=base64.b64encode(b"short").decode()),
        lambda m: m["enc"].update(kid="0" * 16),
        _flip,
        lambda m: m.pop("ts"),
        lambda m: m.pop("enc"),
    ],
    ids=[
        "old-clear-schema",
        "gate",
        "txn",
        "txn-moved",
        "ts-moved",
        "alg",
        "epk",
        "nonce",
        "kid",
        "ciphertext-flipped",
        "no-ts",
        "no-enc",
    ],
)
def test_console_refuses_bad_or_altered_messages(mutate) -> None:
    m = json.loads(_raw())
    mutate(m)
    with pytest.raises(ImageMessageError):
        open_image_message(m, "kul1", "g01", IMAGE_KEY)


def test_another_key_cannot_open_it() -> None:
    with pytest.raises(ImageMessageError):
        open_image_message(json.loads(_raw()), "kul1", "g01", X25519PrivateKey.generate())
