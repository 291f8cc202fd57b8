"""From wire message to row: what the centre keeps, and what it refuses to keep."""

from __future__ import annotations

import hashlib
import json

from autogate.ingest.records import COLUMNS, Reject, Row, to_record
from gate import events
from tests.ingest.helpers import KEY, alarm, crossing, raw, referral


def _row(topic_payload) -> Row:
    rec = to_record(*raw(topic_payload), KEY)
    assert isinstance(rec, Row), rec
    return rec


def test_crossing_row_keeps_the_hash_the_gate_made():
    row = _row(crossing("AB1234567"))
    values = dict(zip(COLUMNS["crossings"], row.values, strict=True))
    assert values["number_hash"] == events.hash_document_number("AB1234567", KEY)
    assert values["number_masked"] == "******567"
    assert values["direction"] == "arrival"
    assert values["nationality"] == "UTO"


def test_referral_row_hashes_the_number_and_drops_names():
    row = _row(referral("XY9876543"))
    values = dict(zip(COLUMNS["referrals"], row.values, strict=True))
    assert values["number_hash"] == events.hash_document_number("XY9876543", KEY)
    flat = json.dumps(row.values)
    for personal in ("XY9876543", "ERIKSSON", "ANNA", "1974-08-12"):
        assert personal not in flat
    assert json.loads(values["reasons"]) == ["doc_expired"]


def test_alarm_row():
    row = _row(alarm())
    assert row.table == "alarms"


def test_bad_messages_are_rejects_with_a_reason_not_exceptions():
    topic, payload = raw(crossing())
    cases = {
        b"\xff\xfe": "malformed: not UTF-8",
        b"{": "malformed: not JSON",
        b"[1, 2]": "not a JSON object",
        b'{"schema": "crossing/1"}': "crossing/1",
        payload.replace(b'"kul1"', b'"other"'): "topic",
    }
    for body, why in cases.items():
        rec = to_record(topic, body, KEY)
        assert isinstance(rec, Reject), body
        assert why in rec.error
        assert rec.payload is None  # not kept: size and SHA-256 identify it
        assert rec.size == len(body) and rec.sha256 == hashlib.sha256(body).hexdigest()
    # the same bad message twice has one digest (so a redelivery is kept once)
    assert to_record(topic, b"x", KEY).digest == to_record(topic, b"x", KEY).digest


def test_referral_photos_are_not_kept_centrally():
    topic = "autogate/v1/kul1/g01/event/referral-image"
    assert to_record(topic, b'{"portrait": "...base64 of a face..."}', KEY) is None


def test_deeply_nested_json_is_a_reject_not_a_dead_worker():
    # a poison message that raised would kill the worker on every redelivery
    topic = "autogate/v1/kul1/g01/event/crossing"
    for body in (b"[" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000):
        rec = to_record(topic, body, KEY)
        assert isinstance(rec, Reject)


def test_the_compiled_validator_agrees_with_the_gates_schemas():
    import copy
    import random

    from autogate.ingest.records import validate

    rng = random.Random(20)
    base = [crossing()[1], referral()[1], alarm()[1]]
    values = [None, 1, -1, 2.5, True, "", "x", "Z" * 300, [], {}, ["doc_expired"], "accepted",
              "2026-02-30", "2026-02-28", "P", "UTO", "******567", "arrival", "referral.opened"]  # fmt: skip
    disagree = []
    for _ in range(4000):
        p = copy.deepcopy(rng.choice(base))
        target = p
        if "document" in p and rng.random() < 0.5:
            target = p["document"]
        key = rng.choice([*target, "extra"])
        target[key] = rng.choice(values)
        try:
            events.validate(p)
            gate_ok = True
        except events.EventError:
            gate_ok = False
        try:
            validate(p)
            ours = True
        except (events.EventError, KeyError):
            ours = False
        if gate_ok != ours:
            disagree.append(p)
    assert disagree == []


def test_a_schema_field_of_the_wrong_type_is_a_reject():
    topic, payload = crossing()
    for value in ([1], {"a": 1}, 7, None):
        payload["schema"] = value
        assert isinstance(to_record(topic, json.dumps(payload).encode(), KEY), Reject)
