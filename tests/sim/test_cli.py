"""``autogate sim --hold``: typed commands, the live view, the closing table."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from rich.live import Live

from sim import cli


@pytest.mark.parametrize("line", ["", "\n", "   \n", "\t\n"])
def test_an_empty_line_is_no_command(line: str) -> None:
    assert cli.parse_command(line) is None


@pytest.mark.parametrize(
    ("line", "want"),
    [
        ("emergency on\n", ("emergency", (True,))),
        ("emergency off\n", ("emergency", (False,))),
        ("officer release\n", ("officer", ("release",))),
        ("officer send-back\n", ("officer", ("send_back",))),
        ("place\n", ("place_document", ())),
    ],
)
def test_commands_parse(line: str, want: tuple[str, tuple[Any, ...]]) -> None:
    assert cli.parse_command(line) == want


@pytest.mark.parametrize(
    "line", ["emergency\n", "emergency maybe\n", "officer\n", "officer fly\n", "teleport\n"]
)
def test_a_bad_command_is_an_error_not_a_default(line: str) -> None:
    with pytest.raises(cli.CommandError):
        cli.parse_command(line)


def test_a_refused_officer_command_shows_its_reason() -> None:
    ack = {
        "type": "command.ack",
        "command": "release",
        "accepted": False,
        "reasons": ["gate_command_refused"],
        "detail": "bad_signature",
    }
    assert cli.describe(ack) == "release: refused (bad_signature)"
    assert cli.describe({**ack, "accepted": True}) == "release: accepted"


def test_the_closing_table_says_what_happened_to_each_traveller() -> None:
    crossed = [{"type": "gate.status"}, {"type": "crossing.accepted", "reasons": []}]
    sent_back = [
        {"type": "referral.opened", "reasons": ["doc_expired"]},
        {"type": "referral.resolved", "resolution": "send_back"},
    ]
    waiting = [{"type": "referral.opened", "reasons": ["face_pad"]}]
    assert cli.outcome(crossed) == "crossed"
    assert cli.outcome(sent_back) == "referred (doc_expired), sent back"
    assert "still waiting" in cli.outcome(waiting)
    assert cli.outcome([]) == "no outcome seen"


class FakeRig:
    """What ``_by_hand`` drives: records calls, fails on request."""

    def __init__(self, tmp: Path) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.run_dir = tmp
        self.doors: list[str] = []
        self.controller = type("C", (), {"people": 0})()
        self.monitor = type("M", (), {"state": "IDLE", "events": []})()

    def __getattr__(self, name: str) -> Any:
        async def step(t: Any, *args: Any) -> None:
            self.calls.append((name, args))
            if name == "pull_cable":
                raise RuntimeError("controller gone")

        return step

    def wait_ack(self, since: int, timeout: float) -> dict[str, Any]:
        return {"type": "command.ack", "command": "release", "accepted": False, "detail": "why"}


def test_hold_survives_empty_and_bad_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    typed = "\n\nemergency\nbogus\npull\nofficer release\nemergency on\nplace\n"
    monkeypatch.setattr(sys, "stdin", io.StringIO(typed))
    out = io.StringIO()
    rig = FakeRig(tmp_path)
    with Live(cli._view(rig), console=Console(file=out, width=120)) as live:
        asyncio.run(cli._by_hand(rig, live))
    assert [c[0] for c in rig.calls] == ["pull_cable", "officer", "emergency", "place_document"]
    assert ("emergency", (True,)) in rig.calls
    text = out.getvalue()
    assert "emergency needs on or off" in text
    assert "unknown command: bogus" in text
    assert "controller gone" in text
    assert "release: refused (why)" in text


def test_the_monitor_tells_listeners_of_every_message(tmp_path: Path) -> None:
    """The live view redraws on each event, not after the next typed command."""
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from sim.broker import PASSWORDS, Broker, make_certs
    from sim.rig import GATE, SITE, Monitor

    certs = make_certs(tmp_path / "certs", ["monitor"])
    broker = Broker(tmp_path / "broker", certs)
    broker.start()
    try:
        mon = Monitor(broker.port, PASSWORDS["monitor"])
        seen: list[str | None] = []
        mon.listeners.append(lambda: seen.append(mon.state))
        time.sleep(0.5)
        pub = mqtt.Client(CallbackAPIVersion.VERSION2)
        pub.username_pw_set(f"gate-{SITE}-{GATE}", PASSWORDS[f"gate-{SITE}-{GATE}"])
        pub.connect("127.0.0.1", broker.port)
        pub.loop_start()
        for n, state in enumerate(("ENTRY_OPEN", "IN_MANTRAP", "EXIT_OPEN")):
            msg = {"type": "gate.status", "state": state, "event_id": str(n)}
            pub.publish(f"autogate/v1/{SITE}/{GATE}/status", json.dumps(msg), qos=1)
        deadline = time.monotonic() + 5
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert seen[-1] == "EXIT_OPEN"
        pub.disconnect()
        pub.loop_stop()
        mon.close()
    finally:
        broker.stop()


def test_a_rig_that_cannot_start_says_why_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fresh machine's first `./run demo` met a missing /run/pcscd as a 30-line traceback;
    what cannot start is one line saying why, and what was started is stopped."""
    from sim import rig as rig_module
    from sim.pcscd import PcscdError

    stopped: list[bool] = []

    async def start(self: Any) -> None:
        raise PcscdError("private pcscd exited (32): mount: /run/pcscd: mount point does not exist")

    async def stop(self: Any) -> None:
        stopped.append(True)

    monkeypatch.setattr(rig_module.Rig, "start", start)
    monkeypatch.setattr(rig_module.Rig, "stop", stop)
    monkeypatch.setattr(rig_module.Rig, "parts", {}, raising=False)
    from autogate.cli import build_parser

    argv = ["sim", "--run-dir", str(tmp_path), "--no-console"]
    args = build_parser(argv).parse_args(argv)
    assert cli.cmd_sim(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "did not start" in err and "/run/pcscd" in err
    assert stopped == [True]
