"""The foundation's decision: document, chip, lists and face results to accept/refer.

A small, complete rule set driven by ``gate.config.PolicyConfig``; the policy issue
replaces it with ``gate/policy.py`` (categories, passes, directions). Every failed rule
adds its reason; nothing short-circuits, so an officer sees all of them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from gate.config import PolicyConfig
from gate.reasons import ReasonCode
from gate.results import Check, ChipResult, DocumentResult, FaceResult, ListsResult


@dataclass(frozen=True)
class Decision:
    accept: bool
    reasons: tuple[ReasonCode, ...]


def _years(born: dt.date, today: dt.date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def decide_document(
    policy: PolicyConfig,
    doc: DocumentResult,
    chip: ChipResult | None,
    lists: ListsResult | None,
    today: dt.date,
) -> Decision:
    reasons: list[ReasonCode] = list(doc.reasons)
    mrz = doc.mrz
    if mrz is None:
        reasons.append(ReasonCode.DOC_NOT_FOUND) if not reasons else None
        return Decision(False, tuple(dict.fromkeys(reasons)))
    reasons += mrz.reasons
    if mrz.document_code not in policy.document_codes:
        reasons.append(ReasonCode.DOC_TYPE_NOT_ACCEPTED)
    if mrz.date_of_expiry is None:
        reasons.append(ReasonCode.DOC_BAD_DATE)
    elif mrz.date_of_expiry < today:
        reasons.append(ReasonCode.DOC_EXPIRED)
    elif (mrz.date_of_expiry - today).days < policy.min_validity_days:
        reasons.append(ReasonCode.DOC_VALIDITY_TOO_SHORT)
    if mrz.date_of_birth is None:
        reasons.append(ReasonCode.DOC_BAD_DATE)
    elif _years(mrz.date_of_birth, today) < policy.min_age:
        reasons.append(ReasonCode.ELIG_AGE_MIN)
    eligible = {policy.issuing_state, *policy.eligible_nationalities}
    if mrz.nationality not in eligible:
        reasons.append(ReasonCode.ELIG_NATIONALITY)
    if chip is None or not chip.present:
        if policy.chip_required:
            reasons.append(ReasonCode.ELIG_CHIP_REQUIRED)
    else:
        reasons += chip.reasons
        if chip.passive_auth is not Check.PASSED:
            reasons.append(ReasonCode.CHIP_SOD_SIGNATURE) if not chip.reasons else None
        if chip.active_auth is Check.FAILED:
            reasons.append(ReasonCode.CHIP_AA_FAILED)
        if chip.chip_auth is Check.FAILED:
            reasons.append(ReasonCode.CHIP_CA_FAILED)
    if lists is None:
        reasons.append(ReasonCode.LIST_UNAVAILABLE)
    else:
        reasons += lists.hits
        if lists.unavailable:
            reasons.append(ReasonCode.LIST_UNAVAILABLE)
    unique = tuple(dict.fromkeys(reasons))
    return Decision(not unique, unique)


def decide_face(face: FaceResult) -> Decision:
    reasons = tuple(dict.fromkeys(face.reasons))
    if not face.match and not reasons:
        reasons = (ReasonCode.FACE_NO_MATCH,)
    return Decision(face.match and not reasons, reasons)
