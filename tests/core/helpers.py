"""Builders for core tests: settings with the foundation policy, valid results."""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import replace

from gate import machine, policy
from gate.policy_config import Policy
from gate.reasons import ReasonCode
from gate.results import (
    Check,
    ChipResult,
    DocumentResult,
    FaceResult,
    ListsResult,
    MrzRecord,
    ThumbResult,
)

T0 = dt.datetime(2026, 11, 25, 9, 0, tzinfo=dt.UTC).timestamp()

TIMEOUTS = {
    machine.State.IDLE: 30.0,
    machine.State.DOC_CHECK: 15.0,
    machine.State.ENTRY_OPEN: 20.0,
    machine.State.IN_MANTRAP: 15.0,
    machine.State.EXIT_OPEN: 20.0,
    machine.State.REFERRED: 300.0,
    machine.State.ALARM: 60.0,
    machine.State.OUT_OF_SERVICE: 60.0,
    machine.State.EMERGENCY: 30.0,
}


THUMB_TIMEOUT = 8.0


def settings(site: Policy | None = None, thumb_reader: bool = False) -> machine.Settings:
    """The core's settings for ``site``; with ``thumb_reader`` the gate has a thumb
    reader, so the policy's thumb channel may open."""
    site = site or Policy()
    return machine.Settings(
        timeouts=dict(TIMEOUTS),
        decide_document=lambda d, c, lists, today: policy.decide_document(
            d.mrz, d, c, lists, site, today
        ),
        decide_face=functools.partial(policy.decide_face, policy=site),
        plan_biometrics=lambda category, c: policy.biometric_plan(category, c, site, thumb_reader),
        decide_thumb=functools.partial(policy.decide_thumb, policy=site),
        thumb_timeout_s=THUMB_TIMEOUT,
    )


def thumb_policy(mode: str) -> Policy:
    """Citizens under biometric ``mode`` (face, face_then_thumb, both)."""
    return Policy.model_validate(
        {"categories": [{"name": "citizen", "kind": "citizen", "biometric": mode}]}
    )


def mrz(
    nationality: str = "MYS",
    expiry: dt.date = dt.date(2030, 1, 1),
    birth: dt.date = dt.date(1990, 1, 1),
    valid: bool = True,
) -> MrzRecord:
    return MrzRecord(
        format="TD3",
        document_code="P",
        issuing_state=nationality,
        surname="TAN",
        given_names="AH KOW",
        document_number="A1234567",
        nationality=nationality,
        date_of_birth=birth,
        sex="M",
        date_of_expiry=expiry,
        valid=valid,
    )


def doc(record: MrzRecord | None = None) -> DocumentResult:
    return DocumentResult(record if record is not None else mrz(), confidence=0.99)


def chip(ok: bool = True) -> ChipResult:
    c = Check.PASSED if ok else Check.FAILED
    return ChipResult(True, "PACE", mrz(), c, c, Check.NOT_SUPPORTED, True)


def eac_chip(
    ta: Check = Check.PASSED, fingers: tuple[int, ...] = (1,), why: ReasonCode | None = None
) -> ChipResult:
    """A good chip that also went through EAC terminal authentication (DG3)."""
    return replace(chip(), terminal_auth=ta, terminal_auth_reason=why, fingers=fingers)


def thumb(match: bool = True, **kw: object) -> ThumbResult:
    base = ThumbResult(match, 61.0 if match else 7.0, 40.0, "right thumb", "", elapsed_s=0.4)
    return replace(base, **kw)  # type: ignore[arg-type]


def face(match: bool = True) -> FaceResult:
    return FaceResult(match, 0.9 if match else 0.2, 0.5, 0.0, 1.0, "test")


CLEAR = ListsResult()
