"""Builders of the values the decision reads, around one citizen who passes."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import yaml

from gate.policy_config import Policy
from gate.results import Check, ChipResult, DocumentResult, ListsResult, MrzRecord, PassRecord

TODAY = dt.date(2026, 11, 25)

BASE_POLICY = """
version: 1
state: MYS
direction: arrival
categories:
  - {name: citizen, kind: citizen}
  - {name: visa_exempt, kind: foreign_national, nationalities: [SGP, BRN, D, GBR]}
  - {name: pass_holder, kind: pass_holder, pass_types: [EP, PVP]}
age: {min: 12, max: 70}
documents:
  - {name: passport, codes: [P, PP, PD, PO, PS]}
  - {name: splp, codes: [PL], issuing_states: [IDN], chip_required: false}
min_validity_days: 1
chip: {required: true}
lists: {required: true}
face: {max_pad_score: 0.5, min_quality: 0.2}
"""


def policy(**overrides: Any) -> Policy:
    data = yaml.safe_load(BASE_POLICY)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return Policy.model_validate(data)


def mrz(**fields: Any) -> MrzRecord:
    base = dict(
        format="TD3",
        document_code="P",
        issuing_state="MYS",
        surname="AHMAD",
        given_names="SITI NUR",
        document_number="A12345678",
        nationality="MYS",
        date_of_birth=dt.date(1990, 5, 17),
        sex="F",
        date_of_expiry=dt.date(2030, 1, 1),
        valid=True,
    )
    base.update(fields)
    return MrzRecord(**base)  # type: ignore[arg-type]


def chip_for(doc: MrzRecord, **fields: Any) -> ChipResult:
    base: dict[str, Any] = dict(
        present=True,
        access_control="PACE",
        dg1=doc,
        passive_auth=Check.PASSED,
        active_auth=Check.NOT_SUPPORTED,
        chip_auth=Check.PASSED,
        has_portrait=True,
    )
    base.update(fields)
    return ChipResult(**base)


def clear(**fields: Any) -> ListsResult:
    base: dict[str, Any] = dict(pass_checked=True)
    base.update(fields)
    return ListsResult(**base)


def with_pass(pass_type: str, valid_until: dt.date, **fields: Any) -> ListsResult:
    return clear(pass_record=PassRecord(pass_type, valid_until), **fields)


def doc_result(doc: MrzRecord | None, **fields: Any) -> DocumentResult:
    base: dict[str, Any] = dict(mrz=doc, confidence=0.95)
    base.update(fields)
    return DocumentResult(**base)


__all__ = ["TODAY", "chip_for", "clear", "doc_result", "mrz", "policy", "replace", "with_pass"]
