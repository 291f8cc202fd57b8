"""The console sends only what the gate's last status says it accepts, and says why not.

The browser test shows the buttons; this holds the server to the same rule for a client
that posts directly (an old page, a script): refused with 409, journalled, nothing sent.
"""

from __future__ import annotations

from pathlib import Path

from gate import inputs as i
from gate import machine
from gate.actions import EventType, Publish
from gate.journal import iter_records
from tests.console.helpers import FakePublisher, make_console, message
from tests.console.test_http import client, login
from tests.core.helpers import T0, settings


def status_of(*inputs: i.Input) -> dict:
    g = machine.initial(settings(), T0, boot="b")
    data: dict = {}
    for ev in (i.Started(), *inputs):
        g, acts = machine.step(g, ev, T0)
        for a in acts:
            if isinstance(a, Publish) and a.type is EventType.GATE_STATUS:
                data = a.data
    return data


def test_a_command_the_gate_would_refuse_is_not_sent(tmp_path: Path) -> None:
    pub = FakePublisher()
    console = make_console(tmp_path, publisher=pub)
    try:
        c = client(console)
        console.on_message(*message("g01", EventType.GATE_STATUS, **status_of()))  # IDLE
        csrf = login(c, "alice")
        r = c.post("/api/gates/g01/cmd/release", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 409 and "does not accept release" in r.json()["error"]
        assert pub.sent == []
        refused = [
            x for x in iter_records(tmp_path / "audit.jsonl") if x["kind"] == "command.refused"
        ]
        assert refused and refused[-1]["data"]["command"] == "release"
        # in ALARM the reset goes out; a gate that does not say gets every command
        tailgate = status_of(i.PresenceChanged(2))
        console.on_message(*message("g01", EventType.GATE_STATUS, **tailgate))
        # a reset names the alarm the page showed; the console never fills one in
        r = c.post("/api/gates/g01/cmd/reset_alarm", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 409 and "alarm_id" in r.json()["error"] and pub.sent == []
        (g01,) = [g for g in c.get("/api/hall").json()["gates"] if g["gate"] == "g01"]
        shown = g01["alarm_id"]  # what the page shows and binds its reset to
        assert shown == tailgate["alarm_id"]
        r = c.post(
            "/api/gates/g01/cmd/reset_alarm",
            headers={"X-CSRF-Token": csrf},
            json={"alarm_id": shown},
        )
        assert r.status_code == 202 and [s["command"] for s in pub.sent] == ["reset_alarm"]
        assert pub.sent[-1]["alarm_id"] == shown  # inside the signature
        # a release names its referral: none named, none sent (no "the open one" fallback)
        console.on_message(*message("g02", EventType.GATE_STATUS, state="IDLE"))
        r = c.post("/api/gates/g02/cmd/release", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 409 and "txn_id" in r.json()["error"]
        assert len(pub.sent) == 1
        console.on_message(*message("g02", EventType.GATE_STATUS, state="IDLE"))
        r = c.post(  # a release names the referral on screen (issue 17 item 9)
            "/api/gates/g02/cmd/release", headers={"X-CSRF-Token": csrf}, json={"txn_id": "t1"}
        )
        assert r.status_code == 202
        # offline: nothing can reach the gate
        console.on_message(*message("g02", EventType.GATE_STATUS, state="OFFLINE", online=False))
        r = c.post("/api/gates/g02/cmd/send_back", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 409
    finally:
        console.audit.close()
