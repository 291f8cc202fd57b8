"""The gate's state machine: a pure transition function.

    step(gate, input, now) -> (gate', [action, ...])

No I/O, no asyncio, no clock reads: ``now`` (UTC epoch seconds) comes in as an argument
and every effect goes out as an action the daemon performs. That makes the rules of the
gate a function we test exhaustively, fuzz with hypothesis and time in ``bench/``.

The rules live in two tables at the bottom of this file: ``GLOBAL`` (safety inputs that
apply in every state: emergency, faults, tamper, forced doors, tailgating, officer
service commands) and ``RULES`` keyed by (state, input type). An input a state does not
list is ignored on purpose and costs nothing (for example a stale result of a
transaction that already ended). A test walks every (state, input) pair.

Safety invariants (tests/core/test_invariants.py checks them over random sequences):
- the exit door is commanded open only for an accepted or officer-released transaction,
  or in EMERGENCY;
- entry and exit are never both commanded open outside EMERGENCY;
- EMERGENCY commands both doors open; a lost link or device fault ends in
  OUT_OF_SERVICE with both doors commanded closed;
- every transaction that starts ends in exactly one outcome event: crossing.accepted,
  referral.opened or crossing.aborted.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Protocol

from gate import inputs as i
from gate import offers
from gate.actions import (
    AckCommand,
    Action,
    CaptureFace,
    CaptureThumb,
    CheckLists,
    CloseDoor,
    EventType,
    ForgetBiometrics,
    OpenDoor,
    Publish,
    ReadChip,
    ReadDocument,
)
from gate.inputs import Command, Door
from gate.policy import FACE_ONLY, Plan, thumb_may_rescue
from gate.reasons import ReasonCode
from gate.results import ChipResult, DocumentResult, FaceResult, ListsResult, ThumbResult


class State(StrEnum):
    IDLE = "IDLE"
    DOC_CHECK = "DOC_CHECK"
    ENTRY_OPEN = "ENTRY_OPEN"
    IN_MANTRAP = "IN_MANTRAP"
    EXIT_OPEN = "EXIT_OPEN"
    REFERRED = "REFERRED"
    ALARM = "ALARM"
    OUT_OF_SERVICE = "OUT_OF_SERVICE"
    EMERGENCY = "EMERGENCY"


class Verdict(Protocol):
    """What a decision returns (``gate.policy.Decision`` satisfies it)."""

    @property
    def accept(self) -> bool: ...

    @property
    def reasons(self) -> tuple[ReasonCode, ...]: ...


DocumentDecider = Callable[
    [DocumentResult, ChipResult | None, ListsResult | None, dt.date], Verdict
]
FaceDecider = Callable[[FaceResult], Verdict]
ThumbDecider = Callable[[ThumbResult], Verdict]
# (category, chip) -> which biometric channel decides (gate.policy.biometric_plan)
BiometricPlanner = Callable[[str, ChipResult | None], Plan]
THUMB_GRACE_S = 2.0  # past the reader's own timeout: a reader that never answers is a fault


def _face_only(category: str, chip: ChipResult | None) -> Plan:
    return FACE_ONLY


@dataclass(frozen=True)
class Settings:
    """What the core needs from configuration: timeouts per state and the decision."""

    timeouts: dict[State, float]
    decide_document: DocumentDecider
    decide_face: FaceDecider
    face_bursts: int = 2  # bursts per traveller at most: one more when borderline
    # the thumb channel (issue 19): absent planner = face only, whatever the policy says
    plan_biometrics: BiometricPlanner = _face_only
    decide_thumb: ThumbDecider | None = None
    thumb_timeout_s: float = 10.0  # a finger on the reader and its match


@dataclass(frozen=True)
class Txn:
    """One traveller's transaction, from document placed to its outcome."""

    id: str
    started: float
    doc: DocumentResult | None = None
    chip: ChipResult | None = None
    lists: ListsResult | None = None
    face: FaceResult | None = None
    first_face: FaceResult | None = None  # a borderline reject that got one more burst
    early_face: FaceResult | None = None  # a result that came before the entry closed
    bursts: int = 0  # face bursts asked for
    accepted: bool = False  # both stages passed: the exit may open
    released: bool = False  # an officer released the traveller after a referral
    resolved: bool = False  # an officer decided its referral (release or send back)
    entered: bool = False  # the traveller walked into the mantrap
    outcome: str | None = None  # set once: accepted / referred / aborted
    face_limits: tuple[tuple[str, float | None], ...] = ()  # thresholds the face decision applied
    plan: Plan = FACE_ONLY  # which biometric channel decides, set at the document decision
    face_reasons: tuple[ReasonCode, ...] = ()  # the face decision's objections
    thumb_asked: float | None = None  # when CaptureThumb went out
    thumb: ThumbResult | None = None
    thumb_limit: float | None = None  # threshold the thumb decision applied
    decided_by: str = ""  # "face", "thumb" or "face+thumb": the channel(s) that decided


@dataclass(frozen=True)
class Gate:
    state: State
    since: float
    settings: Settings = field(repr=False)
    boot: str = "0"
    seq: int = 0
    txn: Txn | None = None
    entry_open: bool = False  # as commanded
    exit_open: bool = False  # as commanded
    occupancy: int = 0  # people in the mantrap, as sensed
    emergency: bool = False
    tamper: bool = False
    faults: frozenset[str] = frozenset()
    sending_back: bool = False  # an officer sent the occupant back out through the entry
    alarm: tuple[ReasonCode, ...] = ()  # what the current ALARM (or unattended referral) raised
    # each door as its sensor last said: "closed", "open" (commanded or in EMERGENCY),
    # "forced" (opened while commanded closed), "unknown" (not reported yet)
    entry_sensed: str = "unknown"
    exit_sensed: str = "unknown"
    fault_reasons: tuple[tuple[str, ReasonCode], ...] = ()  # (device, why) per fault
    # doors commanded open since their sensor last said closed: an "open" report from one
    # of them is that command's effect however late the poll brings it (after the
    # traveller was counted inside, after a close was commanded), never a forced door
    opening: frozenset[Door] = frozenset()
    alarms: int = 0  # alarms raised since start: numbers each one
    alarm_id: str | None = None  # the current ALARM's id: a reset must name it


Result = tuple[Gate, list[Action]]


def initial(settings: Settings, now: float, boot: str = "0") -> Gate:
    """The gate before ``Started``: out of service until the daemon has started."""
    return Gate(state=State.OUT_OF_SERVICE, since=now, settings=settings, boot=boot)


def step(gate: Gate, event: i.Input, now: float) -> Result:
    """Apply one input; returns the new gate and the actions to perform, in order."""
    before = gate
    safety = GLOBAL.get(type(event))
    if safety is not None:
        handled = safety(gate, event, now)
        if isinstance(handled, tuple):
            return _announce(gate, handled)
        if handled is not None:  # updated sensor state; the state's own rule goes on
            gate = handled
    rule = RULES.get((gate.state, type(event)))
    if rule is None:
        return _announce(before, (gate, []))
    return _announce(before, rule(gate, event, now))


def _announce(before: Gate, result: Result) -> Result:
    """Publish the status whenever what it says changed (a door moving, someone
    stepping in, a link back) and the rule did not publish one itself; a referral left
    unattended that ends, however it ends, clears its alarm. Also what every rule would
    otherwise have to remember: doors commanded open (door supervision) and the
    biometrics of a transaction the gate lets go of."""
    gate, acts = result
    opened = {a.door for a in acts if isinstance(a, OpenDoor)}
    if opened - gate.opening:
        gate = replace(gate, opening=gate.opening | opened)
        result = gate, acts
    left = before.txn
    # the gate let go of this transaction (resolved, out of service, emergency): no
    # officer can resolve it here any more, so its biometrics go now, whatever ended it
    let_go = left is not None and (gate.txn is None or gate.txn.id != left.id)
    if let_go and left is not None and ForgetBiometrics(left.id) not in acts:
        acts = [*acts, ForgetBiometrics(left.id)]
        result = gate, acts
    unattended = ReasonCode.GATE_UNATTENDED
    if (
        before.state is State.REFERRED
        and gate.state is not State.REFERRED
        and (unattended in before.alarm)
    ):
        txn = before.txn.id if before.txn else None
        acts = [*acts, Publish(EventType.ALARM_CLEARED, txn, (unattended,), {})]
        if gate.alarm == before.alarm:
            gate = replace(gate, alarm=())
        result = gate, acts
    if _said_key(gate) == _said_key(before):
        return result
    if any(isinstance(a, Publish) and a.type is EventType.GATE_STATUS for a in acts):
        return result
    return gate, [*acts, _status(gate)]


# --- helpers ----------------------------------------------------------------------


LINKS = ("barrier", "scanner", "chip", "camera", "face", "lists", "bus")
BARRIER = "barrier"  # the device whose inputs are the doors, beams, emergency and tamper


def _said_key(gate: Gate) -> tuple[Any, ...]:
    """Everything ``_said`` depends on, cheap to compare on every step."""
    return (
        gate.state,
        min(gate.occupancy, 99),
        gate.entry_open,
        gate.exit_open,
        gate.entry_sensed,
        gate.exit_sensed,
        gate.emergency,
        gate.tamper,
        gate.faults,
        gate.txn is None,
        gate.alarm_id,
    )


def _said(gate: Gate) -> dict[str, Any]:
    """What ``gate.status`` tells the hall (everything but the transaction id)."""
    return {
        "state": gate.state.value,
        "presence": min(gate.occupancy, 99),
        "doors": {
            "entry": "open" if gate.entry_open else "closed",
            "exit": "open" if gate.exit_open else "closed",
        },
        "door_sensors": {
            "entry": _door_seen(gate.entry_sensed, gate.entry_open),
            "exit": _door_seen(gate.exit_sensed, gate.exit_open),
        },
        "emergency": gate.emergency,
        "tamper": gate.tamper,
        "links": {d: "fault" if d in gate.faults else "ok" for d in (*LINKS, *sorted(gate.faults))},
        "accepts": [c.value for c in offers.accepted(gate)],
        **({"alarm_id": gate.alarm_id} if gate.state is State.ALARM and gate.alarm_id else {}),
    }


def _door_seen(sensed: str, commanded_open: bool) -> str:
    """A door as an officer should read it: sensed, and "moving" while it has yet to
    reach the commanded position."""
    if sensed in ("forced", "unknown"):
        return sensed
    if (sensed == "open") != commanded_open:
        return "moving"
    return sensed


def _status(gate: Gate) -> Publish:
    return Publish(EventType.GATE_STATUS, gate.txn.id if gate.txn else None, (), _said(gate))


def _doors(gate: Gate, entry: bool, exit_: bool) -> tuple[Gate, list[Action]]:
    """Command the doors to the wanted positions; closes before it opens."""
    acts: list[Action] = []
    if gate.entry_open and not entry:
        acts.append(CloseDoor(Door.ENTRY))
    if gate.exit_open and not exit_:
        acts.append(CloseDoor(Door.EXIT))
    if entry and not gate.entry_open:
        acts.append(OpenDoor(Door.ENTRY))
    if exit_ and not gate.exit_open:
        acts.append(OpenDoor(Door.EXIT))
    return replace(gate, entry_open=entry, exit_open=exit_), acts


def _close_all(gate: Gate) -> tuple[Gate, list[Action]]:
    """Command both doors closed, also when we believe they already are (fail-safe)."""
    return replace(gate, entry_open=False, exit_open=False), [
        CloseDoor(Door.ENTRY),
        CloseDoor(Door.EXIT),
    ]


def _enter(gate: Gate, state: State, now: float) -> Gate:
    return replace(gate, state=state, since=now)


def _end(
    gate: Gate, outcome: EventType, reasons: tuple[ReasonCode, ...], now: float
) -> tuple[Gate, list[Action]]:
    """Publish the transaction's one outcome; later calls for the same txn do nothing."""
    txn = gate.txn
    if txn is None or txn.outcome is not None:
        return gate, []
    name = {
        EventType.CROSSING_ACCEPTED: "accepted",
        EventType.REFERRAL_OPENED: "referred",
        EventType.CROSSING_ABORTED: "aborted",
    }[outcome]
    data: dict[str, Any] = {"stage": _stage(gate), "timings": _timings(txn, now)}
    data.update(_summary(txn, referral=outcome is EventType.REFERRAL_OPENED))
    acts: list[Action] = [Publish(outcome, txn.id, reasons, data)]
    referred = outcome is EventType.REFERRAL_OPENED
    acts.append(ForgetBiometrics(txn.id, keep_for_referral=referred))
    return replace(gate, txn=replace(txn, outcome=name)), acts


def _stage(gate: Gate) -> str:
    if gate.txn is None:
        return "none"
    if gate.txn.entered:
        return "mantrap"
    return "document"


def _timings(txn: Txn, now: float) -> dict[str, float]:
    """Seconds per step as the devices measured them, and the whole transaction."""
    out = {"total": round(max(0.0, now - txn.started), 3)}
    steps: list[
        tuple[str, DocumentResult | ChipResult | ListsResult | FaceResult | ThumbResult | None]
    ] = [
        ("mrz", txn.doc),
        ("chip", txn.chip),
        ("lists", txn.lists),
        ("face", txn.face),
        ("face_first", txn.first_face),  # a borderline burst that got one more
        ("thumb", txn.thumb),
    ]
    for step, result in steps:
        if result is not None and result.elapsed_s > 0:
            out[step] = round(result.elapsed_s, 4)
    return out


def _summary(txn: Txn, referral: bool) -> dict[str, Any]:
    """What each topic's readers need: crossings get the document (hashed downstream);
    referrals also get the chip and face results an officer decides on."""
    out: dict[str, Any] = {}
    if txn.doc is not None and txn.doc.mrz is not None:
        out["mrz"] = txn.doc.mrz
    chip, face = txn.chip, txn.face
    biometric = _biometric(txn)
    if biometric:
        out["biometric"] = biometric
    if not referral:
        if chip is not None and chip.access_control:
            out["access_control"] = chip.access_control
        return out
    if chip is not None:
        out["chip"] = {
            "present": chip.present,
            "access_control": chip.access_control or None,
            "passive_auth": chip.passive_auth.value,
            "active_auth": chip.active_auth.value,
            "chip_auth": chip.chip_auth.value,
        }
    if face is not None:
        limits = dict(txn.face_limits)
        out["face"] = {
            "match": face.match,
            "score": round(face.score, 4),
            "threshold": round(limits.get("match") or face.threshold, 4),
            "pad_score": round(face.pad_score, 4),
            "quality": round(face.quality, 4),
            "backend": face.backend,
        }
        for key, name in (("pad_threshold", "pad"), ("quality_threshold", "quality")):
            limit = limits.get(name)
            if limit is not None:  # a site may leave the PAD limit to the model
                out["face"][key] = round(limit, 4)
    thumb = txn.thumb
    if thumb is not None:
        out["thumb"] = {
            "match": thumb.matched,
            "score": None if thumb.score is None else round(thumb.score, 4),
            "threshold": round(
                txn.thumb_limit if txn.thumb_limit is not None else thumb.threshold, 4
            ),
            "finger": thumb.finger[:32],
            "presented": thumb.presented,
            "reader_fault": thumb.reader_fault,
        }
    return out


def _biometric(txn: Txn) -> dict[str, Any]:
    """Which channel decided and, where the category wanted the thumb but the chip or
    the gate could not give it, why the face rule decided instead."""
    out: dict[str, Any] = {}
    if txn.decided_by:
        out["decided_by"] = txn.decided_by
    if txn.plan.mode != "face":
        out["mode"] = txn.plan.mode
        if txn.plan.fallback is not None:
            out["fallback"] = txn.plan.fallback.value
    return out


def _refer(gate: Gate, reasons: tuple[ReasonCode, ...], now: float) -> Result:
    """Every reject ends here: doors closed, referral event, officer decides."""
    g, acts = _doors(gate, entry=False, exit_=False)
    g, ended = _end(g, EventType.REFERRAL_OPENED, reasons, now)
    g = _enter(g, State.REFERRED, now)
    return g, acts + ended + [_status(g)]


def _abort(gate: Gate, reason: ReasonCode, now: float) -> tuple[Gate, list[Action]]:
    return _end(gate, EventType.CROSSING_ABORTED, (reason,), now)


def _alarm(gate: Gate, reason: ReasonCode, now: float, **data: Any) -> Result:
    """Tailgating, forced door, tamper, stuck door: doors closed, officer must reset."""
    g, acts = _close_all(gate)
    if g.txn is not None and g.txn.outcome is None:
        g, ended = _end(g, EventType.REFERRAL_OPENED, (reason,), now)
        acts += ended
    n = g.alarms + 1
    alarm_id = f"{g.boot}-a{n:06d}"  # unique per daemon (boot) like a transaction id
    g = _enter(replace(g, alarm=(reason,), alarms=n, alarm_id=alarm_id), State.ALARM, now)
    data = {**data, "alarm_id": alarm_id}
    acts.append(Publish(EventType.ALARM_RAISED, g.txn.id if g.txn else None, (reason,), data))
    return g, acts + [_status(g)]


def _out_of_service(gate: Gate, reason: ReasonCode, now: float, **data: Any) -> Result:
    g, acts = _close_all(gate)
    g, ended = _abort(g, reason, now)
    g = _enter(replace(g, txn=None), State.OUT_OF_SERVICE, now)
    alarm = Publish(EventType.ALARM_RAISED, None, (reason,), dict(data))
    return g, acts + ended + [alarm, _status(g)]


def _to_idle(gate: Gate, now: float) -> Result:
    g, acts = _doors(gate, entry=False, exit_=False)
    g = _enter(replace(g, txn=None), State.IDLE, now)
    return g, acts + [_status(g)]


def _ack(cmd: i.OfficerCommand, ok: bool, detail: str = "") -> AckCommand:
    return AckCommand(cmd.command, cmd.command_id, ok, detail)


def _current(gate: Gate, txn_id: str) -> bool:
    return gate.txn is not None and gate.txn.id == txn_id and gate.txn.outcome is None


# --- global rules (every state) ----------------------------------------------------


def _emergency(gate: Gate, ev: i.EmergencyChanged, now: float) -> Result | None:
    if ev.active and gate.state is not State.EMERGENCY:
        g, ended = _abort(replace(gate, emergency=True), ReasonCode.GATE_EMERGENCY, now)
        g = _enter(replace(g, txn=None), State.EMERGENCY, now)
        # release both doors whatever we believe their state is
        g = replace(g, entry_open=True, exit_open=True)
        acts: list[Action] = [OpenDoor(Door.ENTRY), OpenDoor(Door.EXIT)]
        alarm = Publish(EventType.ALARM_RAISED, None, (ReasonCode.GATE_EMERGENCY,), {})
        return g, acts + ended + [alarm, _status(g)]
    if not ev.active and gate.state is State.EMERGENCY:
        g, acts = _close_all(replace(gate, emergency=False))
        g = _enter(g, State.OUT_OF_SERVICE, now)
        clear = Publish(EventType.ALARM_CLEARED, None, (ReasonCode.GATE_EMERGENCY,), {})
        return g, acts + [clear, _status(g)]
    return replace(gate, emergency=ev.active), []


def _fault(gate: Gate, ev: i.LinkLost | i.DeviceFault, now: float) -> Result | None:
    reason = (
        ReasonCode.GATE_LINK_LOST if isinstance(ev, i.LinkLost) else ReasonCode.GATE_DEVICE_FAULT
    )
    known = gate.fault_reasons
    if (ev.device, reason) not in known:
        known = (*known, (ev.device, reason))
    g = replace(gate, faults=gate.faults | {ev.device}, fault_reasons=known)
    if ev.device == BARRIER:  # its door sensors are silent until it is back
        g = replace(g, entry_sensed="unknown", exit_sensed="unknown")
    if gate.state is State.EMERGENCY:
        return g, [_status(g)]  # doors stay released; the controller holds them open
    return _out_of_service(g, reason, now, device=ev.device, detail=ev.detail)


def _restored(gate: Gate, ev: i.LinkRestored, now: float) -> Result | None:
    """A device is back: its alarms are cleared now (service resumes only on command)."""
    if ev.device not in gate.faults:
        return gate, []
    reasons = tuple(r for d, r in gate.fault_reasons if d == ev.device)
    g = replace(
        gate,
        faults=gate.faults - {ev.device},
        fault_reasons=tuple(f for f in gate.fault_reasons if f[0] != ev.device),
    )
    data = {"device": ev.device}
    cleared = Publish(EventType.ALARM_CLEARED, None, reasons or (ReasonCode.GATE_LINK_LOST,), data)
    return g, [cleared, _status(g)]


def _tamper(gate: Gate, ev: i.TamperChanged, now: float) -> Result | None:
    g = replace(gate, tamper=ev.active)
    if ev.active and gate.state not in (State.EMERGENCY, State.ALARM):
        return _alarm(g, ReasonCode.GATE_TAMPER, now)
    return g, [_status(g)]


def _door_fault(gate: Gate, ev: i.DoorFault, now: float) -> Result | None:
    if gate.state is State.EMERGENCY:
        return gate, []
    if gate.state is State.ALARM:
        # already alarmed with doors commanded closed: re-commanding a blocked door every
        # confirmation timeout would only hammer it; the alarm re-announces on its timeout
        return gate, []
    detail = f"{ev.door.value} door: {ev.detail}" if ev.detail else f"{ev.door.value} door"
    return _alarm(gate, ReasonCode.GATE_DOOR_STUCK, now, device="barrier", detail=detail)


def _door_changed(gate: Gate, ev: i.DoorChanged, now: float) -> Result | Gate:
    """A door is forced only on evidence: it opened with no open command outstanding (none
    since it was last sensed closed). Reports come in poll order, not the order things
    happened: the traveller may be counted inside, and the entry commanded closed, before
    the poll that says the entry opened."""
    commanded_open = gate.entry_open if ev.door is Door.ENTRY else gate.exit_open
    if ev.closed:
        gate = replace(gate, opening=gate.opening - {ev.door})
    explained = commanded_open or ev.door in gate.opening
    forced = not ev.closed and not explained and gate.state is not State.EMERGENCY
    sensed = "closed" if ev.closed else "forced" if forced else "open"
    if ev.door is Door.ENTRY:
        gate = replace(gate, entry_sensed=sensed)
    else:
        gate = replace(gate, exit_sensed=sensed)
    if forced:
        if gate.state in (State.ALARM, State.OUT_OF_SERVICE):
            # already alarmed, or out of service (technicians at work, a link coming back
            # reports doors where the controller's watchdog left them): nothing to add
            return gate, []
        return _alarm(gate, ReasonCode.GATE_DOOR_FORCED, now, detail=f"{ev.door.value} door opened")
    return gate  # state rules may care (entry closed behind the traveller)


def _presence(gate: Gate, ev: i.PresenceChanged, now: float) -> Result | Gate:
    g = replace(gate, occupancy=max(0, ev.count))
    if g.state in (State.EMERGENCY, State.ALARM, State.OUT_OF_SERVICE):
        return g, []
    allowed = 1
    if g.state in (State.IDLE, State.DOC_CHECK):
        allowed = 0  # nobody may be inside before the entry opened
    if ev.count > allowed:
        reason = ReasonCode.GATE_TAILGATING if allowed else ReasonCode.GATE_UNEXPECTED_OCCUPANT
        return _alarm(g, reason, now, detail=f"{ev.count} people in the mantrap")
    return g if g.state in _PRESENCE_STATES else (g, [])


_PRESENCE_STATES = (State.ENTRY_OPEN, State.EXIT_OPEN, State.REFERRED)


def _command(gate: Gate, ev: i.OfficerCommand, now: float) -> Result | None:
    """Every command is first checked by ``gate.offers`` (the rule the console's buttons
    come from); service commands apply here, referral and alarm ones fall through."""
    why = offers.refusal(gate, ev.command)
    if why is not None:
        return gate, [_ack(ev, False, why)]
    if ev.command is Command.OUT_OF_SERVICE:
        g, acts = _out_of_service(gate, ReasonCode.GATE_OFFICER, now, officer=ev.officer)
        return g, [_ack(ev, True)] + acts
    if ev.command is Command.IN_SERVICE:
        g, acts = _to_idle(gate, now)
        return g, [_ack(ev, True)] + acts
    return None


# --- per-state rules ---------------------------------------------------------------


def _started(gate: Gate, ev: i.Started, now: float) -> Result:
    """A start never resumes a half crossing: close doors, report what was interrupted."""
    g, acts = _close_all(gate)
    g, ended = _abort(g, ReasonCode.GATE_RESTART, now)
    acts += ended
    if ev.interrupted_txn:
        acts.append(
            Publish(
                EventType.CROSSING_ABORTED,
                ev.interrupted_txn,
                (ReasonCode.GATE_RESTART,),
                {"stage": "unknown"},
            )
        )
    if g.faults or g.emergency:
        g = _enter(g, State.OUT_OF_SERVICE, now)
        return g, acts + [_status(g)]
    g = replace(g, txn=None)
    if g.occupancy > 0:
        # someone is inside with no crossing (a restart mid-crossing; the sensor spoke
        # before the start): an officer must see to them, the lane is not IDLE
        g, alarm = _alarm(
            g, ReasonCode.GATE_UNEXPECTED_OCCUPANT, now, detail=f"{g.occupancy} in the mantrap"
        )
        return g, acts + alarm
    g = _enter(g, State.IDLE, now)
    return g, acts + [_status(g)]


def _placed(gate: Gate, ev: i.DocumentPlaced, now: float) -> Result:
    seq = gate.seq + 1
    txn = Txn(id=f"{gate.boot}-{seq:06d}", started=now)
    g = _enter(replace(gate, seq=seq, txn=txn), State.DOC_CHECK, now)
    return g, [ReadDocument(txn.id), _status(g)]


def _doc_read(gate: Gate, ev: i.DocumentRead, now: float) -> Result:
    if not _current(gate, ev.txn_id):
        return gate, []
    assert gate.txn is not None
    if gate.txn.doc is not None:
        return gate, []  # only the one answer to our ReadDocument
    g = replace(gate, txn=replace(gate.txn, doc=ev.result))
    mrz = ev.result.mrz
    if mrz is None or not mrz.valid:
        # without a valid MRZ there is no chip key and nothing to check against
        return _decide_document(g, now)
    return g, [ReadChip(gate.txn.id, mrz)]


def _chip_read(gate: Gate, ev: i.ChipRead, now: float) -> Result:
    txn = gate.txn
    if not _current(gate, ev.txn_id) or txn is None or txn.doc is None or txn.chip is not None:
        return gate, []  # only the one answer to our ReadChip
    if txn.doc.mrz is None or not txn.doc.mrz.valid:
        return gate, []
    g = replace(gate, txn=replace(txn, chip=ev.result))
    return g, [CheckLists(txn.id, txn.doc.mrz)]


def _lists_checked(gate: Gate, ev: i.ListsChecked, now: float) -> Result:
    if not _current(gate, ev.txn_id) or gate.txn is None or gate.txn.chip is None:
        return gate, []  # only an answer to our CheckLists, which follows the chip read
    g = replace(gate, txn=replace(gate.txn, lists=ev.result))
    return _decide_document(g, now)


def _decide_document(gate: Gate, now: float) -> Result:
    txn = gate.txn
    assert txn is not None and txn.doc is not None
    today = dt.datetime.fromtimestamp(now, dt.UTC).date()
    verdict = gate.settings.decide_document(txn.doc, txn.chip, txn.lists, today)
    if not verdict.accept:
        return _refer(gate, tuple(verdict.reasons), now)
    plan = gate.settings.plan_biometrics(str(getattr(verdict, "category", "")), txn.chip)
    if plan.thumb and gate.settings.decide_thumb is None:
        plan = replace(plan, thumb=False, fallback=ReasonCode.THUMB_UNAVAILABLE)
    g = replace(gate, txn=replace(txn, plan=plan))
    g, acts = _doors(g, entry=True, exit_=False)
    g = _enter(g, State.ENTRY_OPEN, now)
    return g, acts + [_status(g)]


def _removed(gate: Gate, ev: i.DocumentRemoved, now: float) -> Result:
    g, acts = _abort(gate, ReasonCode.DOC_REMOVED, now)
    g2, idle = _to_idle(g, now)
    return g2, acts + idle


def _entry_presence(gate: Gate, ev: i.PresenceChanged, now: float) -> Result:
    """The traveller is inside: close the entry and start the face burst at once.

    The burst overlaps the entry door closing (a second or so of door travel on a real
    gate); its result waits for the entry to close with one person inside before it
    can open the exit (``_early_face``, ``_entry_closed``).
    """
    txn = gate.txn
    if ev.count == 1 and txn is not None and not txn.entered:
        capture = not txn.released and txn.bursts == 0
        g = replace(gate, txn=replace(txn, entered=True, bursts=1 if capture else txn.bursts))
        g, acts = _doors(g, entry=False, exit_=False)
        return g, acts + ([CaptureFace(txn.id)] if capture else [])
    return gate, []


def _early_face(gate: Gate, ev: i.FaceVerified, now: float) -> Result:
    """A face result while the entry is still closing: kept until it has closed."""
    txn = gate.txn
    if not _current(gate, ev.txn_id) or txn is None or not txn.entered or txn.early_face:
        return gate, []
    return replace(gate, txn=replace(txn, early_face=ev.result)), []


def _entry_closed(gate: Gate, ev: i.DoorChanged, now: float) -> Result:
    txn = gate.txn
    if ev.door is not Door.ENTRY or not ev.closed or txn is None or not txn.entered:
        return gate, []
    if gate.occupancy != 1:
        return gate, []
    if txn.released:
        g, acts = _doors(gate, entry=False, exit_=True)
        g = _enter(g, State.EXIT_OPEN, now)
        return g, acts + [_status(g)]
    capture = [] if txn.bursts else [CaptureFace(txn.id)]
    g = _enter(replace(gate, txn=replace(txn, bursts=max(1, txn.bursts))), State.IN_MANTRAP, now)
    if txn.early_face is not None:  # the burst finished while the entry closed
        decided, acts = _face(g, i.FaceVerified(txn.id, txn.early_face), now)
        return decided, [_status(g), *acts]
    return g, [*capture, _status(g)]


def _face(gate: Gate, ev: i.FaceVerified, now: float) -> Result:
    if not _current(gate, ev.txn_id) or gate.txn is None:
        return gate, []
    if gate.txn.face is not None:
        return gate, []
    verdict = gate.settings.decide_face(ev.result)
    if not verdict.accept and _one_more_burst(gate, ev.result, now):
        txn = replace(gate.txn, first_face=ev.result, bursts=gate.txn.bursts + 1)
        return replace(gate, txn=txn), [CaptureFace(txn.id)]
    limits = tuple(getattr(verdict, "limits", ()))
    reasons = tuple(verdict.reasons)
    txn = replace(gate.txn, face=ev.result, face_limits=limits, face_reasons=reasons)
    g = replace(gate, txn=txn)
    plan = txn.plan
    if plan.thumb and (
        (plan.mode == "both" and verdict.accept)
        or (
            plan.mode == "face_then_thumb"
            and not verdict.accept
            and thumb_may_rescue(reasons, plan.overturns_pad)
        )
    ):
        return _ask_thumb(g, now)
    g = replace(g, txn=replace(txn, decided_by="face"))
    if not verdict.accept:
        return _refer(g, reasons, now)
    return _accept(g, now)


def _accept(gate: Gate, now: float) -> Result:
    """Both stages passed: the exit opens."""
    assert gate.txn is not None
    g = replace(gate, txn=replace(gate.txn, accepted=True))
    g, acts = _doors(g, entry=False, exit_=True)
    g = _enter(g, State.EXIT_OPEN, now)
    return g, acts + [_status(g)]


def _ask_thumb(gate: Gate, now: float) -> Result:
    """The thumb decides next (face_then_thumb after a failed face, both after a good
    one); the traveller stays in the mantrap with both doors closed."""
    assert gate.txn is not None
    timeout = gate.settings.thumb_timeout_s
    g = replace(gate, txn=replace(gate.txn, thumb_asked=now))
    return g, [CaptureThumb(gate.txn.id, timeout)]


def _thumb(gate: Gate, ev: i.ThumbVerified, now: float) -> Result:
    """The thumb's verdict: under ``both`` the face already matched, so the thumb
    decides alone; under ``face_then_thumb`` a match overturns the face's reject, a
    reject refers with the face's and the thumb's reasons, so the officer sees both."""
    txn = gate.txn
    decide = gate.settings.decide_thumb
    if not _current(gate, ev.txn_id) or txn is None or txn.thumb_asked is None or txn.thumb:
        return gate, []  # only the one answer to our CaptureThumb
    if decide is None:
        return gate, []
    verdict = decide(ev.result)
    limit = dict(getattr(verdict, "limits", ())).get("thumb")
    decided_by = "face+thumb" if txn.plan.mode == "both" else "thumb"
    g = replace(gate, txn=replace(txn, thumb=ev.result, thumb_limit=limit, decided_by=decided_by))
    if verdict.accept:
        return _accept(g, now)
    face = txn.face_reasons if txn.plan.mode == "face_then_thumb" else ()
    return _refer(g, (*face, *verdict.reasons), now)


def _one_more_burst(gate: Gate, face: FaceResult, now: float) -> bool:
    """A borderline reject gets another burst while bursts and the timeout allow it.

    Room means the mantrap timeout leaves at least as long again as the traveller has
    been inside (about one burst): the retry never turns a referral into a timeout.
    """
    txn = gate.txn
    if txn is None or not face.retryable or txn.bursts >= gate.settings.face_bursts:
        return False
    spent = now - gate.since
    return spent * 2 <= gate.settings.timeouts.get(State.IN_MANTRAP, 0.0)


def _exit_presence(gate: Gate, ev: i.PresenceChanged, now: float) -> Result:
    if ev.count != 0:
        return gate, []
    acts: list[Action] = []
    g = gate
    if g.txn is not None and g.txn.outcome is None:
        g, ended = _end(g, EventType.CROSSING_ACCEPTED, (), now)
        acts += ended
    elif g.txn is not None and g.txn.released:
        acts.append(ForgetBiometrics(g.txn.id))
    g, idle = _to_idle(g, now)
    return g, acts + idle


def _referred_command(gate: Gate, ev: i.OfficerCommand, now: float) -> Result:
    txn = gate.txn
    if ev.txn_id is not None and ev.txn_id != (txn.id if txn else None):
        # decided on another traveller's referral (a stale screen, a delayed command)
        open_ = f"the open referral is {txn.id}" if txn else "no transaction is open"
        return gate, [_ack(ev, False, f"{ev.command.value} is for {ev.txn_id}; {open_}")]
    if ev.command is Command.RELEASE and txn is not None and txn.resolved:
        # REFERRED again on a decided transaction (an alarm reset with people inside): a
        # release clicked on the first referral must not let whoever is inside now through
        why = f"release: the referral of {txn.id} was resolved already; send back instead"
        return gate, [_ack(ev, False, why)]
    # a referral without a transaction (someone found inside after an alarm) has no
    # referral event to resolve: the ack and the journal record the officer's decision
    resolved: list[Action] = []
    if txn is not None:
        data = {"resolution": ev.command.value, "officer": ev.officer, "command_id": ev.command_id}
        resolved = [Publish(EventType.REFERRAL_RESOLVED, txn.id, (), data)]
        txn = replace(txn, resolved=True)
        gate = replace(gate, txn=txn)
    if ev.command is Command.RELEASE and txn is not None:  # offers.refusal: needs a txn
        txn = replace(txn, released=True)
        if gate.occupancy >= 1:
            g, acts = _doors(replace(gate, txn=txn), entry=False, exit_=True)
            g = _enter(g, State.EXIT_OPEN, now)
        else:
            g, acts = _doors(
                replace(gate, txn=replace(txn, entered=False)), entry=True, exit_=False
            )
            g = _enter(g, State.ENTRY_OPEN, now)
        return g, [_ack(ev, True), *resolved, *acts, _status(g)]
    if ev.command is Command.SEND_BACK:
        if gate.occupancy >= 1:
            g, acts = _doors(replace(gate, sending_back=True), entry=True, exit_=False)
            return g, [_ack(ev, True), *resolved, *acts]
        g, idle = _to_idle(gate, now)
        forget: list[Action] = [ForgetBiometrics(txn.id)] if txn else []
        return g, [_ack(ev, True), *resolved, *forget, *idle]
    return gate, [_ack(ev, False, f"{ev.command.value} not applicable in REFERRED")]


def _referred_presence(gate: Gate, ev: i.PresenceChanged, now: float) -> Result:
    txn = gate.txn
    if ev.count == 0 and gate.sending_back:
        g, idle = _to_idle(replace(gate, sending_back=False), now)
        return g, ([ForgetBiometrics(txn.id)] if txn else []) + idle
    return gate, []


def _alarm_command(gate: Gate, ev: i.OfficerCommand, now: float) -> Result:
    if ev.command is not Command.RESET_ALARM or gate.tamper:  # refused by offers.refusal
        return gate, [_ack(ev, False, offers.refusal(gate, ev.command) or "not applicable")]
    if ev.alarm_id is None:
        return gate, [_ack(ev, False, f"reset_alarm must name the alarm ({gate.alarm_id})")]
    if ev.alarm_id != gate.alarm_id:
        # aimed at an alarm that is over (a stale screen, a delayed or second click):
        # never clears the one raised since
        why = f"reset_alarm is for {ev.alarm_id}; the alarm now is {gate.alarm_id}"
        return gate, [_ack(ev, False, why)]
    reasons = gate.alarm or (ReasonCode.GATE_OFFICER,)
    cleared = Publish(
        EventType.ALARM_CLEARED,
        gate.txn.id if gate.txn else None,
        reasons,
        {"officer": ev.officer, "command_id": ev.command_id, "alarm_id": gate.alarm_id},
    )
    if gate.occupancy > 0:
        # someone is still inside: the officer decides through a referral; when none is
        # open to decide, whoever is inside gets one of their own (see _occupant_referral)
        g = replace(gate, alarm=(), alarm_id=None)
        opened: list[Action] = []
        if not _open_referral(g.txn):
            g, opened = _occupant_referral(g, reasons, now)
        g = _enter(g, State.REFERRED, now)
        return g, [_ack(ev, True), cleared, *opened, _status(g)]
    txn = gate.txn
    forget: list[Action] = [ForgetBiometrics(txn.id)] if txn else []
    g, idle = _to_idle(replace(gate, alarm=(), alarm_id=None), now)
    return g, [_ack(ev, True), cleared, *forget, *idle]


def _open_referral(txn: Txn | None) -> bool:
    """A referral an officer can still decide: referred, not yet released or sent back."""
    return txn is not None and txn.outcome == "referred" and not txn.resolved


def _occupant_referral(
    gate: Gate, reasons: tuple[ReasonCode, ...], now: float
) -> tuple[Gate, list[Action]]:
    """A referral with its own id for whoever is inside when no referral is open to decide
    (nobody placed a document, a restart ended the crossing, or its referral was decided
    already): the console shows it and the officer's signed Release / Send back name it,
    like any referral. The id is numbered with the transactions, so it is unique per boot."""
    acts: list[Action] = []
    old = gate.txn
    if old is not None and old.outcome == "referred":
        acts.append(ForgetBiometrics(old.id))  # kept for a referral that is over now
    seq = gate.seq + 1
    txn = Txn(id=f"{gate.boot}-{seq:06d}", started=now, entered=True)
    g, ended = _end(replace(gate, seq=seq, txn=txn), EventType.REFERRAL_OPENED, reasons, now)
    return g, acts + ended


# --- timeouts ----------------------------------------------------------------------


def _tick(gate: Gate, ev: i.Tick, now: float) -> Result:
    txn = gate.txn
    if gate.state is State.IN_MANTRAP and txn is not None and txn.thumb_asked is not None:
        # the thumb step has its own deadline (the reader's timeout and a grace): a
        # reader that never answers ends this traveller's crossing, not the lane
        if now - txn.thumb_asked < gate.settings.thumb_timeout_s + THUMB_GRACE_S:
            return gate, []
        late = ThumbResult(False, None, detail="the thumb reader did not answer", reader_fault=True)
        return _thumb(gate, i.ThumbVerified(txn.id, late), now)
    limit = gate.settings.timeouts[gate.state]
    if now - gate.since < limit:
        return gate, []
    return _TIMEOUT[gate.state](gate, now)


def _timeout_refer(gate: Gate, now: float) -> Result:
    return _refer(gate, (ReasonCode.GATE_TIMEOUT,), now)


def _timeout_entry(gate: Gate, now: float) -> Result:
    if gate.txn is not None and gate.txn.entered:
        # the traveller is inside but the entry never reported closed
        return _alarm(gate, ReasonCode.GATE_DOOR_STUCK, now, detail="entry door did not close")
    g, acts = _abort(gate, ReasonCode.GATE_ENTRY_NOT_USED, now)
    g2, idle = _to_idle(g, now)
    return g2, acts + idle


def _timeout_renew(reason: ReasonCode | None) -> Callable[[Gate, float], Result]:
    def renew(gate: Gate, now: float) -> Result:
        g = _enter(gate, gate.state, now)
        acts: list[Action] = []
        if reason is not None:
            g = replace(g, alarm=(reason,))  # cleared when the state is left (_announce)
            acts.append(
                Publish(
                    EventType.ALARM_RAISED,
                    g.txn.id if g.txn else None,
                    (reason,),
                    {"detail": "still unresolved"},
                )
            )
        return g, acts + [_status(g)]

    return renew


def _timeout_emergency(gate: Gate, now: float) -> Result:
    g = _enter(gate, State.EMERGENCY, now)
    return g, [OpenDoor(Door.ENTRY), OpenDoor(Door.EXIT), _status(g)]


_TIMEOUT: dict[State, Callable[[Gate, float], Result]] = {
    State.IDLE: _timeout_renew(None),  # status heartbeat
    State.DOC_CHECK: _timeout_refer,
    State.ENTRY_OPEN: _timeout_entry,
    State.IN_MANTRAP: _timeout_refer,
    State.EXIT_OPEN: _timeout_refer,
    State.REFERRED: _timeout_renew(ReasonCode.GATE_UNATTENDED),
    State.ALARM: _timeout_renew(None),
    State.OUT_OF_SERVICE: _timeout_renew(None),
    State.EMERGENCY: _timeout_emergency,
}

Rule = Callable[[Gate, Any, float], Result]
GlobalRule = Callable[[Gate, Any, float], Result | Gate | None]

GLOBAL: dict[type, GlobalRule] = {
    i.EmergencyChanged: _emergency,
    i.LinkLost: _fault,
    i.DeviceFault: _fault,
    i.LinkRestored: _restored,
    i.TamperChanged: _tamper,
    i.DoorFault: _door_fault,
    i.DoorChanged: _door_changed,
    i.PresenceChanged: _presence,
    i.OfficerCommand: _command,
}

_ALL = tuple(State)
RULES: dict[tuple[State, type], Rule] = {
    **{(s, i.Tick): _tick for s in _ALL},
    **{(s, i.Started): _started for s in _ALL if s is not State.EMERGENCY},
    (State.IDLE, i.DocumentPlaced): _placed,
    (State.DOC_CHECK, i.DocumentRead): _doc_read,
    (State.DOC_CHECK, i.ChipRead): _chip_read,
    (State.DOC_CHECK, i.ListsChecked): _lists_checked,
    (State.DOC_CHECK, i.DocumentRemoved): _removed,
    (State.ENTRY_OPEN, i.PresenceChanged): _entry_presence,
    (State.ENTRY_OPEN, i.DoorChanged): _entry_closed,
    (State.ENTRY_OPEN, i.FaceVerified): _early_face,
    (State.IN_MANTRAP, i.FaceVerified): _face,
    (State.IN_MANTRAP, i.ThumbVerified): _thumb,
    (State.EXIT_OPEN, i.PresenceChanged): _exit_presence,
    (State.REFERRED, i.OfficerCommand): _referred_command,
    (State.REFERRED, i.PresenceChanged): _referred_presence,
    (State.ALARM, i.OfficerCommand): _alarm_command,
}

# Inputs each state ignores on purpose (documented for the exhaustive walk in tests):
# device results of ended transactions, documents placed while busy, door and presence
# changes that carry no safety meaning in that state.
