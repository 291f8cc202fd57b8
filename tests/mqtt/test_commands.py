"""Command signatures, time window and replay store (pure; no broker)."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.commands import (
    NonceStore,
    Refusal,
    RefusalReason,
    canonical,
    load_public_key,
    public_key_b64,
    sign_command,
    verify_command,
)
from gate.inputs import Command, OfficerCommand

NOW = dt.datetime(2026, 11, 25, 10, 0, 0, tzinfo=dt.UTC)
KEY = Ed25519PrivateKey.generate()
KEYS = {"console-1": KEY.public_key()}


def signed(**kw: Any) -> dict[str, Any]:
    args: dict[str, Any] = dict(
        site="kul1", gate="g01", command="release", officer="o7", key_id="console-1", ts=NOW
    )
    if kw.get("command", "release") in ("release", "send_back"):
        args["txn_id"] = "b1-000001"  # the referral it decides (issue 17 item 9)
    args.update(kw)
    return sign_command(args.pop("key", KEY), **args)


def verify(msg: Any, nonces: NonceStore | None = None, topic: str = "release", now=NOW) -> Any:  # type: ignore[no-untyped-def]
    raw = msg if isinstance(msg, bytes) else json.dumps(msg).encode()
    return verify_command(
        raw,
        topic_command=topic,
        site="kul1",
        gate="g01",
        keys=KEYS,
        now=now,
        nonces=NonceStore(30, NOW - dt.timedelta(hours=1)) if nonces is None else nonces,
    )


def test_good_command_becomes_an_officer_command() -> None:
    msg = signed()
    assert verify(msg) == OfficerCommand(Command.RELEASE, "o7", msg["command_id"], "b1-000001")


def test_release_or_send_back_naming_no_referral_is_refused() -> None:
    for command in ("release", "send_back"):
        msg = signed(command=command, txn_id=None)
        result = verify(msg, topic=command)
        assert _reason(result) is RefusalReason.MALFORMED and "txn_id" in result.detail


def test_reset_alarm_names_its_alarm_inside_the_signature() -> None:
    msg = signed(command="reset_alarm", alarm_id="b1-a000002")
    result = verify(msg, topic="reset_alarm")
    assert result == OfficerCommand(
        Command.RESET_ALARM, "o7", msg["command_id"], alarm_id="b1-a000002"
    )
    unbound = verify(signed(command="reset_alarm"), topic="reset_alarm")
    assert _reason(unbound) is RefusalReason.MALFORMED and "alarm_id" in unbound.detail
    moved = dict(msg, alarm_id="b1-a000003")  # pointed at another alarm after signing
    assert _reason(verify(moved, topic="reset_alarm")) is RefusalReason.BAD_SIGNATURE


def test_canonical_form_is_sorted_compact_and_excludes_sig() -> None:
    msg = signed()
    body = canonical(msg)
    assert b"sig" not in body.replace(b'"key_id"', b"")
    assert body.startswith(b'{"command":"release","command_id":')
    assert b" " not in body
    KEY.public_key().verify(base64.b64decode(msg["sig"]), body)


def _reason(result: Any) -> RefusalReason:
    assert isinstance(result, Refusal), result
    return result.reason


@pytest.mark.parametrize(
    ("msg", "reason"),
    [
        (b"{not json", RefusalReason.MALFORMED),
        (b"[1, 2]", RefusalReason.MALFORMED),
        ({k: v for k, v in signed().items() if k != "sig"}, RefusalReason.UNSIGNED),
        ({**signed(), "sig": ""}, RefusalReason.UNSIGNED),
        ({**signed(), "schema": "command/0"}, RefusalReason.MALFORMED),
        ({**signed(), "extra": 1}, RefusalReason.MALFORMED),
        ({**signed(), "sig": "A" * 86 + "=="}, RefusalReason.BAD_SIGNATURE),
        ({**signed(), "officer": "o8"}, RefusalReason.BAD_SIGNATURE),
        (signed(key=Ed25519PrivateKey.generate()), RefusalReason.BAD_SIGNATURE),
        (signed(key_id="console-2"), RefusalReason.UNKNOWN_KEY),
        (signed(gate="g02"), RefusalReason.WRONG_GATE),
        (signed(command="in_service"), RefusalReason.TOPIC_MISMATCH),
        (signed(ts=NOW - dt.timedelta(seconds=31)), RefusalReason.EXPIRED),
        (signed(ts=NOW + dt.timedelta(seconds=31)), RefusalReason.EXPIRED),
    ],
)
def test_refusals(msg: Any, reason: RefusalReason) -> None:
    assert _reason(verify(msg)) is reason


def test_refusal_keeps_what_the_ack_needs() -> None:
    msg = signed(gate="g02")
    r = verify(msg)
    assert (r.command_id, r.command, r.officer) == (msg["command_id"], Command.RELEASE, "o7")


def test_replay_refused_within_the_window_and_by_start_time_after() -> None:
    nonces = NonceStore(30, not_before=NOW - dt.timedelta(seconds=60))
    msg = signed()
    assert isinstance(verify(msg, nonces), OfficerCommand)
    replay = signed(nonce=msg["nonce"])  # another signed command reusing the nonce
    assert _reason(verify(replay, nonces)) is RefusalReason.REPLAYED
    later = NOW + dt.timedelta(seconds=20)
    assert _reason(verify(replay, nonces, now=later)) is RefusalReason.REPLAYED
    # past the window the timestamp refuses it, and the nonce may be forgotten
    much_later = NOW + dt.timedelta(seconds=120)
    assert _reason(verify(msg, nonces, now=much_later)) is RefusalReason.EXPIRED
    assert isinstance(verify(signed(ts=much_later), nonces, now=much_later), OfficerCommand)
    assert len(nonces) == 1
    # a restarted gate has an empty store: commands signed before its start are refused
    restarted = NonceStore(30, not_before=NOW + dt.timedelta(seconds=5))
    assert (
        _reason(verify(msg, restarted, now=NOW + dt.timedelta(seconds=6))) is RefusalReason.EXPIRED
    )


def test_a_copy_of_an_accepted_command_is_a_duplicate_not_a_replay() -> None:
    """MQTT delivers at least once: the same signed command again is a duplicate (dropped
    quietly); another command reusing its nonce is a replay."""
    nonces = NonceStore(30, not_before=NOW - dt.timedelta(hours=1))
    msg = signed()
    assert isinstance(verify(msg, nonces), OfficerCommand)
    copy = json.dumps(msg, indent=1).encode()  # the same signed content, other bytes
    assert _reason(verify(copy, nonces)) is RefusalReason.DUPLICATE
    other = signed(nonce=msg["nonce"])  # validly signed, nonce reused
    assert _reason(verify(other, nonces)) is RefusalReason.REPLAYED
    never_accepted = signed()
    assert _reason(verify({**never_accepted, "sig": msg["sig"]}, nonces)) is (
        RefusalReason.BAD_SIGNATURE
    )


def test_nonce_store_is_bounded() -> None:
    nonces = NonceStore(30, not_before=NOW - dt.timedelta(hours=1), max_entries=2)
    assert isinstance(verify(signed(), nonces), OfficerCommand)
    assert isinstance(verify(signed(), nonces), OfficerCommand)
    assert _reason(verify(signed(), nonces)) is RefusalReason.REPLAYED


def test_public_keys_load_from_base64_or_pem_and_bad_ones_are_refused() -> None:
    pub = KEY.public_key()
    pem = pub.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    raw = pub.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    assert load_public_key(public_key_b64(pub)).public_bytes_raw() == raw
    assert load_public_key(pem).public_bytes_raw() == raw
    for bad in ("not base64!", base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError):
            load_public_key(bad)
    from cryptography.hazmat.primitives.asymmetric import ec

    ec_pem = (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(ValueError, match="Ed25519"):
        load_public_key(ec_pem)


def test_sign_command_refuses_unknown_commands() -> None:
    with pytest.raises(ValueError):
        signed(command="open_both_doors")


def _resigned(msg: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """``msg`` with ``fields`` changed and signed again with the trusted key (so only the
    changed field can be what refuses it)."""
    body = {**msg, **fields}
    body["sig"] = base64.b64encode(KEY.sign(canonical(body))).decode("ascii")
    return body


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("command is a list", json.dumps({**signed(), "command": []}).encode()),
        ("command is an object", json.dumps({**signed(), "command": {"a": 1}}).encode()),
        ("command_id is a list", json.dumps({**signed(), "command_id": [1]}).encode()),
        ("officer lone surrogate", json.dumps({**signed(), "officer": "o\ud800"}).encode()),
        ("officer invalid UTF-8", json.dumps(signed()).encode().replace(b'"o7"', b'"o\xff"')),
        ("sig is a number", json.dumps({**signed(), "sig": 5}).encode()),
        ("30 February", json.dumps(_resigned(signed(), ts="2026-02-30T10:00:00.000Z")).encode()),
        ("hour 25", json.dumps(_resigned(signed(), ts="2026-11-25T25:00:00.000Z")).encode()),
        ("trailing newline", json.dumps(_resigned(signed(), ts=signed()["ts"] + "\n")).encode()),
        ("deep nesting", b"[" * 100_000 + b"]" * 100_000),
        ("NaN", json.dumps({**signed(), "officer": float("nan")}).encode()),
    ],
)
def test_malformed_commands_are_refused_not_raised(name: str, raw: bytes) -> None:
    """Every one of these raised inside the verifier (TypeError, UnicodeEncodeError,
    ValueError, RecursionError): no ack, no alarm, no count. Each is a reasoned refusal."""
    result = verify(raw)
    assert _reason(result) is RefusalReason.MALFORMED, name
    # what the refusal carries goes into an ack, an alarm and the journal: it must encode
    for text in (result.detail, result.officer, result.command_id or ""):
        text.encode("utf-8")


def test_refusal_of_a_malformed_command_keeps_only_readable_fields() -> None:
    msg = {**signed(), "officer": "o\ud800", "command": []}
    r = verify(json.dumps(msg).encode())
    assert r.officer == "" and r.command is None
    assert r.command_id == msg["command_id"]


def test_a_public_key_of_an_unknown_type_is_a_value_error() -> None:
    """An SPKI with an algorithm cryptography does not know raised UnsupportedAlgorithm,
    which the bus's build() did not catch: a traceback at start instead of one line."""
    alg = bytes.fromhex("0603") + bytes([0x2A, 0x03, 0x04])  # OID 1.2.3.4
    body = b"\x30" + bytes([len(alg)]) + alg + b"\x03\x05\x00" + b"\x00" * 4
    spki = b"\x30" + bytes([len(body)]) + body
    pem = b"-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(spki) + b"-----END PUBLIC KEY-----\n"
    with pytest.raises(ValueError, match="not an Ed25519 public key"):
        load_public_key(pem)
