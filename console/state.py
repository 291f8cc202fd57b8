"""Each gate's last known state, rebuilt from what the broker delivers.

``Hall.ingest(topic, raw, now)`` is the only way state changes from the broker: it parses
the topic, decodes the JSON (``gate.strictjson``: UTF-8, no duplicate keys, at most
``MAX_MESSAGE`` bytes), validates it against the gate's packaged schemas
(``gate.events.validate``; sealed images by ``gate.referral_image``) and folds it into that
gate's ``GateView``. A message that is not JSON, fails its schema, names another gate
than its topic or arrives on the wrong leaf marks *that* gate faulty (shown on screen
with the reason) and changes nothing else; the mark clears when the same topic next
carries a valid message. Pure apart from logging: time comes in as ``now``.

Traveller images live here, in memory, only while their referral is open: they are
overwritten in place (``ReferralImages.wipe``) when the referral is resolved, replaced,
its transaction reported ended (a crossing outcome: a restart reports it aborted), or the
gate is seen back in IDLE. A retained image is refused unopened: a gate must
never leave a face on the broker; no retained message but the status is accepted.
"""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import re
import statistics
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gate import strictjson
from gate.events import EventError, parse_ts, topic_leaf, validate
from gate.reasons import TEXT, ReasonCode
from gate.referral_image import LEAF as IMAGE_LEAF
from gate.referral_image import ImageMessageError, ReferralImages, open_image_message

log = logging.getLogger("autogate.console.state")

PREFIX = "autogate/v1/"
GATE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
LINKS = ("broker", "barrier", "camera", "reader", "chip")
# the core's link names (gate.machine.LINKS) as the hall shows them; "bus" is the broker
CORE_LINKS = {"scanner": "reader", "bus": "broker"}
CONDITIONS = (
    "unknown",
    "offline",
    "emergency",
    "alarm",
    "faulty",
    "referral",
    "out_of_service",
    "in_service",
)
LINK_REASONS = {ReasonCode.GATE_LINK_LOST.value, ReasonCode.GATE_DEVICE_FAULT.value}
HOUR = 3600.0
KEEP_COMMANDS = 8
# what one gate can make the console hold, whatever it sends (a gate does ~1 traveller/s
# at most; it has fewer than 16 device links and a handful of alarms at once)
MAX_OUTCOMES = 10_000
MAX_LINKS = 16
MAX_ALARMS = 32
# a sealed referral image is under 1.4 MB; the broker caps packets at 2 MiB (max_packet_size)
MAX_MESSAGE = 2 * 1024 * 1024


Outcome = tuple[float, str, tuple[str, ...], float | None, str]


def summarise(outcomes: Iterable[Outcome]) -> dict[str, Any]:
    """Travellers, crossings, referrals, referrals per reason and the median processing
    time (document placed to outcome, as the gate timed it) of some outcomes."""
    kinds: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    totals: list[float] = []
    for _, kind, codes, total, _ in outcomes:
        kinds[kind] += 1
        reasons.update(codes)
        if isinstance(total, int | float):
            totals.append(float(total))
    return {
        "travellers": kinds["accepted"] + kinds["referred"] + kinds["aborted"],
        "crossings": kinds["accepted"] + kinds["released"],  # released after a referral
        "referrals": kinds["referred"],
        "aborted": kinds["aborted"],
        "by_reason": dict(reasons.most_common()),
        "median_s": round(statistics.median(totals), 2) if totals else None,
    }


def event_time(msg: dict[str, Any], now: float) -> float | None:
    """When an event happened, for the last hour's counts: its own ``ts`` (a backlog
    delivered late counts when it happened), never later than now (a gate's clock ahead
    must not keep it in the window for ever); None when it is older than the hour."""
    try:
        at = min(parse_ts(msg["ts"]).timestamp(), now)
    except ValueError:
        return None
    return at if at >= now - HOUR else None


def reason_view(code: str) -> dict[str, str]:
    """A reason code with its plain words for the officer (unknown codes shown as is)."""
    try:
        return {"code": code, "text": TEXT[ReasonCode(code)]}
    except ValueError:
        return {"code": code, "text": code.replace("_", " ")}


@dataclass
class GateView:
    site: str
    gate: str
    state: str = "UNKNOWN"
    online: bool | None = None
    status_ts: str | None = None
    detail: str = ""
    faulty: dict[str, str] | None = None  # {"leaf", "detail", "at"}
    last_decision: dict[str, Any] | None = None
    crossings: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=MAX_OUTCOMES))
    links: dict[str, str] = field(default_factory=lambda: dict.fromkeys(LINKS, "unknown"))
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)
    referral: dict[str, Any] | None = None
    images: ReferralImages | None = None
    early_images: ReferralImages | None = None  # arrived before their referral.opened
    ended: deque[str] = field(default_factory=lambda: deque(maxlen=64))  # txns seen to end
    commands: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEEP_COMMANDS))
    seen: deque[str] = field(default_factory=lambda: deque(maxlen=512))
    last_seen: float = 0.0
    presence: int | None = None
    doors: dict[str, str] | None = None  # as sensed (door_sensors), or as commanded
    emergency: bool | None = None
    tamper: bool | None = None
    accepts: list[str] | None = None  # None: the gate does not say (older software)
    alarm_id: str | None = None  # the ALARM the gate's status names: a reset is bound to it
    # the last hour's outcomes: (event time, "accepted" | "referred" | "aborted" | "released",
    # reason codes, processing seconds or None, txn id), one per transaction
    outcomes: deque[Outcome] = field(default_factory=lambda: deque(maxlen=MAX_OUTCOMES))

    def offered(self) -> list[str] | None:
        """The commands the gate said it accepts (None: its software does not say;
        none while it is offline: no command can reach it)."""
        return [] if self.online is False else self.accepts

    def condition(self) -> str:
        """One word for the card's colour and the hall's counts (CONDITIONS)."""
        if self.online is False:
            return "offline"
        if self.state == "UNKNOWN":
            return "unknown"
        if self.state == "EMERGENCY" or self.emergency:
            return "emergency"
        if self.state == "ALARM":
            return "alarm"
        link_down = any(s == "down" for n, s in self.links.items() if n != "broker")
        if (
            self.faulty is not None
            or link_down
            or (
                self.state == "OUT_OF_SERVICE"
                and any(a["code"] in LINK_REASONS for a in self.alarms.values())
            )
        ):
            return "faulty"
        if self.state == "REFERRED" or self.referral is not None:
            return "referral"
        if self.state == "OUT_OF_SERVICE":
            return "out_of_service"
        return "in_service"

    def hour(self, now: float) -> dict[str, Any]:
        """The last hour at this gate: travellers, outcomes, reasons, median time."""
        while self.outcomes and self.outcomes[0][0] < now - HOUR:
            self.outcomes.popleft()
        return summarise(self.outcomes)

    def outcome(self, msg: dict[str, Any], kind: str, now: float) -> None:
        """Count one transaction's outcome once (a redelivery is not a second traveller)."""
        txn = msg.get("txn_id") or ""
        recent = list(itertools.islice(reversed(self.outcomes), 64))  # redeliveries are recent
        if txn and any(o[4] == txn and o[1] == kind for o in recent):
            return
        at = event_time(msg, now)
        if at is None:
            return
        total = msg.get("timings", {}).get("total")
        reasons = tuple(msg.get("reasons", ())) if kind == "referred" else ()
        self.outcomes.append((at, kind, reasons, total, txn))

    def crossings_this_hour(self, now: float) -> int:
        while self.crossings and self.crossings[0][0] < now - HOUR:
            self.crossings.popleft()
        return len(self.crossings)

    def snapshot(self, now: float) -> dict[str, Any]:
        """What the page shows; no image bytes (those have their own endpoint)."""
        ref = None
        if self.referral is not None:
            imgs = self.images
            ref = {
                **self.referral,
                "portrait": bool(imgs and imgs.portrait),
                "frame": bool(imgs and imgs.frame),
                "scores": dict(imgs.scores) if imgs else {},
            }
        return {
            "site": self.site,
            "gate": self.gate,
            "state": self.state if self.online is not False else "OFFLINE",
            "online": self.online,
            "status_ts": self.status_ts,
            "heard_ms": int(self.last_seen * 1000),  # when the console last heard the gate
            "detail": self.detail,
            "faulty": self.faulty,
            "last_decision": self.last_decision,
            "crossings_hour": self.crossings_this_hour(now),
            "hour": self.hour(now),
            "condition": self.condition(),
            "presence": self.presence,
            "doors": self.doors,
            "emergency": self.emergency,
            "tamper": self.tamper,
            "accepts": self.offered(),
            "alarm_id": self.alarm_id,
            "links": dict(self.links),
            "alarms": list(self.alarms.values()),
            "referral": ref,
            "commands": list(self.commands),
        }


class Hall:
    """All gates of one site, keyed by gate id."""

    def __init__(
        self,
        site: str,
        gates: list[str] | tuple[str, ...] = (),
        image_key: X25519PrivateKey | None = None,
    ) -> None:
        self.site = site
        self.image_key = image_key  # opens the sealed referral photos; None: none shown
        self.gates: dict[str, GateView] = {g: GateView(site, g) for g in gates}
        self.rejected = 0  # malformed or schema-invalid messages seen
        self.images_dropped = 0  # photos of transactions already ended: wiped on arrival
        self.new_acks: list[tuple[str, dict[str, Any]]] = []  # for the audit journal
        # (gate, command, detail): a command id answered twice (a copy the console did not send)
        self.new_forged: list[tuple[str, dict[str, Any], str]] = []

    def view(self, gate: str) -> GateView:
        if gate not in self.gates:
            self.gates[gate] = GateView(self.site, gate)
        return self.gates[gate]

    def snapshot(self, now: float) -> list[dict[str, Any]]:
        return [self.gates[g].snapshot(now) for g in sorted(self.gates)]

    def stats(self, now: float) -> dict[str, Any]:
        """The hall at a glance: gates per condition and the last hour over all gates."""
        conditions = dict.fromkeys(CONDITIONS, 0)
        for view in self.gates.values():
            conditions[view.condition()] += 1
            view.hour(now)  # drop what is older than an hour
        outcomes = [o for view in self.gates.values() for o in view.outcomes]
        return {"gates": len(self.gates), "conditions": conditions, "hour": summarise(outcomes)}

    # --- from the broker ---------------------------------------------------------------

    def ingest(self, topic: str, raw: bytes, now: float, retained: bool = False) -> str | None:
        """Fold one message in; returns the gate id whose view changed, or None."""
        if not topic.startswith(PREFIX):
            return None
        parts = topic[len(PREFIX) :].split("/", 2)
        if len(parts) != 3 or parts[0] != self.site or not GATE_ID.match(parts[1]):
            log.warning("ignored message on unexpected topic %r", topic[:200])
            return None
        _, gate, leaf = parts
        view = self.view(gate)
        view.last_seen = now
        try:
            # strict: UTF-8, unique keys (one meaning for every reader), and bounded
            msg = strictjson.loads(raw, max_bytes=MAX_MESSAGE, allow_nan=True)
            if not isinstance(msg, dict):
                raise EventError("not a JSON object")
            if retained and leaf != "status":
                # only the status is state; a retained event would replay a stale
                # referral (or a face) to every console that connects later
                raise EventError(f"retained message on {leaf[:100]} refused (never retained)")
            if leaf == IMAGE_LEAF:
                if self.image_key is None:
                    raise ImageMessageError("no image key configured: photos cannot be opened")
                self._images(view, open_image_message(msg, self.site, gate, self.image_key))
            else:
                validate(msg)
                if (msg["site"], msg["gate"]) != (self.site, gate):
                    raise EventError(f"payload is for {msg['site']}/{msg['gate']}")
                if topic_leaf(msg["type"]) != leaf:
                    raise EventError(f"{msg['type']} does not belong on {leaf}")
                if msg["event_id"] in view.seen:
                    return None  # a redelivery (QoS 1, outbox after a crash)
                view.seen.append(msg["event_id"])
                self._apply(view, leaf, msg, now)
        except (ValueError, UnicodeDecodeError, EventError, ImageMessageError) as exc:
            self.rejected += 1
            detail = str(exc)[:300]
            shown = leaf[:100]  # the topic is the sender's text: bounded, and quoted in logs
            log.warning("gate %s: bad message on %r: %s", gate, shown, detail)
            view.faulty = {"leaf": shown, "detail": detail, "at": _iso(now)}
            return gate
        if view.faulty is not None and view.faulty["leaf"] == leaf[:100]:
            view.faulty = None
        return gate

    def _images(self, view: GateView, images: ReferralImages) -> None:
        if images.txn_id in view.ended:
            # late (redelivered, delayed): its referral is over, nobody may see it now
            self.images_dropped += 1
            log.info("gate %s: photos of ended transaction %s dropped", view.gate, images.txn_id)
            images.wipe()
            return
        if view.referral is not None and view.referral["txn_id"] == images.txn_id:
            _wipe(view.images)
            view.images = images
        else:
            _wipe(view.early_images)
            view.early_images = images

    def _apply(self, view: GateView, leaf: str, msg: dict[str, Any], now: float) -> None:
        kind = msg["type"]
        reasons = [reason_view(r) for r in msg.get("reasons", [])]
        if kind == "gate.status":
            self._status(view, msg)
        elif kind in ("crossing.accepted", "crossing.aborted"):
            view.last_decision = {
                "decision": msg["decision"],
                "ts": msg["ts"],
                "txn_id": msg["txn_id"],
                "reasons": reasons,
            }
            view.ended.append(msg["txn_id"])
            if kind == "crossing.accepted":
                self._crossed(view, msg, now)
            view.outcome(msg, msg["decision"], now)
            if view.referral is not None and view.referral["txn_id"] == msg["txn_id"]:
                # the referral's transaction ended (a restart reports it aborted, and a
                # gate out of service never passes IDLE): its photos go now
                self._close_referral(view)
        elif kind == "referral.opened":
            view.referral = {
                "txn_id": msg["txn_id"],
                "ts": msg["ts"],
                "reasons": reasons,
                "document": msg.get("document", {}),
                "face": msg.get("face"),  # scores with the thresholds the gate applied
                "thumb": msg.get("thumb"),  # the live thumb against DG3, with its threshold
                "biometric": msg.get("biometric"),  # which channel decided; why no thumb
            }
            view.outcome(msg, "referred", now)
            early = view.early_images
            _wipe(view.images)
            view.images = early if early and early.txn_id == msg["txn_id"] else None
            if view.images is None:
                _wipe(early)
            view.early_images = None
            view.last_decision = {
                "decision": "referred",
                "ts": msg["ts"],
                "txn_id": msg["txn_id"],
                "reasons": reasons,
            }
        elif kind == "referral.resolved":
            view.ended.append(msg["txn_id"])
            resolution = msg["resolution"]
            view.last_decision = {
                "decision": {"release": "released", "send_back": "sent back"}.get(
                    resolution, resolution.replace("_", " ")
                ),
                "ts": msg["ts"],
                "txn_id": msg["txn_id"],
                "reasons": reasons,
                "officer": msg.get("officer", ""),
            }
            if resolution == "release":
                self._crossed(view, msg, now)  # the released traveller walks through
                view.outcome(msg, "released", now)
            if view.referral is not None and view.referral["txn_id"] == msg["txn_id"]:
                self._close_referral(view)
        elif kind == "alarm.raised":
            device = msg.get("device", "")
            for r in reasons:
                key = f"{r['code']}:{device}"
                view.alarms.pop(key, None)  # re-announced: now the newest
                view.alarms[key] = {
                    **r,
                    "device": device,
                    "ts": msg["ts"],
                    "detail": msg.get("detail", ""),
                }
                while len(view.alarms) > MAX_ALARMS:  # the oldest go first
                    del view.alarms[next(iter(view.alarms))]
                link = CORE_LINKS.get(device, device)
                room = link in view.links or len(view.links) < MAX_LINKS
                if r["code"] in LINK_REASONS and device and link != "broker" and room:
                    view.links[link] = "down"
        elif kind == "alarm.cleared":
            codes = {r["code"] for r in reasons}
            device = msg.get("device", "")
            for key, alarm in list(view.alarms.items()):
                if (not codes or alarm["code"] in codes) and (
                    not device or alarm["device"] == device
                ):
                    del view.alarms[key]
            link = CORE_LINKS.get(device, device)
            if device and link in view.links and link != "broker":
                view.links[link] = "up"
        elif kind == "command.ack":
            self._ack(view, msg)

    def _status(self, view: GateView, msg: dict[str, Any]) -> None:
        view.online = bool(msg["online"])
        view.state = msg["state"]
        view.status_ts = msg["ts"]
        view.detail = msg.get("detail", "")
        view.links["broker"] = "up" if view.online else "down"
        if not view.online:  # the gate is gone: nothing is known about its devices
            for name in view.links:
                if name != "broker":
                    view.links[name] = "unknown"
            view.doors = view.presence = view.emergency = view.tamper = None
            return
        view.presence = msg.get("presence")
        view.doors = msg.get("door_sensors") or msg.get("doors")
        view.emergency = msg.get("emergency")
        view.tamper = msg.get("tamper")
        view.accepts = msg.get("accepts")
        view.alarm_id = msg.get("alarm_id") if view.state == "ALARM" else None
        links = msg.get("links")
        if links:  # the gate says how each device link is: that is the whole list
            said = {CORE_LINKS.get(n, n): "up" if h == "ok" else "down" for n, h in links.items()}
            said.pop("broker", None)  # the broker link is the gate being online
            view.links = {"broker": "up", **dict(itertools.islice(said.items(), MAX_LINKS - 1))}
        for name in view.links:  # older gates: a device alarm says which link is down
            if view.links[name] == "unknown":
                view.links[name] = "up"
        if view.state == "IDLE":
            # back in normal service: every fault recovered, nothing is open any more
            view.alarms.clear()
            for name in view.links:
                view.links[name] = "up"
            if view.referral is not None:
                self._close_referral(view)

    def _crossed(self, view: GateView, msg: dict[str, Any], now: float) -> None:
        if any(txn == msg["txn_id"] for _, txn in itertools.islice(reversed(view.crossings), 64)):
            return
        at = event_time(msg, now)
        if at is None:
            return
        view.crossings.append((at, msg["txn_id"]))

    def _close_referral(self, view: GateView) -> None:
        if view.referral is not None:
            view.ended.append(view.referral["txn_id"])
        view.referral = None
        _wipe(view.images)  # the traveller's photos are overwritten with the referral
        _wipe(view.early_images)
        view.images = view.early_images = None

    def _ack(self, view: GateView, msg: dict[str, Any]) -> None:
        """The gate's answer to a command the console sent. A second answer for one id
        means a second message carried that id (a redelivered ack is dropped by its
        event id, a redelivered command is never answered twice): a copy someone else
        sent. The answer shown is the weightiest (``_weight``), every answer is
        journalled, and the second is reported (``take_forged``)."""
        for cmd in view.commands:
            if cmd["command_id"] == msg["command_id"]:
                ack = {
                    "accepted": msg["accepted"],
                    "detail": msg.get("detail", ""),
                    "ts": msg["ts"],
                }
                old = cmd["ack"]
                if old is None or _weight(ack) >= _weight(old):
                    cmd["ack"] = ack
                self.new_acks.append((view.gate, {**cmd, "ack": ack}))
                if old is not None:
                    self.new_forged.append((view.gate, dict(cmd), ack["detail"] or old["detail"]))
                return

    # --- from the console ------------------------------------------------------------

    def take_forged(self) -> list[tuple[str, dict[str, Any], str]]:
        forged, self.new_forged = self.new_forged, []
        return forged

    def take_acks(self) -> list[tuple[str, dict[str, Any]]]:
        acks, self.new_acks = self.new_acks, []
        return acks

    def command_sent(self, gate: str, command: dict[str, Any]) -> None:
        self.view(gate).commands.appendleft(
            {
                "command_id": command["command_id"],
                "command": command["command"],
                "officer": command["officer"],
                "ts": command["ts"],
                "ack": None,
            }
        )

    def open_images(self, gate: str, txn_id: str) -> ReferralImages | None:
        """The images of ``txn_id`` if it is the gate's open referral, else None."""
        view = self.gates.get(gate)
        if view is None or view.referral is None or view.referral["txn_id"] != txn_id:
            return None
        return view.images


# refusals the gate gives before (or instead of) checking the console's signature: the
# message's command_id is whatever its sender wrote (gate.commands.verify_command)
UNVERIFIED_REFUSALS = frozenset({"malformed", "unsigned", "unknown_key", "bad_signature"})


def _weight(ack: dict[str, Any]) -> int:
    """Which of two answers for one command id stands: the gate carried it out (2) over a
    refusal of a verified command (1) over a refusal of a message nobody verified (0),
    which may be a forged copy carrying the genuine command's id."""
    if ack["accepted"]:
        return 2
    return 0 if str(ack["detail"]).split(":", 1)[0] in UNVERIFIED_REFUSALS else 1


def _wipe(images: ReferralImages | None) -> None:
    if images is not None:
        images.wipe()


def _iso(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
