"""An event two readers could read differently is refused before any field is used, and a
message costs a bounded amount before it is parsed (docs/ingest.md, "One reading")."""

from __future__ import annotations

import json
import time

import pytest

from autogate.ingest.records import MAX_DEPTH, MAX_EVENT_BYTES, Reject, Row, to_record
from tests.ingest.helpers import KEY, crossing, raw


def _body(**replace: str) -> tuple[str, bytes]:
    """A valid crossing's topic and bytes, with fields spelled by hand (``key=raw json``)
    in place of its own; ``direction`` is added a second time."""
    topic, payload = crossing()
    for key in replace:
        if key != "direction":
            payload.pop(key, None)
    text = json.dumps(payload, separators=(",", ":"))[:-1]
    for key, value in replace.items():
        text += f',"{key}":{value}'
    return topic, (text + "}").encode()


def test_a_valid_crossing_still_becomes_a_row():
    assert isinstance(to_record(*raw(crossing()), KEY), Row)
    assert isinstance(to_record(*_body(timings='{"total":1.25}'), KEY), Row)


@pytest.mark.parametrize(
    "body,why",
    [
        # json.loads keeps the last "direction"; a reader that keeps the first sees an arrival
        (dict(direction='"departure"'), "duplicate key"),
        (dict(timings='{"total":NaN}'), "NaN"),
        (dict(timings='{"total":Infinity}'), "Infinity"),
        # a float that overflows is Infinity by another spelling
        (dict(timings='{"total":1e400}'), "finite"),
        # an integer no IEEE double holds: JavaScript and most JSON libraries round it
        (dict(timings='{"total":9007199254740993}'), "integer"),
        # valid JSON, not Unicode: PostgreSQL refuses it, a poison batch
        (dict(txn_id='"\\ud800x"'), "surrogate"),
    ],
)
def test_an_ambiguous_event_is_refused(body: dict[str, str], why: str):
    topic, data = _body(**body)
    rec = to_record(topic, data, KEY)
    assert isinstance(rec, Reject), rec
    assert why in rec.error


def test_a_duplicate_key_inside_the_document_is_refused():
    topic, payload = crossing()
    text = json.dumps(payload, separators=(",", ":"))
    doc = text.index('"document":{') + len('"document":{')
    twice = text[:doc] + '"nationality":"D",' + text[doc:]
    rec = to_record(topic, twice.encode(), KEY)
    assert isinstance(rec, Reject) and "duplicate key" in rec.error


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-32", "utf-8-sig"])
def test_only_utf8_without_a_bom_is_read(codec: str):
    topic, payload = crossing()
    rec = to_record(topic, json.dumps(payload).encode(codec), KEY)
    assert isinstance(rec, Reject), codec


def test_a_message_too_large_is_refused_before_it_is_parsed():
    topic, data = raw(crossing())
    padded = data[:-1] + b" " * MAX_EVENT_BYTES + b"}"  # valid JSON, whitespace
    rec = to_record(topic, padded, KEY)
    assert isinstance(rec, Reject) and "bytes" in rec.error


def test_a_message_nested_too_deep_is_refused_before_it_is_parsed():
    topic, _ = raw(crossing())
    for depth in (MAX_DEPTH + 1, 900, 5000):
        body = b"[" * depth + b"]" * depth
        t0 = time.perf_counter()
        rec = to_record(topic, body, KEY)
        assert isinstance(rec, Reject) and "nested" in rec.error, (depth, rec)
        assert time.perf_counter() - t0 < 0.05
    # brackets inside strings are not nesting
    rec = to_record(*_body(detail=json.dumps("[" * 400)), KEY)
    assert isinstance(rec, Row), rec
