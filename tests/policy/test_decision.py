"""The decision, case by case: each row states the traveller and the expected outcome."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pytest

from gate.policy import Decision, age, decide_document, decide_face
from gate.reasons import TEXT, ReasonCode
from gate.results import Check, ChipResult, DocumentResult, FaceResult, ListsResult, MrzRecord

from .helpers import TODAY, chip_for, clear, doc_result, mrz, policy, with_pass

R = ReasonCode
DEFAULT = object()  # "the normal value for this traveller"


@dataclass
class Case:
    doc: MrzRecord | None
    reasons: tuple[ReasonCode, ...] = ()
    category: str = "citizen"  # the category named in the decision, even on a refer
    chip: Any = DEFAULT  # ChipResult | None | DEFAULT (a good chip whose DG1 is the MRZ)
    lists: Any = DEFAULT  # ListsResult | None | DEFAULT (all clear)
    result: DocumentResult | None = None
    rules: dict[str, Any] = field(default_factory=dict)  # policy overrides

    def run(self) -> Decision:
        chip = chip_for(self.doc) if self.chip is DEFAULT and self.doc else self.chip
        chip = None if chip is DEFAULT else chip
        lists = clear() if self.lists is DEFAULT else self.lists
        result = self.result or doc_result(self.doc)
        return decide_document(self.doc, result, chip, lists, policy(**self.rules), TODAY)


SGP = dict(nationality="SGP", issuing_state="SGP")
USA = dict(nationality="USA", issuing_state="USA")
IDN = dict(nationality="IDN", issuing_state="IDN")
EP_VALID = with_pass("EP", dt.date(2027, 6, 30))
CITIZEN = mrz()
NO_PASS_HOLDERS = {"categories": [{"name": "citizen", "kind": "citizen"}]}

DOCUMENT_CASES = {
    # --- who may use the gate
    "citizen": Case(CITIZEN, category="citizen"),
    "eligible foreigner": Case(mrz(**SGP), category="visa_exempt"),
    "german D<< nationality": Case(
        mrz(nationality="D<<", issuing_state="D<<"), category="visa_exempt"
    ),
    "foreigner without pass": Case(mrz(**USA), (R.ELIG_NO_PASS,), category=""),
    "ineligible nationality": Case(
        mrz(**USA), (R.ELIG_NATIONALITY,), category="", rules=NO_PASS_HOLDERS
    ),
    "stateless XXA, no pass": Case(
        mrz(nationality="XXA", document_code="PS"),
        (R.ELIG_NATIONALITY,),
        category="",
        rules=NO_PASS_HOLDERS,
    ),
    "pass holder, valid EP": Case(mrz(**USA), category="pass_holder", lists=EP_VALID),
    "pass holder, expired pass": Case(
        mrz(**USA),
        (R.ELIG_PASS_EXPIRED,),
        category="",
        lists=with_pass("EP", TODAY - dt.timedelta(days=1)),
    ),
    "pass holder, pass valid through today": Case(
        mrz(**USA), category="pass_holder", lists=with_pass("PVP", TODAY)
    ),
    "pass of a type not served": Case(
        mrz(**USA), (R.ELIG_PASS_TYPE,), category="", lists=with_pass("WP", dt.date(2027, 1, 1))
    ),
    "pass registry down": Case(
        mrz(**USA),
        (R.LIST_UNAVAILABLE,),
        category="",
        lists=ListsResult(pass_checked=False),
    ),
    "citizen while the pass registry is down": Case(
        CITIZEN, category="citizen", lists=ListsResult(pass_checked=False)
    ),
    "departure-only category at an arrival gate": Case(
        mrz(**SGP),
        (R.ELIG_DIRECTION,),
        category="visa_exempt",
        rules={
            "categories": [
                {"name": "citizen", "kind": "citizen"},
                {
                    "name": "visa_exempt",
                    "kind": "foreign_national",
                    "nationalities": ["SGP"],
                    "directions": ["departure"],
                },
            ]
        },
    ),
    # --- age
    "child under the age limit": Case(mrz(date_of_birth=dt.date(2015, 1, 1)), (R.ELIG_AGE_MIN,)),
    "twelfth birthday today": Case(mrz(date_of_birth=dt.date(2014, 11, 25)), category="citizen"),
    "twelfth birthday tomorrow": Case(mrz(date_of_birth=dt.date(2014, 11, 26)), (R.ELIG_AGE_MIN,)),
    "above the maximum age": Case(mrz(date_of_birth=dt.date(1955, 1, 1)), (R.ELIG_AGE_MAX,)),
    "birth date unreadable": Case(mrz(date_of_birth=None), (R.DOC_BAD_DATE,)),
    "born in the future": Case(mrz(date_of_birth=dt.date(2030, 1, 1)), (R.DOC_BAD_DATE,)),
    # --- the document
    "expired passport": Case(mrz(date_of_expiry=dt.date(2026, 11, 24)), (R.DOC_EXPIRED,)),
    "expiring tomorrow, 1-day rule": Case(
        mrz(date_of_expiry=dt.date(2026, 11, 26)), category="citizen"
    ),
    "expiring today, 1-day rule": Case(mrz(date_of_expiry=TODAY), (R.DOC_VALIDITY_TOO_SHORT,)),
    "expiring today, 0-day rule": Case(
        mrz(date_of_expiry=TODAY), category="citizen", rules={"min_validity_days": 0}
    ),
    "expiring in 100 days, 180-day rule": Case(
        mrz(date_of_expiry=TODAY + dt.timedelta(days=100)),
        (R.DOC_VALIDITY_TOO_SHORT,),
        rules={"min_validity_days": 180},
    ),
    "expiry date unreadable": Case(mrz(date_of_expiry=None), (R.DOC_BAD_DATE,)),
    "SPLP without chip, pass holder": Case(
        mrz(document_code="PL", **IDN), category="pass_holder", chip=None, lists=EP_VALID
    ),
    "SPLP code from another issuer": Case(
        mrz(document_code="PL", **SGP), (R.DOC_TYPE_NOT_ACCEPTED,), "visa_exempt"
    ),
    "identity card not accepted": Case(
        mrz(document_code="I", format="TD1"), (R.DOC_TYPE_NOT_ACCEPTED,)
    ),
    "check digit wrong": Case(
        mrz(valid=False, reasons=(R.DOC_CHECK_NUMBER,)), (R.DOC_CHECK_NUMBER,)
    ),
    "invalid MRZ without a reason": Case(mrz(valid=False), (R.DOC_FORMAT,)),
    "low OCR confidence": Case(
        CITIZEN,
        (R.DOC_LOW_CONFIDENCE,),
        result=doc_result(CITIZEN, confidence=0.5),
        rules={"min_ocr_confidence": 0.8},
    ),
    "no MRZ found": Case(
        None, (R.DOC_NOT_FOUND,), "", chip=None, lists=None, result=DocumentResult(mrz=None)
    ),
    # --- the chip
    "chip missing where mandatory": Case(CITIZEN, (R.CHIP_ABSENT, R.ELIG_CHIP_REQUIRED), chip=None),
    "chip read error": Case(
        CITIZEN,
        (R.CHIP_READ_ERROR, R.CHIP_ABSENT, R.ELIG_CHIP_REQUIRED),
        chip=ChipResult(present=False, reasons=(R.CHIP_READ_ERROR,)),
    ),
    "chip missing, chip optional": Case(
        CITIZEN, category="citizen", chip=None, rules={"chip": {"required": False}}
    ),
    "chip optional but fails when read": Case(
        CITIZEN,
        (R.CHIP_AA_FAILED,),
        category="citizen",
        chip=chip_for(CITIZEN, active_auth=Check.FAILED),
        rules={"chip": {"required": False}},
    ),
    "DG1/MRZ mismatch": Case(
        CITIZEN,
        (R.CHIP_MRZ_MISMATCH,),
        category="citizen",
        chip=chip_for(CITIZEN, dg1=mrz(document_number="A12345679")),
    ),
    "DG1 names with fillers match": Case(
        CITIZEN, category="citizen", chip=chip_for(CITIZEN, dg1=mrz(given_names="SITI<NUR"))
    ),
    "passive auth: DG hash": Case(
        CITIZEN,
        (R.CHIP_DG_HASH,),
        category="citizen",
        chip=chip_for(CITIZEN, passive_auth=Check.FAILED, reasons=(R.CHIP_DG_HASH,)),
    ),
    "passive auth failed, no detail": Case(
        CITIZEN,
        (R.CHIP_SOD_SIGNATURE,),
        category="citizen",
        chip=chip_for(CITIZEN, passive_auth=Check.FAILED),
    ),
    "passive auth not run": Case(
        CITIZEN,
        (R.CHIP_NOT_VERIFIED,),
        category="citizen",
        chip=chip_for(CITIZEN, passive_auth=Check.NOT_RUN),
    ),
    "active auth failed: clone": Case(
        CITIZEN,
        (R.CHIP_AA_FAILED,),
        category="citizen",
        chip=chip_for(CITIZEN, active_auth=Check.FAILED),
    ),
    "chip auth failed: clone": Case(
        CITIZEN,
        (R.CHIP_CA_FAILED,),
        category="citizen",
        chip=chip_for(CITIZEN, chip_auth=Check.FAILED),
    ),
    "clone check required, none offered": Case(
        CITIZEN,
        (R.CHIP_NOT_VERIFIED,),
        category="citizen",
        chip=chip_for(CITIZEN, chip_auth=Check.NOT_SUPPORTED),
        rules={"chip": {"require_clone_check": True}},
    ),
    "chip without portrait": Case(
        CITIZEN, (R.CHIP_NO_PORTRAIT,), chip=chip_for(CITIZEN, has_portrait=False)
    ),
    "chip without DG1": Case(
        CITIZEN, (R.CHIP_MALFORMED,), category="citizen", chip=chip_for(CITIZEN, dg1=None)
    ),
    # --- watchlists
    "stolen document hit": Case(
        CITIZEN, (R.LIST_STOLEN_DOC,), category="citizen", lists=clear(hits=(R.LIST_STOLEN_DOC,))
    ),
    "lost document hit": Case(
        CITIZEN, (R.LIST_LOST_DOC,), category="citizen", lists=clear(hits=(R.LIST_LOST_DOC,))
    ),
    "person hit": Case(
        CITIZEN, (R.LIST_PERSON,), category="citizen", lists=clear(hits=(R.LIST_PERSON,))
    ),
    "watchlist service down": Case(
        CITIZEN, (R.LIST_UNAVAILABLE,), category="citizen", lists=clear(unavailable=("national",))
    ),
    "no watchlist answer at all": Case(
        CITIZEN, (R.LIST_UNAVAILABLE,), category="citizen", lists=None
    ),
    "no watchlist answer, lists optional": Case(
        CITIZEN, category="citizen", lists=None, rules={"lists": {"required": False}}
    ),
    # --- everything at once: every reason, in rule order
    "child, expired, cloned, stolen": Case(
        mrz(date_of_birth=dt.date(2016, 2, 29), date_of_expiry=dt.date(2026, 1, 1)),
        (R.DOC_EXPIRED, R.CHIP_AA_FAILED, R.ELIG_AGE_MIN, R.LIST_STOLEN_DOC, R.LIST_UNAVAILABLE),
        category="citizen",
        chip=chip_for(
            mrz(date_of_birth=dt.date(2016, 2, 29), date_of_expiry=dt.date(2026, 1, 1)),
            active_auth=Check.FAILED,
        ),
        lists=clear(hits=(R.LIST_STOLEN_DOC,), unavailable=("interpol",)),
    ),
}


@pytest.mark.parametrize("case", DOCUMENT_CASES.values(), ids=DOCUMENT_CASES.keys())
def test_document_decision(case: Case) -> None:
    decision = case.run()
    assert decision.reasons == case.reasons
    assert decision.accept is (not case.reasons)
    assert decision.category == case.category
    assert len(decision.texts()) == len(case.reasons)


GOOD_FACE = FaceResult(match=True, score=0.8, threshold=0.5, pad_score=0.1, quality=0.9)

FACE_CASES = {
    "good match": (GOOD_FACE, {}, ()),
    "face below threshold": (
        FaceResult(match=False, score=0.3, threshold=0.5, quality=0.9),
        {},
        (R.FACE_NO_MATCH,),
    ),
    "matched but below the site's threshold": (
        GOOD_FACE,
        {"face": {"min_score": 0.9}},
        (R.FACE_NO_MATCH,),
    ),
    "PAD failed at the verifier": (
        FaceResult(
            match=False, score=0.8, threshold=0.5, pad_score=0.9, quality=0.9, reasons=(R.FACE_PAD,)
        ),
        {},
        (R.FACE_PAD, R.FACE_NO_MATCH),
    ),
    "PAD under the model's threshold passes without a site limit": (
        FaceResult(match=True, score=0.8, threshold=0.5, pad_score=0.6, quality=0.9),
        {"face": {"max_pad_score": None}},
        (),
    ),
    "PAD over the site's own limit": (
        FaceResult(match=True, score=0.8, threshold=0.5, pad_score=0.6, quality=0.9),
        {"face": {"max_pad_score": 0.5}},
        (R.FACE_PAD,),
    ),
    "PAD on the site's limit passes": (
        FaceResult(match=True, score=0.8, threshold=0.5, pad_score=0.5, quality=0.9),
        {"face": {"max_pad_score": 0.5}},
        (),
    ),
    "PAD score not a number": (
        FaceResult(match=True, score=0.8, threshold=0.5, pad_score=float("nan"), quality=0.9),
        {},
        (R.FACE_PAD,),
    ),
    "verifier saw no face": (
        FaceResult(match=False, reasons=(R.FACE_NOT_FOUND,), quality=0.0),
        {},
        (R.FACE_NOT_FOUND, R.FACE_NO_MATCH, R.FACE_QUALITY),
    ),
    "low quality": (
        FaceResult(match=True, score=0.8, threshold=0.5, quality=0.1),
        {},
        (R.FACE_QUALITY,),
    ),
    "score not a number": (
        FaceResult(match=True, score=float("nan"), threshold=0.5, quality=0.9),
        {},
        (R.FACE_NO_MATCH,),
    ),
}


@pytest.mark.parametrize("case", FACE_CASES.values(), ids=FACE_CASES.keys())
def test_face_decision(case: tuple[FaceResult, dict[str, Any], tuple[ReasonCode, ...]]) -> None:
    face, rules, reasons = case
    decision = decide_face(face, policy(**rules))
    assert decision.reasons == reasons
    assert decision.accept is (not reasons)


def test_at_least_thirty_cases() -> None:
    assert len(DOCUMENT_CASES) + len(FACE_CASES) >= 30


def test_every_reason_has_console_text() -> None:
    assert set(TEXT) == set(ReasonCode)


@pytest.mark.parametrize(
    ("born", "today", "years"),
    [
        (dt.date(2000, 2, 29), dt.date(2018, 2, 28), 17),
        (dt.date(2000, 2, 29), dt.date(2018, 3, 1), 18),
        (dt.date(2000, 2, 29), dt.date(2020, 2, 29), 20),
        (dt.date(2000, 12, 31), dt.date(2001, 12, 30), 0),
    ],
)
def test_age_in_completed_years(born: dt.date, today: dt.date, years: int) -> None:
    assert age(born, today) == years


def test_policy_is_hashable_and_frozen() -> None:
    p = policy()
    assert hash(p) == hash(policy())
    with pytest.raises(ValueError):
        p.min_validity_days = 0  # type: ignore[misc]


@pytest.mark.parametrize(
    "cause",
    [ReasonCode.CHIP_ACCESS_DENIED, ReasonCode.CHIP_READ_ERROR, ReasonCode.CHIP_SM_ERROR],
)
@pytest.mark.parametrize("required", [True, False])
def test_a_chip_that_could_not_be_read_gives_one_reason_not_four(
    cause: ReasonCode, required: bool
) -> None:
    """Issue 22 item 6: a chip that refused access was referred with chip_access_denied,
    chip_not_verified, chip_no_portrait and chip_malformed: one cause, one reason."""
    doc = mrz()
    chip = ChipResult(present=True, reasons=(cause,))
    d = decide_document(
        doc, doc_result(doc), chip, clear(), policy(chip={"required": required}), TODAY
    )
    assert not d.accept
    assert list(d.reasons) == [cause]
