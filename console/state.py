"""Each gate's last known state, rebuilt from what the broker delivers.

``Hall.ingest(topic, raw, now)`` is the only way state changes from the broker: it parses
the topic, decodes the JSON, validates it against the gate's packaged schemas
(``gate.events.validate``; sealed images by ``gate.referral_image``) and folds it into that
gate's ``GateView``. A message that is not JSON, fails its schema, names another gate
than its topic or arrives on the wrong leaf marks *that* gate faulty (shown on screen
with the reason) and changes nothing else; the mark clears when the same topic next
carries a valid message. Pure apart from logging: time comes in as ``now``.

Traveller images live here, in memory, only while their referral is open: they are
overwritten in place (``ReferralImages.wipe``) when the referral is resolved, replaced,
or the gate is seen back in IDLE. A retained image is refused unopened: a gate must
never leave a face on the broker; no retained message but the status is accepted.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from gate.events import EventError, parse_ts, topic_leaf, validate
from gate.reasons import TEXT, ReasonCode
from gate.referral_image import LEAF as IMAGE_LEAF
from gate.referral_image import ImageMessageError, ReferralImages, open_image_message

log = logging.getLogger("autogate.console.state")

PREFIX = "autogate/v1/"
GATE_ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
LINKS = ("broker", "barrier", "camera", "reader", "chip")
LINK_REASONS = {ReasonCode.GATE_LINK_LOST.value, ReasonCode.GATE_DEVICE_FAULT.value}
HOUR = 3600.0
KEEP_COMMANDS = 8


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
    crossings: deque[tuple[float, str]] = field(default_factory=deque)
    links: dict[str, str] = field(default_factory=lambda: dict.fromkeys(LINKS, "unknown"))
    alarms: dict[str, dict[str, Any]] = field(default_factory=dict)
    referral: dict[str, Any] | None = None
    images: ReferralImages | None = None
    early_images: ReferralImages | None = None  # arrived before their referral.opened
    commands: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=KEEP_COMMANDS))
    seen: deque[str] = field(default_factory=lambda: deque(maxlen=512))
    last_seen: float = 0.0

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
        self.new_acks: list[tuple[str, dict[str, Any]]] = []  # for the audit journal

    def view(self, gate: str) -> GateView:
        if gate not in self.gates:
            self.gates[gate] = GateView(self.site, gate)
        return self.gates[gate]

    def snapshot(self, now: float) -> list[dict[str, Any]]:
        return [self.gates[g].snapshot(now) for g in sorted(self.gates)]

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
            msg = json.loads(raw)
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
            if kind == "crossing.accepted":
                self._crossed(view, msg)
        elif kind == "referral.opened":
            view.referral = {
                "txn_id": msg["txn_id"],
                "ts": msg["ts"],
                "reasons": reasons,
                "document": msg.get("document", {}),
            }
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
                self._crossed(view, msg)  # the released traveller walks through
            if view.referral is not None and view.referral["txn_id"] == msg["txn_id"]:
                self._close_referral(view)
        elif kind == "alarm.raised":
            device = msg.get("device", "")
            for r in reasons:
                view.alarms[f"{r['code']}:{device}"] = {
                    **r,
                    "device": device,
                    "ts": msg["ts"],
                    "detail": msg.get("detail", ""),
                }
                if r["code"] in LINK_REASONS and device:
                    view.links[device] = "down"
        elif kind == "alarm.cleared":
            codes = {r["code"] for r in reasons}
            device = msg.get("device", "")
            for key, alarm in list(view.alarms.items()):
                if not codes or alarm["code"] in codes:
                    del view.alarms[key]
            if device and device in view.links:
                view.links[device] = "up"
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
            return
        for name in view.links:  # a device alarm says which link is down
            if view.links[name] == "unknown":
                view.links[name] = "up"
        if view.state == "IDLE":
            # back in normal service: every fault recovered, nothing is open any more
            view.alarms.clear()
            for name in view.links:
                view.links[name] = "up"
            if view.referral is not None:
                self._close_referral(view)

    def _crossed(self, view: GateView, msg: dict[str, Any]) -> None:
        if any(txn == msg["txn_id"] for _, txn in view.crossings):
            return
        try:
            at = parse_ts(msg["ts"]).timestamp()
        except ValueError:
            return
        view.crossings.append((at, msg["txn_id"]))

    def _close_referral(self, view: GateView) -> None:
        view.referral = None
        _wipe(view.images)  # the traveller's photos are overwritten with the referral
        _wipe(view.early_images)
        view.images = view.early_images = None

    def _ack(self, view: GateView, msg: dict[str, Any]) -> None:
        for cmd in view.commands:
            if cmd["command_id"] == msg["command_id"]:
                cmd["ack"] = {
                    "accepted": msg["accepted"],
                    "detail": msg.get("detail", ""),
                    "ts": msg["ts"],
                }
                self.new_acks.append((view.gate, dict(cmd)))
                return

    # --- from the console ------------------------------------------------------------

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


def _wipe(images: ReferralImages | None) -> None:
    if images is not None:
        images.wipe()


def _iso(now: float) -> str:
    return dt.datetime.fromtimestamp(now, dt.UTC).isoformat(timespec="milliseconds")[:-6] + "Z"
