"""A simulated gate on a real broker, as the console sees one: status, events, images, acks.

It speaks only through the gate's own wire code: payloads from ``gate.events.build_payload``
(schema-checked), commands checked by ``gate.commands.verify_command`` against the
console's public key, acks from ``gate.events.ack_action``, a retained ``status`` with the
``OFFLINE`` last will. Its status says what the real core's would: the commands it accepts come from
``gate.offers`` (the rule ``gate.machine`` acks by), with doors, occupancy, emergency,
tamper and links; its behaviour on commands follows ``gate.machine`` in short.
Used by the browser test and by ``bench/console.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import socket
import threading
import uuid
from typing import Any

import paho.mqtt.client as mqtt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from paho.mqtt.enums import CallbackAPIVersion

from gate import offers
from gate.actions import AckCommand, EventType, Publish
from gate.commands import NonceStore, verify_command
from gate.events import ack_action, build_payload, topic, topic_leaf
from gate.inputs import Command, OfficerCommand
from gate.reasons import ReasonCode
from gate.referral_image import build_image_message
from tests.console.helpers import IMAGE_KEY

LINKS = frozenset({"barrier", "scanner", "chip", "camera", "face", "lists", "bus"})


class SimGate:
    def __init__(
        self,
        site: str,
        gate: str,
        port: int,
        username: str,
        password: str,
        console_key: Ed25519PublicKey | None = None,
    ) -> None:
        self.site, self.gate = site, gate
        self.keys = {"console-1": console_key} if console_key else {}
        self.nonces = NonceStore(30, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        self.state = "IDLE"
        self.txn: str | None = None
        self.alarm_id: str | None = None  # the alarm a reset must name (as the core does)
        self._alarms = 0
        # what the status reports besides the state (the core's Gate fields, in short)
        self.faults: frozenset[str] = frozenset()
        self.emergency = False
        self.tamper = False
        self.occupancy = 0
        self.doors = {"entry": "closed", "exit": "closed"}
        self.seq = 0
        self.commands: list[OfficerCommand] = []
        self.refused: list[Any] = []
        self._lock = threading.Lock()
        self.ready = threading.Event()
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sim-{site}-{gate}", protocol=mqtt.MQTTv5
        )
        c.username_pw_set(username, password)
        will = self._payload(
            Publish(EventType.GATE_STATUS, data={"state": "OFFLINE", "online": False})
        )
        c.will_set(topic(site, gate, "status"), json.dumps(will), qos=1, retain=True)
        c.on_connect = self._on_connect
        c.on_message = self._on_message
        self.client = c
        c.connect("127.0.0.1", port, keepalive=30)
        c.loop_start()
        if not self.ready.wait(10):
            raise RuntimeError(f"sim gate {gate} could not connect")

    # --- publishing -----------------------------------------------------------------

    def _payload(self, act: Publish) -> dict[str, Any]:
        return build_payload(
            act,
            site=self.site,
            gate=self.gate,
            ts=dt.datetime.now(dt.UTC),
            event_id=str(uuid.uuid4()),
        )

    def publish(self, etype: EventType, txn: str | None = None, reasons=(), **data: Any) -> None:
        payload = self._payload(Publish(etype, txn, tuple(reasons), data))
        retain = etype is EventType.GATE_STATUS
        self.client.publish(
            topic(self.site, self.gate, topic_leaf(etype)),
            json.dumps(payload),
            qos=1,
            retain=retain,
        )

    def status(self, state: str, **data: Any) -> None:
        self.state = state
        said: dict[str, Any] = {
            "presence": self.occupancy,
            "door_sensors": dict(self.doors),
            "emergency": self.emergency,
            "tamper": self.tamper,
            "links": {
                d: "fault" if d in self.faults else "ok" for d in sorted(LINKS | self.faults)
            },
            "accepts": [c.value for c in offers.accepted(self)],
        }
        if state == "ALARM" and self.alarm_id:
            said["alarm_id"] = self.alarm_id
        self.publish(EventType.GATE_STATUS, self.txn, state=state, **(said | data))

    def refer(
        self,
        reasons: tuple[ReasonCode, ...],
        document: dict[str, Any],
        portrait: bytes | None,
        frame: bytes | None,
        face: dict[str, Any] | None = None,
        **scores: float,
    ) -> str:
        """Refer a traveller; ``face`` is the core's face summary (scores, thresholds)."""
        self.seq += 1
        self.txn = f"b1-{self.seq:06d}"
        self.status("REFERRED")
        extra = {"face": face} if face else {}
        self.publish(EventType.REFERRAL_OPENED, self.txn, reasons, document=document, **extra)
        t, raw = build_image_message(
            recipient=IMAGE_KEY.public_key(),
            site=self.site,
            gate=self.gate,
            txn_id=self.txn,
            portrait_jpeg=portrait,
            frame_jpeg=frame,
            **scores,
        )
        self.client.publish(t, raw, qos=1)
        return self.txn

    def cross(self) -> None:
        self.seq += 1
        self.publish(EventType.CROSSING_ACCEPTED, f"b1-{self.seq:06d}")

    def alarm(self, reason: ReasonCode, **data: Any) -> None:
        self._alarms += 1
        self.alarm_id = f"sim-a{self._alarms:06d}"
        self.status("ALARM")
        self.publish(EventType.ALARM_RAISED, self.txn, (reason,), alarm_id=self.alarm_id, **data)

    def vanish(self) -> None:
        """Drop the connection without DISCONNECT: the broker publishes the last will."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    # --- commands (paho's thread) ---------------------------------------------------

    def _on_connect(self, client: mqtt.Client, *_: Any) -> None:
        client.subscribe(topic(self.site, self.gate, "cmd/+"), qos=1)
        self.ready.set()

    def _on_message(self, _c: mqtt.Client, _ud: Any, msg: mqtt.MQTTMessage) -> None:
        leaf = msg.topic.rsplit("/", 1)[-1]
        got = verify_command(
            msg.payload,
            topic_command=leaf,
            site=self.site,
            gate=self.gate,
            keys=self.keys,
            now=dt.datetime.now(dt.UTC),
            nonces=self.nonces,
        )
        with self._lock:
            if not isinstance(got, OfficerCommand):
                self.refused.append(got)
                self._ack(
                    AckCommand(
                        got.command or Command.RELEASE, got.command_id or "", False, str(got.reason)
                    )
                )
                return
            self.commands.append(got)
            self._apply(got)

    def _ack(self, ack: AckCommand, officer: str = "") -> None:
        act = ack_action(ack, officer=officer)
        self.client.publish(
            topic(self.site, self.gate, "cmd-ack"), json.dumps(self._payload(act)), qos=1
        )

    def _apply(self, cmd: OfficerCommand) -> None:
        ok = AckCommand(cmd.command, cmd.command_id, True)
        why = offers.refusal(self, cmd.command)  # the rule the real core acks by
        if why is not None:
            self._ack(AckCommand(cmd.command, cmd.command_id, False, why), cmd.officer)
            return
        if cmd.command in (Command.RELEASE, Command.SEND_BACK):
            if self.state != "REFERRED" or self.txn is None:
                self._ack(
                    AckCommand(
                        cmd.command, cmd.command_id, False, f"not applicable in {self.state}"
                    ),
                    cmd.officer,
                )
                return
            self._ack(ok, cmd.officer)
            self.publish(
                EventType.REFERRAL_RESOLVED,
                self.txn,
                resolution=cmd.command.value,
                officer=cmd.officer,
                command_id=cmd.command_id,
            )
            self.status("EXIT_OPEN" if cmd.command is Command.RELEASE else "IDLE")
            self.txn = None
            if cmd.command is Command.RELEASE:
                self.status("IDLE")
        elif cmd.command is Command.RESET_ALARM:
            if self.state != "ALARM" or cmd.alarm_id != self.alarm_id:
                why = (
                    f"not applicable in {self.state}"
                    if self.state != "ALARM"
                    else f"reset_alarm is for {cmd.alarm_id}; the alarm now is {self.alarm_id}"
                )
                self._ack(AckCommand(cmd.command, cmd.command_id, False, why), cmd.officer)
                return
            self._ack(ok, cmd.officer)
            self.publish(
                EventType.ALARM_CLEARED, None, (ReasonCode.GATE_OFFICER,), officer=cmd.officer
            )
            self.status("IDLE")
        elif cmd.command is Command.OUT_OF_SERVICE:
            self._ack(ok, cmd.officer)
            self.publish(
                EventType.ALARM_RAISED, None, (ReasonCode.GATE_OFFICER,), officer=cmd.officer
            )
            self.status("OUT_OF_SERVICE")
        elif cmd.command is Command.IN_SERVICE:
            if self.state != "OUT_OF_SERVICE":
                self._ack(
                    AckCommand(cmd.command, cmd.command_id, False, f"gate is {self.state}"),
                    cmd.officer,
                )
                return
            self._ack(ok, cmd.officer)
            self.status("IDLE")
