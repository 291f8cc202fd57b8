"""Who may pass: every rule of the gate's decision, in the order an auditor reads them.

Two pure functions, called by the state machine (``gate/machine.py``):

- ``decide_document(doc, doc_result, chip, lists, policy, today)`` in ``DOC_CHECK``:
  the document as printed, its chip, the traveller's eligibility and the watchlists.
- ``decide_face(face, policy)`` in ``IN_MANTRAP``: the live face against the chip portrait.
- ``biometric_plan(category, chip, policy, thumb_reader)`` after the document decision:
  which channel decides for this traveller (face, face then thumb, both), given what
  the chip gave; ``decide_thumb(thumb, policy)`` judges the live thumb against DG3.

Each returns a ``Decision``: ``accept`` is true only when no rule objected, and
``reasons`` lists *every* objection (no rule stops the others), so an officer sees the
whole picture at once and an auditor can replay it. The rules only read their inputs
and the site's ``Policy`` (``gate/policy_config.py``); nothing here does I/O or reads
the clock: ``today`` is the gate's local date, passed in.

A check that could not be made never counts as passed: a missing chip where one is
required, a watchlist that did not answer, a pass registry that could not be asked,
an unreadable date, all refer the traveller to an officer.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass

from gate.policy_config import Category, DocumentRule, Policy, norm_code
from gate.reasons import TEXT, ReasonCode
from gate.results import (
    Check,
    ChipResult,
    DocumentResult,
    FaceResult,
    ListsResult,
    MrzRecord,
    ThumbResult,
)

R = ReasonCode


@dataclass(frozen=True)
class Decision:
    """Accept, or refer with every reason; ``category`` names the traveller category
    that applied (``""`` when none could be established)."""

    accept: bool
    reasons: tuple[ReasonCode, ...]
    category: str
    # the thresholds a face decision applied ("match", "pad", "quality"), for the officer
    limits: tuple[tuple[str, float | None], ...] = ()

    def texts(self) -> list[str]:
        """The console's lines, one per reason."""
        return [TEXT[r] for r in self.reasons]


class _Reasons(list[ReasonCode]):
    """Reasons in the order found, each once."""

    def add(self, *codes: ReasonCode) -> None:
        for code in codes:
            if code not in self:
                self.append(code)


def decide_document(
    doc: MrzRecord | None,
    doc_result: DocumentResult,
    chip: ChipResult | None,
    lists: ListsResult | None,
    policy: Policy,
    today: dt.date,
) -> Decision:
    """The decision at the entry door.

    ``doc`` is the MRZ the scanner read (``None`` when none was read); ``doc_result``
    carries the scanner's own reasons and confidence; ``chip`` is ``None`` when no chip
    read was attempted; ``lists`` is ``None`` when no watchlist answered at all.
    """
    reasons = _Reasons()
    rule = document_rules(doc, doc_result, policy, today, reasons)
    chip_rules(doc, chip, rule, policy, reasons)
    uncertain_rules(doc, doc_result, chip, reasons)
    category = eligibility_rules(doc, lists, policy, today, reasons)
    stay_rules(doc, lists, category, policy, today, reasons)
    if doc is not None or lists is not None:  # no MRZ: nothing the lists could be asked
        list_rules(lists, policy, reasons)
    return Decision(accept=not reasons, reasons=tuple(reasons), category=category)


def decide_face(face: FaceResult, policy: Policy) -> Decision:
    """The decision at the exit door: the verifier's own reasons, then the site's limits.

    Scores are similarities in [0, 1] (higher = more alike / more of an attack for
    ``pad_score``); a score that is not a number fails its rule.
    """
    reasons = _Reasons()
    reasons.add(*face.reasons)
    threshold = max(face.threshold, policy.face.min_score or 0.0)
    if not face.match or not math.isfinite(face.score) or face.score < threshold:
        reasons.add(R.FACE_NO_MATCH)
    # the PAD model's own threshold already gave FACE_PAD; a site may only be stricter
    pad_limit = policy.face.max_pad_score
    if not math.isfinite(face.pad_score) or (pad_limit is not None and face.pad_score > pad_limit):
        reasons.add(R.FACE_PAD)
    if not math.isfinite(face.quality) or face.quality < policy.face.min_quality:
        reasons.add(R.FACE_QUALITY)
    limits = (
        ("match", threshold),
        ("pad", policy.face.max_pad_score),
        ("quality", policy.face.min_quality),
    )
    return Decision(accept=not reasons, reasons=tuple(reasons), category="", limits=limits)


def decide_thumb(thumb: ThumbResult, policy: Policy) -> Decision:
    """The live thumb against DG3: a fault, no finger, or a score under the matcher's
    calibrated threshold (or the site's, if stricter) refers; a score that is not a
    number never matches."""
    reasons = _Reasons()
    threshold = max(thumb.threshold, policy.thumb.min_score or 0.0)
    if thumb.reader_fault:
        reasons.add(R.THUMB_READER_FAULT)
    elif not thumb.presented:
        reasons.add(R.THUMB_NOT_GIVEN)
    elif (
        not thumb.matched
        or thumb.score is None
        or not math.isfinite(thumb.score)
        or thumb.score < threshold
    ):
        reasons.add(R.THUMB_NO_MATCH)
    return Decision(
        accept=not reasons, reasons=tuple(reasons), category="", limits=(("thumb", threshold),)
    )


@dataclass(frozen=True)
class Plan:
    """Which channel decides for one traveller. ``mode`` is the category's wish;
    ``thumb`` whether the thumb channel is open (policy, chip and gate allow it);
    ``fallback`` why a wished-for thumb channel is closed (the face rule then decides)."""

    mode: str = "face"
    thumb: bool = False
    fallback: ReasonCode | None = None
    overturns_pad: bool = False  # a matching thumb also overturns a PAD flag


FACE_ONLY = Plan()

# A face reject the thumb may overturn under face_then_thumb: the face was not seen well
# enough or matched too weakly. A suspected presentation attack (FACE_PAD), a second face
# or an unreadable portrait is never overturned: someone is attacking or the chip data is
# bad, and the officer decides.
THUMB_RESCUES = frozenset(
    {
        R.FACE_NO_MATCH,
        R.FACE_QUALITY,
        R.FACE_NOT_FOUND,
        R.FACE_POSE,
        R.FACE_BLUR,
        R.FACE_EXPOSURE,
        R.FACE_EYES_CLOSED,
        R.FACE_TOO_SMALL,
    }
)


def biometric_plan(
    category: str, chip: ChipResult | None, policy: Policy, thumb_reader: bool
) -> Plan:
    """The category's channel, opened only when the chip proved the gate may read DG3
    (terminal authentication passed) and DG3 held a finger image, and the gate has a
    thumb reader. Otherwise the face rule decides and ``fallback`` records why."""
    mode = next((c.biometric for c in policy.categories if c.name == category), "face")
    if mode == "face":
        return FACE_ONLY
    if chip is None or not chip.present:
        return Plan(mode, False, R.CHIP_NO_FINGERS)
    if chip.terminal_auth is not Check.PASSED:
        why = chip.terminal_auth_reason
        if why is None:  # refused without a reason; not run / not supported: no DG3
            why = R.CHIP_TA_REFUSED if chip.terminal_auth is Check.FAILED else R.CHIP_NO_FINGERS
        return Plan(mode, False, why)
    if not chip.fingers:
        return Plan(mode, False, R.CHIP_NO_FINGERS)
    if not thumb_reader:
        return Plan(mode, False, R.THUMB_UNAVAILABLE)
    return Plan(mode, True, overturns_pad=policy.thumb.overturns_pad)


def thumb_may_rescue(face_reasons: tuple[ReasonCode, ...], overturns_pad: bool = False) -> bool:
    """Under face_then_thumb: every reason of the face reject is one the thumb may
    overturn (see ``THUMB_RESCUES``; ``FACE_PAD`` too where the policy says
    ``thumb.overturns_pad``)."""
    allowed = THUMB_RESCUES | {R.FACE_PAD} if overturns_pad else THUMB_RESCUES
    return bool(face_reasons) and all(r in allowed for r in face_reasons)


# --- 1. the document as printed -----------------------------------------------------


def document_rules(
    doc: MrzRecord | None,
    doc_result: DocumentResult,
    policy: Policy,
    today: dt.date,
    reasons: _Reasons,
) -> DocumentRule | None:
    """MRZ read and valid, an accepted kind of document, valid long enough.

    Returns the document rule that accepts the document (it may change whether a chip
    is required), or ``None``.
    """
    reasons.add(*doc_result.reasons)
    if doc is None:
        if not doc_result.reasons:
            reasons.add(R.DOC_NOT_FOUND)
        return None
    reasons.add(*doc.reasons)
    if not doc.valid and not doc.reasons:
        reasons.add(R.DOC_FORMAT)  # invalid without saying why: still invalid
    if not doc_result.confidence >= policy.min_ocr_confidence:  # NaN fails too
        reasons.add(R.DOC_LOW_CONFIDENCE)

    rule = accepted_document(doc, policy)
    if rule is None:
        reasons.add(R.DOC_TYPE_NOT_ACCEPTED)

    if doc.date_of_expiry is None:
        reasons.add(R.DOC_BAD_DATE)
    else:
        days_left = (doc.date_of_expiry - today).days  # valid through its expiry date
        if days_left < 0:
            reasons.add(R.DOC_EXPIRED)
        elif days_left < policy.min_validity_days:
            reasons.add(R.DOC_VALIDITY_TOO_SHORT)
    return rule


def accepted_document(doc: MrzRecord, policy: Policy) -> DocumentRule | None:
    """The first document rule whose MRZ code (as read) and issuer match."""
    code = doc.document_code[:1] + doc.document_code[1:].replace("<", "")
    issuer = norm_code(doc.issuing_state)
    for rule in policy.documents:
        if code in rule.codes and (not rule.issuing_states or issuer in rule.issuing_states):
            return rule
    return None


# --- 2. the chip ----------------------------------------------------------------------


def chip_rules(
    doc: MrzRecord | None,
    chip: ChipResult | None,
    rule: DocumentRule | None,
    policy: Policy,
    reasons: _Reasons,
) -> None:
    """Chip present where required; genuine (passive auth); not a clone; has a portrait;
    same as the page.

    A chip that is read is always judged, even where none is required: a chip that
    fails its checks is a sign of a forged or altered document.
    """
    if doc is None and chip is None:
        return  # no MRZ, so no chip access key: the document reasons already refer
    required = policy.chip.required
    if rule is not None and rule.chip_required is not None:
        required = rule.chip_required

    if chip is None or not chip.present:
        if required:
            if chip is not None:
                reasons.add(*chip.reasons)
            reasons.add(R.CHIP_ABSENT, R.ELIG_CHIP_REQUIRED)
        return

    reasons.add(*chip.reasons)
    if any(r in _UNREAD for r in chip.reasons):
        # the chip could not be read: nothing was verified, no portrait, no DG1, but
        # that is one cause, and the officer is told it once (it refers on its own)
        return
    # passive authentication: SOD signed by a trusted CSCA and every DG hash matching
    if chip.passive_auth is Check.FAILED:
        if not any(r in reasons for r in _PA_REASONS):
            reasons.add(R.CHIP_SOD_SIGNATURE)
    elif chip.passive_auth is not Check.PASSED:
        reasons.add(R.CHIP_NOT_VERIFIED)
    # active / chip authentication: a chip that fails them is a clone
    if chip.active_auth is Check.FAILED:
        reasons.add(R.CHIP_AA_FAILED)
    if chip.chip_auth is Check.FAILED:
        reasons.add(R.CHIP_CA_FAILED)
    # a clone check the reader could not run (CHIP_CLONE_CHECK_UNSUPPORTED, a key type or
    # curve it does not support) is among chip.reasons above: not a clone, not proven
    # genuine either, so it refers like any check not made
    if policy.chip.require_clone_check and Check.PASSED not in (chip.active_auth, chip.chip_auth):
        reasons.add(R.CHIP_NOT_VERIFIED)
    # DG2 is the reference for the face match in the mantrap: without it, refer now
    if not chip.has_portrait:
        reasons.add(R.CHIP_NO_PORTRAIT)
    # DG1 is the MRZ as the issuer signed it: it must be the MRZ printed on the page
    if chip.dg1 is None:
        reasons.add(R.CHIP_MALFORMED)
    elif doc is not None and not same_mrz(doc, chip.dg1):
        reasons.add(R.CHIP_MRZ_MISMATCH)


def uncertain_rules(
    doc: MrzRecord | None,
    doc_result: DocumentResult,
    chip: ChipResult | None,
    reasons: _Reasons,
) -> None:
    """A field the reader was unsure of and no check digit vouches for (a name, a code,
    the sex) refers: a valid MRZ is not a right one there. Unless the chip's DG1, which
    the issuer signed (passive authentication passed), shows the same value: then the
    page was read right."""
    if doc is None or not doc_result.uncertain:
        return
    if (
        chip is not None
        and chip.present
        and chip.passive_auth is Check.PASSED
        and chip.dg1 is not None
        and all(_confirmed(doc, chip.dg1, f) for f in doc_result.uncertain)
    ):
        return
    reasons.add(R.DOC_UNCERTAIN_FIELD)


def _confirmed(printed: MrzRecord, dg1: MrzRecord, name: str) -> bool:
    """The page and DG1 agree on field ``name`` (fillers and spacing aside); an unknown
    name is never confirmed."""
    a, b = getattr(printed, name, None), getattr(dg1, name, None)
    if not isinstance(a, str) or not isinstance(b, str):
        return False
    return " ".join(a.replace("<", " ").split()) == " ".join(b.replace("<", " ").split())


# a chip that answered but could not be read: every later check is a consequence
_UNREAD = (R.CHIP_ACCESS_DENIED, R.CHIP_READ_ERROR, R.CHIP_SM_ERROR)

_PA_REASONS = (
    R.CHIP_SOD_SIGNATURE,
    R.CHIP_DG_HASH,
    R.CHIP_DS_EXPIRED,
    R.CHIP_DS_REVOKED,
    R.CHIP_CSCA_UNKNOWN,
    R.CHIP_CHAIN_INVALID,
    R.CHIP_MALFORMED,
)


def same_mrz(printed: MrzRecord, dg1: MrzRecord) -> bool:
    """Printed MRZ and DG1 agree on every field a decision or a watchlist uses."""

    def key(m: MrzRecord) -> tuple[object, ...]:
        return (
            m.document_code.replace("<", ""),
            norm_code(m.issuing_state),
            m.document_number.replace("<", ""),
            norm_code(m.nationality),
            m.date_of_birth,
            m.date_of_expiry,
            m.sex,
            " ".join(m.surname.replace("<", " ").split()),
            " ".join(m.given_names.replace("<", " ").split()),
        )

    return key(printed) == key(dg1)


# --- 3. eligibility: age, traveller category, direction --------------------------------


def eligibility_rules(
    doc: MrzRecord | None,
    lists: ListsResult | None,
    policy: Policy,
    today: dt.date,
    reasons: _Reasons,
) -> str:
    """Age within limits and a traveller category that serves this direction.

    Returns the name of the category that applied, ``""`` when none did.
    """
    if doc is None:
        return ""  # nothing to judge; the document rules already refer

    if doc.date_of_birth is None or doc.date_of_birth > today:
        reasons.add(R.DOC_BAD_DATE)
    else:
        years = age(doc.date_of_birth, today)
        if years < policy.age.min:
            reasons.add(R.ELIG_AGE_MIN)
        if policy.age.max is not None and years > policy.age.max:
            reasons.add(R.ELIG_AGE_MAX)

    return traveller_category(doc, lists, policy, today, reasons)


def age(born: dt.date, today: dt.date) -> int:
    """Completed years (someone born on 29 February turns a year older on 1 March)."""
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def traveller_category(
    doc: MrzRecord,
    lists: ListsResult | None,
    policy: Policy,
    today: dt.date,
    reasons: _Reasons,
) -> str:
    """The first category (in policy order) the traveller belongs to and that serves the
    gate's direction; if none fits, the reasons why the nearest ones did not."""
    fits: list[Category] = []
    pass_reasons = _Reasons()
    for category in policy.categories:
        if _belongs(category, doc, lists, policy, today, pass_reasons):
            fits.append(category)
    for category in fits:
        if policy.direction in category.directions:
            return category.name
    if fits:
        reasons.add(R.ELIG_DIRECTION)
        return fits[0].name
    if pass_reasons:
        reasons.add(*pass_reasons)
    else:
        reasons.add(R.ELIG_NATIONALITY)
    return ""


def _belongs(
    category: Category,
    doc: MrzRecord,
    lists: ListsResult | None,
    policy: Policy,
    today: dt.date,
    pass_reasons: _Reasons,
) -> bool:
    nationality = norm_code(doc.nationality)
    if category.kind == "citizen":
        return nationality == policy.state
    if nationality == policy.state:
        return False  # citizens are never foreign nationals nor need a pass
    if category.kind == "foreign_national":
        return nationality in category.nationalities
    # pass_holder: a pass registered for this document, of a listed type, valid today
    if category.nationalities and nationality not in category.nationalities:
        return False
    record = lists.pass_record if lists is not None else None
    if record is None:
        if lists is None or not lists.pass_checked:
            pass_reasons.add(R.LIST_UNAVAILABLE)  # the registry was not asked: not "no pass"
        else:
            pass_reasons.add(R.ELIG_NO_PASS)
        return False
    ok = True
    if record.pass_type not in category.pass_types:
        pass_reasons.add(R.ELIG_PASS_TYPE)
        ok = False
    if record.valid_until < today:
        pass_reasons.add(R.ELIG_PASS_EXPIRED)
        ok = False
    return ok


# --- 3b. overstay at departure ------------------------------------------------------------


def stay_rules(
    doc: MrzRecord | None,
    lists: ListsResult | None,
    category: str,
    policy: Policy,
    today: dt.date,
    reasons: _Reasons,
) -> None:
    """At a departure gate, a foreign national's stay since the last recorded entry.

    A citizen is never asked about. A record that could not be asked refers (never
    through unchecked); no entry on record is not an overstay (the traveller may have
    entered before the record began, or by sea without a gate). The pass, when there is
    one, permits the stay until it expires: one that expired after the entry is its own
    reason; otherwise the category's ``stay_days`` (or the policy's default) is the limit.
    """
    if not policy.stay.check or policy.direction != "departure" or doc is None:
        return
    if norm_code(doc.nationality) == policy.state:
        return
    if lists is None or not lists.entry_checked:
        reasons.add(R.LIST_UNAVAILABLE)
        return
    entry = lists.last_entry
    if entry is None:
        return
    record = lists.pass_record
    if record is not None and entry <= record.valid_until < today:
        reasons.add(R.ELIG_OVERSTAY_PASS)
        return
    if record is not None and record.valid_until >= today:
        return  # a valid pass permits the stay
    limit = next((c.stay_days for c in policy.categories if c.name == category), None)
    limit = limit or policy.stay.default_days
    if limit is not None and (today - entry).days > limit:
        reasons.add(R.ELIG_OVERSTAY)


# --- 4. watchlists ----------------------------------------------------------------------


def list_rules(lists: ListsResult | None, policy: Policy, reasons: _Reasons) -> None:
    """Any hit refers; any required check that could not be made refers."""
    if lists is None:
        if policy.lists.required:
            reasons.add(R.LIST_UNAVAILABLE)
        return
    reasons.add(*lists.hits)
    if lists.unavailable:
        reasons.add(R.LIST_UNAVAILABLE)
