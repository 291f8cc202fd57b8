"""Wire payloads: envelope, topic leaves, personal data per topic, schema validation."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from importlib import resources

import pytest
from jsonschema import Draft202012Validator

from gate import events
from gate.actions import AckCommand, EventType, Publish
from gate.events import EventError, build_payload, validate
from gate.inputs import Command
from gate.reasons import ReasonCode
from gate.results import MrzRecord

TS = dt.datetime(2026, 11, 25, 10, 0, 0, 123456, tzinfo=dt.UTC)
MRZ = MrzRecord(
    format="TD3",
    document_code="P",
    issuing_state="UTO",
    surname="ERIKSSON",
    given_names="ANNA MARIA",
    document_number="L898902C3",
    nationality="UTO",
    date_of_birth=dt.date(1974, 8, 12),
    sex="F",
    date_of_expiry=dt.date(2032, 4, 15),
    valid=True,
)


def build(action: Publish, key: bytes = b"site-secret") -> dict:
    return build_payload(
        action, site="kul1", gate="g01", ts=TS, event_id=str(uuid.uuid4()), document_key=key
    )


def test_every_shipped_schema_is_valid_draft_2020_12() -> None:
    for name in [*events.SCHEMA_FILES.values(), "common.v1.json"]:
        schema = json.loads(resources.files("gate.schemas").joinpath(name).read_text())
        Draft202012Validator.check_schema(schema)
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize(
    ("etype", "leaf"),
    [
        (EventType.GATE_STATUS, "status"),
        (EventType.CROSSING_ACCEPTED, "event/crossing"),
        (EventType.CROSSING_ABORTED, "event/crossing"),
        (EventType.REFERRAL_OPENED, "event/referral"),
        (EventType.REFERRAL_RESOLVED, "event/referral"),
        (EventType.ALARM_RAISED, "event/alarm"),
        (EventType.ALARM_CLEARED, "event/alarm"),
        (EventType.COMMAND_ACK, "cmd-ack"),
    ],
)
def test_every_event_type_has_its_topic_leaf(etype: EventType, leaf: str) -> None:
    assert events.topic_leaf(etype) == leaf
    assert events.topic("kul1", "g01", leaf) == f"autogate/v1/kul1/g01/{leaf}"


def test_envelope() -> None:
    p = build(Publish(EventType.ALARM_RAISED, reasons=(ReasonCode.GATE_TAMPER,)))
    assert p["schema"] == "alarm/1" and p["type"] == "alarm.raised"
    assert p["ts"] == "2026-11-25T10:00:00.123Z"
    assert uuid.UUID(p["event_id"])
    assert (p["site"], p["gate"], p["reasons"]) == ("kul1", "g01", ["gate_tamper"])


def test_crossing_carries_no_name_and_only_a_keyed_hash_of_the_document_number() -> None:
    action = Publish(
        EventType.CROSSING_ACCEPTED,
        txn_id="t1",
        data={"mrz": MRZ, "timings": {"doc_check": 0.41, "face": 0.3}, "access_control": "PACE"},
    )
    p = build(action)
    wire = json.dumps(p)
    for secret in ("ERIKSSON", "ANNA", "L898902C3", "1974", "L898902"):
        assert secret not in wire
    doc = p["document"]
    assert doc["number_masked"] == "******2C3"
    assert doc["number_hash"] == events.hash_document_number("L898902C3", b"site-secret")
    assert doc["number_hash"] != build(action, key=b"other-site")["document"]["number_hash"]
    assert (doc["nationality"], doc["access_control"], p["decision"]) == ("UTO", "PACE", "accepted")


def test_without_a_document_key_a_crossing_carries_no_number_hash() -> None:
    """An HMAC with an empty key is a plain digest: anyone holding the central record
    could turn it back into the number by trying the small space of document numbers
    (docs/ingest.md promises the opposite). A gate without the key sends the masked
    number only."""
    action = Publish(EventType.CROSSING_ACCEPTED, txn_id="t1", data={"mrz": MRZ})
    doc = build(action, key=b"")["document"]
    assert "number_hash" not in doc
    assert doc["number_masked"] == "******2C3"


def test_referral_carries_what_the_officer_needs() -> None:
    p = build(
        Publish(
            EventType.REFERRAL_OPENED,
            txn_id="t1",
            reasons=(ReasonCode.FACE_NO_MATCH, ReasonCode.LIST_UNAVAILABLE),
            data={"mrz": MRZ},
        )
    )
    assert p["document"]["document_number"] == "L898902C3"
    assert p["document"]["surname"] == "ERIKSSON"
    assert p["document"]["date_of_birth"] == "1974-08-12"
    assert p["reasons"] == ["face_no_match", "list_unavailable"]


def test_referral_resolved_needs_its_resolution() -> None:
    with pytest.raises(EventError, match="resolution"):
        build(Publish(EventType.REFERRAL_RESOLVED, txn_id="t1"))
    p = build(
        Publish(
            EventType.REFERRAL_RESOLVED,
            txn_id="t1",
            data={"resolution": "release", "officer": "o7"},
        )
    )
    assert p["resolution"] == "release"


def test_status_names_states_as_the_design_does() -> None:
    from enum import Enum

    class State(Enum):
        OUT_OF_SERVICE = "out_of_service"

    p = build(Publish(EventType.GATE_STATUS, data={"state": State.OUT_OF_SERVICE}))
    assert (p["state"], p["online"]) == ("OUT_OF_SERVICE", True)


def test_ack_action_becomes_a_command_ack() -> None:
    cid = str(uuid.uuid4())
    p = build(events.ack_action(AckCommand(Command.SEND_BACK, cid, False, "not referred"), "o7"))
    assert (p["command"], p["command_id"], p["accepted"], p["detail"]) == (
        "send_back",
        cid,
        False,
        "not referred",
    )


@pytest.mark.parametrize(
    ("action", "match"),
    [
        (Publish(EventType.CROSSING_ACCEPTED, txn_id="t1", data={"surname": "X"}), "not allowed"),
        (Publish(EventType.CROSSING_ACCEPTED, txn_id=None), "txn_id"),
        (Publish(EventType.ALARM_RAISED), "reasons"),
        (Publish(EventType.CROSSING_ACCEPTED, txn_id="t", data={"mrz": "P<UTO"}), "MrzRecord"),
        (
            Publish(EventType.CROSSING_ACCEPTED, txn_id="t", data={"timings": {"doc": -1}}),
            "minimum",
        ),
        (Publish("crossing.teleported", txn_id="t"), "unknown event type"),  # type: ignore[arg-type]
    ],
)
def test_bad_actions_are_typed_errors(action: Publish, match: str) -> None:
    with pytest.raises(EventError, match=match):
        build(action)


def test_naive_timestamp_refused() -> None:
    with pytest.raises(EventError, match="naive"):
        events.format_ts(dt.datetime(2026, 1, 1))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda p: p.pop("event_id"),
        lambda p: p.update(event_id="not-a-uuid"),
        lambda p: p.update(ts="2026-11-25 10:00:00"),
        lambda p: p.update(schema="crossing/2"),
        lambda p: p.update(decision="aborted"),  # contradicts type crossing.accepted
        lambda p: p.update(surname="ERIKSSON"),
        lambda p: p.update(reasons=["Not A Code"]),
        lambda p: p["document"].update(number_hash="L898902C3"),
    ],
)
def test_validate_rejects_broken_payloads(mutate) -> None:  # type: ignore[no-untyped-def]
    p = build(Publish(EventType.CROSSING_ACCEPTED, txn_id="t1", data={"mrz": MRZ}))
    validate(p)
    mutate(p)
    with pytest.raises(EventError):
        validate(p)


def test_validate_rejects_non_messages() -> None:
    for bad in ({}, {"schema": 3}, []):
        with pytest.raises(EventError):
            validate(bad)  # type: ignore[arg-type]


def test_referral_of_a_visa_validates() -> None:
    """Every format the MRZ parser names (visas included) is a valid referral document."""
    import datetime as dt

    from gate.actions import EventType, Publish
    from gate.events import build_payload
    from gate.mrz import build_mrz, parse_mrz

    for fmt in ("TD1", "TD2", "TD3", "MRV-A", "MRV-B"):
        lines = build_mrz(
            fmt, surname="TAN", given_names="AH", document_number="X1234567",
            nationality="MYS", date_of_birth="900101", sex="M", date_of_expiry="300101",
        )  # fmt: skip
        rec = parse_mrz(lines, today=dt.date(2026, 11, 25))
        assert rec.format == fmt
        act = Publish(EventType.REFERRAL_OPENED, "t-1", (), {"mrz": rec})
        ts = dt.datetime(2026, 11, 25, tzinfo=dt.UTC)
        payload = build_payload(
            act, site="s", gate="g", ts=ts, event_id="0" * 8 + "-0000-4000-8000-" + "0" * 12
        )
        assert payload["document"]["format"] == fmt


@pytest.mark.parametrize("etype", [EventType.ALARM_RAISED, EventType.REFERRAL_OPENED])
def test_a_long_detail_is_clipped_not_an_unpublishable_event(etype: EventType) -> None:
    # a device's own words (an exception's text, a reply dump) can be any length: the
    # alarm of that fault used to fail its schema and was never published
    said = "pymodbus: " + "0a " * 2000
    data = {"detail": said} | ({"device": "barrier"} if etype is EventType.ALARM_RAISED else {})
    p = build(Publish(etype, txn_id="t1", reasons=(ReasonCode.GATE_DEVICE_FAULT,), data=data))
    assert len(p["detail"]) == events.MAX_DETAIL
    assert p["detail"].startswith("pymodbus: 0a") and p["detail"].endswith("...")


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_a_number_that_is_not_finite_is_no_event(bad: float) -> None:
    # json.dumps writes NaN/Infinity as bare words that no strict reader takes: the
    # central record refused the whole crossing; the schemas' "number" let them through
    with pytest.raises(EventError, match="timings.face: not a finite number"):
        build(Publish(EventType.CROSSING_ACCEPTED, txn_id="t1", data={"timings": {"face": bad}}))


@pytest.mark.parametrize("field", ["site", "gate"])
def test_an_id_with_a_trailing_newline_is_refused(field: str) -> None:
    # Python's "$" matches before a final newline; JSON Schema's means the end
    p = build(Publish(EventType.ALARM_RAISED, reasons=(ReasonCode.GATE_TAMPER,)))
    validate(p)
    with pytest.raises(EventError, match=f"{field}: not a valid value"):
        validate({**p, field: p[field] + "\n"})
