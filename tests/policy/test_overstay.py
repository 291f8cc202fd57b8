"""Overstay at departure: the stay since the last recorded entry, per traveller category."""

from __future__ import annotations

import datetime as dt

import pytest

from gate.policy import decide_document
from gate.policy_config import Policy
from gate.reasons import ReasonCode as R
from tests.policy.helpers import TODAY, chip_for, clear, doc_result, mrz, policy, with_pass

CATEGORIES = [
    {"name": "citizen", "kind": "citizen"},
    {"name": "visa_exempt", "kind": "foreign_national", "nationalities": ["SGP"], "stay_days": 30},
    {"name": "long_exempt", "kind": "foreign_national", "nationalities": ["GBR"], "stay_days": 90},
    {"name": "pass_holder", "kind": "pass_holder", "pass_types": ["EP"]},
]


def departure(**stay: object) -> Policy:
    return policy(direction="departure", categories=CATEGORIES, stay={"check": True, **stay})


def decide(nationality: str, lists, pol: Policy | None = None):
    doc = mrz(nationality=nationality, issuing_state=nationality)
    return decide_document(doc, doc_result(doc), chip_for(doc), lists, pol or departure(), TODAY)


def entered(days_ago: int) -> dt.date:
    return TODAY - dt.timedelta(days=days_ago)


def test_foreigner_within_the_stay_of_their_category_departs():
    assert decide("SGP", clear(entry_checked=True, last_entry=entered(30))).accept
    assert decide("GBR", clear(entry_checked=True, last_entry=entered(90))).accept


def test_foreigner_beyond_the_stay_of_their_category_is_referred_with_its_own_code():
    d = decide("SGP", clear(entry_checked=True, last_entry=entered(31)))
    assert d.reasons == (R.ELIG_OVERSTAY,)
    d = decide("GBR", clear(entry_checked=True, last_entry=entered(91)))
    assert d.reasons == (R.ELIG_OVERSTAY,)


def test_pass_that_expired_during_the_stay_is_its_own_reason():
    lists = with_pass("EP", entered(5), entry_checked=True, last_entry=entered(200))
    d = decide("IND", lists)
    assert R.ELIG_OVERSTAY_PASS in d.reasons and not d.accept
    # the same pass still valid: a long stay is what the pass permits
    ok = with_pass(
        "EP", TODAY + dt.timedelta(days=300), entry_checked=True, last_entry=entered(200)
    )
    assert decide("IND", ok).accept


def test_visa_exempt_foreigner_whose_pass_expired_during_the_stay_is_referred():
    lists = with_pass("EP", entered(3), entry_checked=True, last_entry=entered(10))
    assert decide("SGP", lists).reasons == (R.ELIG_OVERSTAY_PASS,)


@pytest.mark.parametrize("lists", [clear(entry_checked=True, last_entry=entered(5000)), clear()])
def test_a_citizen_never_is(lists):
    assert decide("MYS", lists).accept


def test_record_that_could_not_be_asked_refers_foreigners_never_passes_them_unchecked():
    d = decide("SGP", clear(entry_checked=False))
    assert d.reasons == (R.LIST_UNAVAILABLE,)


def test_no_entry_on_record_is_not_an_overstay():
    assert decide("SGP", clear(entry_checked=True, last_entry=None)).accept


def test_arrival_gates_and_policies_without_the_check_ask_nothing():
    lists = clear(entry_checked=False)
    assert decide("SGP", lists, policy(categories=CATEGORIES)).accept
    assert decide("SGP", lists, policy(direction="departure", categories=CATEGORIES)).accept


def test_default_stay_applies_to_categories_without_their_own():
    pol = departure(default_days=10)
    cats = [dict(c) for c in CATEGORIES]
    cats[1].pop("stay_days")
    pol = policy(direction="departure", categories=cats, stay={"check": True, "default_days": 10})
    assert decide("SGP", clear(entry_checked=True, last_entry=entered(11)), pol).reasons == (
        R.ELIG_OVERSTAY,
    )


def test_a_citizen_category_with_a_stay_limit_is_a_policy_error():
    from pydantic import ValidationError

    cats = [{"name": "citizen", "kind": "citizen", "stay_days": 30}]
    with pytest.raises(ValidationError, match="citizen's stay is not limited"):
        policy(categories=cats)
