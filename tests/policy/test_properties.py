"""Invariants of the decision over generated inputs (hypothesis).

The one that matters at a border: no input with a watchlist hit, or with a required
check that could not be made, is ever accepted.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from gate.policy import decide_document, decide_face
from gate.reasons import ReasonCode
from gate.results import Check, ChipResult, DocumentResult, FaceResult, ListsResult, PassRecord

from .helpers import TODAY, mrz, policy

R = ReasonCode
LIST_HITS = (R.LIST_STOLEN_DOC, R.LIST_LOST_DOC, R.LIST_PERSON)
CODES = ["MYS", "SGP", "USA", "IDN", "D<<", "XXA", "GBR"]

dates = st.one_of(st.none(), st.dates(dt.date(1900, 1, 1), dt.date(2060, 12, 31)))
checks = st.sampled_from(list(Check))

mrzs = st.builds(
    mrz,
    document_code=st.sampled_from(["P", "PP", "PL", "I", "V", "PS"]),
    issuing_state=st.sampled_from(CODES),
    nationality=st.sampled_from(CODES),
    date_of_birth=dates,
    date_of_expiry=dates,
    valid=st.booleans(),
    reasons=st.lists(st.sampled_from([R.DOC_CHECK_NUMBER, R.DOC_FORMAT]), max_size=1).map(tuple),
)


@st.composite
def chips(draw: st.DrawFn, doc: object) -> ChipResult | None:
    if draw(st.booleans()):
        return None
    dg1 = draw(st.one_of(st.just(doc), st.none(), mrzs))
    return ChipResult(
        present=draw(st.booleans()),
        dg1=dg1,  # type: ignore[arg-type]
        passive_auth=draw(checks),
        active_auth=draw(checks),
        chip_auth=draw(checks),
        reasons=tuple(
            draw(st.lists(st.sampled_from([R.CHIP_DG_HASH, R.CHIP_READ_ERROR]), max_size=1))
        ),
    )


passes = st.one_of(
    st.none(),
    st.builds(
        PassRecord,
        pass_type=st.sampled_from(["EP", "PVP", "WP"]),
        valid_until=st.dates(dt.date(2020, 1, 1), dt.date(2030, 1, 1)),
    ),
)
lists_results = st.one_of(
    st.none(),
    st.builds(
        ListsResult,
        hits=st.lists(st.sampled_from(LIST_HITS), max_size=2).map(tuple),
        unavailable=st.lists(st.sampled_from(["national", "local", "passes"]), max_size=2).map(
            tuple
        ),
        pass_record=passes,
        pass_checked=st.booleans(),
    ),
)
policies = st.sampled_from(
    [
        policy(),
        policy(chip={"required": False}, lists={"required": False}),
        policy(min_validity_days=0, age={"min": 0, "max": None}),
    ]
)


@settings(max_examples=300, deadline=None)
@given(doc=st.one_of(st.none(), mrzs), data=st.data(), lists=lists_results, pol=policies)
def test_hit_or_unavailable_check_never_accepts(doc, data, lists, pol) -> None:  # type: ignore[no-untyped-def]
    chip = data.draw(chips(doc))
    result = DocumentResult(mrz=doc, confidence=data.draw(st.floats(0, 1)))
    decision = decide_document(doc, result, chip, lists, pol, TODAY)

    assert decision.accept is (not decision.reasons)
    assert len(set(decision.reasons)) == len(decision.reasons)
    if lists is not None and (lists.hits or lists.unavailable):
        assert not decision.accept
        assert set(lists.hits) <= set(decision.reasons)
    if lists is None and pol.lists.required:
        assert not decision.accept
    chip_missing = chip is None or not chip.present
    splp = doc is not None and doc.document_code == "PL"  # the SPLP rule: chip optional
    if pol.chip.required and chip_missing and not splp:
        assert not decision.accept
    if decision.accept and decision.category == "pass_holder":  # registry asked, pass valid
        assert lists is not None and lists.pass_checked and lists.pass_record is not None
        assert lists.pass_record.valid_until >= TODAY
    if decision.accept:
        assert doc is not None and doc.date_of_birth is not None
        assert doc.date_of_expiry is not None and doc.date_of_expiry >= TODAY


@settings(max_examples=200, deadline=None)
@given(
    match=st.booleans(),
    score=st.floats(allow_nan=True, allow_infinity=True),
    threshold=st.floats(0, 1),
    pad=st.floats(allow_nan=True),
    quality=st.floats(allow_nan=True),
    face_reasons=st.lists(st.sampled_from([R.FACE_PAD, R.FACE_BLUR, R.FACE_MULTIPLE]), max_size=2),
)
def test_face_accept_needs_match_and_no_reason(  # type: ignore[no-untyped-def]
    match, score, threshold, pad, quality, face_reasons
) -> None:
    face = FaceResult(match, score, threshold, pad, quality, reasons=tuple(face_reasons))
    decision = decide_face(face, policy())
    if decision.accept:
        assert match and not face_reasons and score >= threshold and pad <= 0.5
