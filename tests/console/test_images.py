"""The referral-image message: built by the gate, read strictly by the console."""

from __future__ import annotations

import base64
import json

import pytest

from console.images import (
    MAX_IMAGE_BYTES,
    ImageMessageError,
    build_image_message,
    parse_image_message,
)
from tests.console.helpers import jpeg

P, F = jpeg((1, 2, 3)), jpeg((4, 5, 6))


def _msg(**kw) -> dict:
    t, raw = build_image_message(
        site="kul1",
        gate="g01",
        txn_id="b1-000001",
        portrait_jpeg=P,
        frame_jpeg=F,
        match=0.5,
        pad=0.1,
        **kw,
    )
    assert t == "autogate/v1/kul1/g01/event/referral-image"
    return json.loads(raw)


def test_roundtrip() -> None:
    got = parse_image_message(_msg(), "kul1", "g01")
    assert (got.portrait, got.frame, got.txn_id) == (P, F, "b1-000001")
    assert got.scores == {"match": 0.5, "pad": 0.1}


def test_gate_refuses_to_build_non_jpeg_or_huge() -> None:
    with pytest.raises(ImageMessageError):
        build_image_message(
            site="kul1", gate="g01", txn_id="t", portrait_jpeg=b"GIF89a", frame_jpeg=None
        )
    with pytest.raises(ImageMessageError):
        build_image_message(
            site="kul1",
            gate="g01",
            txn_id="t",
            portrait_jpeg=P + b"\0" * MAX_IMAGE_BYTES,
            frame_jpeg=None,
        )


@pytest.mark.parametrize(
    "mutate",
    [
        lambda m: m.update(schema="referral.image/2"),
        lambda m: m.update(gate="g02"),
        lambda m: m.update(txn_id=""),
        lambda m: m.update(scores={"match": "high"}),
        lambda m: m.update(scores={"age": 3}),
        lambda m: m["portrait"].update(mime="image/png"),
        lambda m: m["portrait"].update(data="not base64!"),
        lambda m: m["frame"].update(data=base64.b64encode(b"<html>").decode()),
        lambda m: m.pop("ts"),
    ],
    ids=["schema", "gate", "txn", "score-type", "score-name", "mime", "b64", "not-jpeg", "ts"],
)
def test_console_refuses_bad_messages(mutate) -> None:
    m = _msg()
    mutate(m)
    with pytest.raises(ImageMessageError):
        parse_image_message(m, "kul1", "g01")
