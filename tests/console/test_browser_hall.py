"""The hall as an officer on shift sees it: 50 simulated gates in Chromium at 1920 x 1080.

One test per point of the console issue: only the commands the gate accepts, with its
answer beside the button; doors, people, emergency, tamper and links on every card;
faulty and offline apart from unknown, with their own colour and count; an alarm cleared
when its cause clears (statuses and alarms from the real ``gate.machine``); every face
score against its threshold; the referral queue, alerts, shortcuts and the last hour;
the whole hall on one screen. ``CONSOLE_SCREENSHOTS=docs`` writes docs/console-hall.png.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gate import inputs as i
from gate import machine
from gate.actions import EventType, Publish
from gate.inputs import Command, Door
from gate.reasons import TEXT, ReasonCode
from tests.console.gatesim import SimGate
from tests.console.helpers import DOCUMENT, SITE, jpeg, make_console
from tests.console.live import CHROMEDRIVER, CHROMIUM, ConsoleServer, chrome, gate_user, hall_broker
from tests.core.helpers import settings

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip(
        "chromium / chromium-driver not installed (./run installs them)", allow_module_level=True
    )
if shutil.which("mosquitto_passwd") is None:
    pytest.skip("mosquitto not installed (./run installs it)", allow_module_level=True)

from selenium.webdriver.common.by import By  # noqa: E402

from tests.console.test_browser import card_text, sign_in, wait  # noqa: E402

GATES = [f"g{n:02d}" for n in range(1, 51)]
ROOT = Path(__file__).resolve().parents[2]
WIDTH, HEIGHT = 1920, 1080


@pytest.fixture(scope="module")
def hall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("console-hall")
    broker = hall_broker(tmp, GATES)
    console = make_console(tmp / "console", gates=GATES)
    server = ConsoleServer(console, broker.port)
    pub = console.signer.key.public_key()
    gates: dict[str, SimGate] = {}
    driver = None
    try:
        for g in GATES:
            gates[g] = SimGate(SITE, g, broker.port, *gate_user(g), console_key=pub)
            gates[g].status("IDLE")
        driver = chrome(tmp / "chrome", WIDTH, HEIGHT)
        driver.execute_cdp_cmd(  # the page's viewport exactly: the officer's full-HD screen
            "Emulation.setDeviceMetricsOverride",
            {"width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": False},
        )
        yield {"tmp": tmp, "server": server, "gates": gates, "driver": driver}
    finally:
        if driver is not None:
            driver.quit()
        for sim in gates.values():
            sim.close()
        server.stop()
        console.audit.close()
        broker.stop()


@pytest.fixture
def page(hall: dict[str, Any]) -> Any:
    d = hall["driver"]
    sign_in(d, hall["server"].url, "alice")
    for g in ("g01", "g50"):
        wait(d, lambda dr, g=g: "IDLE" in card_text(dr, g) or "REFERRED" in card_text(dr, g))
    return d


def select(d: Any, gate: str) -> None:
    d.execute_script(f'document.querySelector(`article[data-gate="{gate}"]`).click()')
    wait(d, lambda dr: f"Gate {gate}" in (query(dr, "#detail h2", "textContent") or ""))


def buttons(d: Any) -> list[str]:
    return d.execute_script(
        "return [...document.querySelectorAll('#detail .actions button')].map(b => b.id.slice(4))"
    )


def click(d: Any, element_id: str) -> None:
    """Click a detail-panel button once it is there (in the page: no stale handles)."""
    js = "const b = document.getElementById(arguments[0]); if (!b || b.disabled) return false;"
    wait(d, lambda dr: dr.execute_script(js + " b.click(); return true;", element_id))


def query(d: Any, selector: str, prop: str) -> Any:
    """A property of the first match, read in the page (no stale handles)."""
    return d.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e[arguments[1]] : null",
        selector,
        prop,
    )


def text_of(d: Any, element_id: str) -> str:
    """Read in the page (panels are re-rendered on updates: no stale handles)."""
    return d.execute_script(
        "const e = document.getElementById(arguments[0]); return e ? e.innerText : ''", element_id
    )


def card_class(d: Any, gate: str) -> str:
    return d.execute_script(
        f'return document.querySelector(`article[data-gate="{gate}"]`).className'
    )


def run_core(sim: SimGate, *inputs: i.Input, gate: machine.Gate | None = None) -> machine.Gate:
    """Drive the real core with ``inputs`` and publish what it publishes, as the daemon
    does; a new core starts first unless ``gate`` goes on from an earlier call."""
    g = gate
    if g is None:
        g = machine.initial(settings(), time.time(), boot="h")
        inputs = (i.Started(), *inputs)
    for ev in inputs:
        g, acts = machine.step(g, ev, time.time())
        for a in acts:
            if isinstance(a, Publish):
                sim.publish(a.type, a.txn_id, a.reasons, **a.data)
    return g


# --- 1. only the commands the gate accepts, its answer beside the button -------------------


def test_buttons_are_exactly_what_the_gate_accepts_with_its_answer(
    page: Any, hall: dict[str, Any]
) -> None:
    d, gates = page, hall["gates"]
    select(d, "g02")  # IDLE: nothing to release, send back or reset
    wait(d, lambda dr: buttons(dr) == ["out_of_service"])
    assert query(d, "#cmd-out_of_service", "disabled") is True  # officer: no
    gates["g03"].alarm(ReasonCode.GATE_TAILGATING)
    select(d, "g03")
    wait(d, lambda dr: buttons(dr) == ["reset_alarm", "out_of_service"])  # no release
    gates["g04"].refer((ReasonCode.DOC_EXPIRED,), DOCUMENT, None, None)
    select(d, "g04")
    wait(d, lambda dr: buttons(dr) == ["release", "send_back", "out_of_service"])
    # the console itself refuses what the gate said it would refuse
    status = d.execute_async_script(
        "const done = arguments[0];"
        "fetch('/api/me').then(r => r.json()).then(me => fetch('/api/gates/g02/cmd/release',"
        " {method: 'POST', headers: {'X-CSRF-Token': me.csrf}})).then(r => done(r.status));"
    )
    assert status == 409 and gates["g02"].commands == []
    # the gate's answer sits beside its button: tamper since the last status -> refused
    select(d, "g03")
    gates["g03"].tamper = True
    click(d, "cmd-reset_alarm")
    wait(
        d,
        lambda dr: "tamper input still active" in text_of(dr, "answer-reset_alarm"),
    )
    gates["g03"].tamper = False
    gates["g03"].status("ALARM")
    click(d, "cmd-reset_alarm")
    wait(d, lambda dr: "IDLE" in card_text(dr, "g03"))
    select(d, "g04")
    click(d, "cmd-send_back")
    wait(d, lambda dr: "IDLE" in card_text(dr, "g04"))
    assert [c.command for c in gates["g04"].commands] == [Command.SEND_BACK]


# --- 2. doors, people, emergency, tamper, links ----------------------------------------------


def test_cards_show_doors_people_emergency_tamper_and_links(
    page: Any, hall: dict[str, Any]
) -> None:
    d, gates = page, hall["gates"]
    run_core(  # fire alarm: the real core releases both doors; the controller opens them
        gates["g05"],
        i.EmergencyChanged(True),
        i.DoorChanged(Door.ENTRY, closed=False),
        i.DoorChanged(Door.EXIT, closed=False),
    )
    wait(d, lambda dr: "EMERGENCY: doors released" in card_text(dr, "g05"))
    assert "In open" in card_text(d, "g05") and "Out open" in card_text(d, "g05")
    run_core(  # the exit pushed open while locked, two people inside, the cabinet opened
        gates["g06"],
        i.DoorChanged(Door.ENTRY, closed=True),
        i.DoorChanged(Door.EXIT, closed=False),
        i.PresenceChanged(2),
        i.TamperChanged(True),
    )
    wait(d, lambda dr: "TAMPER" in card_text(dr, "g06"))  # the last of the four
    text = card_text(d, "g06")
    assert "inside 2" in text and "TAMPER" in text and "In closed" in text
    assert query(d, 'article[data-gate="g06"] .door-forced', "textContent") == "Out forced"
    run_core(gates["g07"], i.DeviceFault("camera", "frozen"))
    camera = 'article[data-gate="g07"] li[title^="camera"]'
    wait(d, lambda dr: "link-down" in (query(dr, camera, "className") or ""))


# --- 3. faulty and offline: own colour, own count --------------------------------------------


def test_faulty_and_offline_have_their_own_colour_and_count(
    page: Any, hall: dict[str, Any]
) -> None:
    d, gates = page, hall["gates"]
    run_core(gates["g08"], i.LinkLost("barrier", "no reply"))  # controller lost
    gates["g09"].vanish()  # the broker publishes its last will
    gates["g10"].status("OUT_OF_SERVICE")  # taken out by a supervisor: not a fault
    wait(d, lambda dr: "cond-faulty" in card_class(dr, "g08"))
    wait(d, lambda dr: "cond-offline" in card_class(dr, "g09"))
    wait(d, lambda dr: "cond-out_of_service" in card_class(dr, "g10"))

    def colour(gate: str) -> str:
        return d.execute_script(
            "return getComputedStyle(document.querySelector("
            f'`article[data-gate="{gate}"]`)).borderLeftColor'
        )

    assert len({colour("g08"), colour("g09"), colour("g10"), colour("g11")}) == 4
    faulty = int(text_of(d, "count-faulty").split()[0])
    offline = int(text_of(d, "count-offline").split()[0])
    assert faulty >= 1 and offline >= 1  # counted apart (other tests add their own)


# --- 4. an alarm clears when its cause clears ------------------------------------------------


def test_alarm_clears_when_the_link_comes_back(page: Any, hall: dict[str, Any]) -> None:
    d, gates = page, hall["gates"]
    lost = TEXT[ReasonCode.GATE_LINK_LOST]
    core = run_core(gates["g12"], i.LinkLost("barrier", "no reply"))
    wait(d, lambda dr: lost in card_text(dr, "g12"))
    run_core(gates["g12"], i.LinkRestored("barrier"), gate=core)
    wait(d, lambda dr: lost not in card_text(dr, "g12"))
    assert "OUT OF SERVICE" in card_text(d, "g12")  # back in service only on command
    assert "cond-out_of_service" in card_class(d, "g12")


# --- 5. every score against its threshold ----------------------------------------------------


def test_every_face_score_is_shown_against_its_threshold(page: Any, hall: dict[str, Any]) -> None:
    d, gates = page, hall["gates"]
    face = {
        "match": True,
        "score": 0.71,
        "threshold": 0.6,
        "pad_score": 0.62,
        "pad_threshold": 0.5,
        "quality": 0.8,
        "quality_threshold": 0.3,
        "backend": "dlib",
    }
    gates["g13"].refer((ReasonCode.FACE_PAD,), DOCUMENT, jpeg((190, 150, 125)), None, face=face)
    select(d, "g13")
    wait(d, lambda dr: query(dr, '#scores li[data-score="pad"]', "className"))

    def score(key: str) -> tuple[str, str, str]:
        li = f'#scores li[data-score="{key}"]'
        return (
            query(d, li + " b", "textContent"),
            query(d, li + " .rule", "textContent"),
            query(d, li, "className"),
        )

    assert score("match")[:2] == ("0.71", "needs ≥ 0.60") and "pass" in score("match")[2]
    assert score("pad")[:2] == ("0.62", "refers above 0.50") and "fail" in score("pad")[2]
    assert score("quality")[:2] == ("0.80", "needs ≥ 0.30") and "pass" in score("quality")[2]


# --- 6. the queue, alerts, shortcuts, the last hour ----------------------------------------------


def test_queue_alerts_shortcuts_and_the_last_hour(page: Any, hall: dict[str, Any]) -> None:
    d, gates = page, hall["gates"]
    d.execute_script("localStorage.clear(); window.__alerts = []")
    d.refresh()
    wait(d, lambda dr: dr.execute_script("return document.body.dataset.live") == "1")
    gates["g20"].refer((ReasonCode.FACE_NO_MATCH,), DOCUMENT, None, None)
    time.sleep(1.1)
    gates["g21"].refer((ReasonCode.DOC_EXPIRED,), DOCUMENT, None, None)
    wait(d, lambda dr: len(dr.execute_script("return window.__alerts")) >= 2)
    alerts = d.execute_script("return window.__alerts")
    assert [(a["gate"], a["kind"], a["sound"]) for a in alerts[-2:]] == [
        ("g20", "referral", True),
        ("g21", "referral", True),
    ]
    wait(d, lambda dr: "flash" in card_class(dr, "g21"))  # painted on the next frame
    queue = d.execute_script(
        "return [...document.querySelectorAll('#queue li')].map(li => li.dataset.gate)"
    )
    assert queue.index("g20") < queue.index("g21")  # oldest first
    assert query(d, '#queue li[data-gate="g20"] .wait', "textContent").endswith(" s")
    # muted for this officer: the next alert flashes without a sound, and it is remembered
    d.find_element(By.ID, "mute").click()
    gates["g22"].alarm(ReasonCode.GATE_DOOR_FORCED)
    wait(d, lambda dr: dr.execute_script("return window.__alerts.at(-1).gate") == "g22")
    assert d.execute_script("return window.__alerts.at(-1)")["sound"] is False
    assert d.execute_script("return localStorage.getItem('autogate.mute.alice')") == "1"
    d.find_element(By.ID, "mute").click()
    # keyboard: N selects the oldest waiting referral, B sends that traveller back
    d.execute_script("document.activeElement.blur()")
    oldest = queue[0]
    d.find_element(By.TAG_NAME, "body").send_keys("n")
    wait(d, lambda dr: f"Gate {oldest}" in (query(dr, "#detail h2", "textContent") or ""))
    d.find_element(By.TAG_NAME, "body").send_keys("b")
    wait(d, lambda dr: [c.command for c in gates[oldest].commands] == [Command.SEND_BACK])
    # the last hour, per gate and for the hall
    gates["g23"].publish(EventType.CROSSING_ACCEPTED, "x-1", timings={"total": 3.0})
    gates["g23"].publish(EventType.CROSSING_ACCEPTED, "x-2", timings={"total": 5.0})
    wait(d, lambda dr: "2 crossed · 0 referred · 4.0 s" in card_text(dr, "g23"))
    wait(d, lambda dr: "face no match" in text_of(dr, "hall-stats"))
    hour = text_of(d, "hall-hour")
    select(d, "g21")  # per gate: referred for which reason, of how many travellers
    wait(d, lambda dr: "doc expired 1 (100 %)" in text_of(dr, "detail"))
    assert "travellers" in hour and "referred" in hour and "median" in hour


# --- 7. 50 gates on one full-HD screen ------------------------------------------------------


def test_fifty_gates_fit_1920x1080_without_scrolling(page: Any, hall: dict[str, Any]) -> None:
    d = page
    assert d.execute_script("return [innerWidth, innerHeight]") == [WIDTH, HEIGHT]
    wait(d, lambda dr: len(dr.find_elements(By.CSS_SELECTOR, "#hall article")) == 50)
    fit = d.execute_script(
        "const h = document.getElementById('hall');"
        "const cards = [...h.querySelectorAll('article')].map(c => c.getBoundingClientRect());"
        "return {overflow: h.scrollHeight - h.clientHeight,"
        " page: document.documentElement.scrollHeight - innerHeight,"
        " outside: cards.filter(r => r.bottom > innerHeight || r.right > innerWidth).length,"
        " minH: Math.min(...cards.map(r => r.height)), minW: Math.min(...cards.map(r => r.width))}"
    )
    assert fit["overflow"] <= 0 and fit["page"] <= 0 and fit["outside"] == 0, fit
    assert fit["minH"] >= 100 and fit["minW"] >= 120, fit  # still readable
    for g in GATES:  # every card still says its gate and state
        assert g in card_text(d, g)
    face = {"match": False, "score": 0.48, "threshold": 0.6, "pad_score": 0.12}
    face |= {"pad_threshold": 0.5, "quality": 0.83, "quality_threshold": 0.3}
    portrait, frame = jpeg((190, 150, 125)), jpeg((150, 120, 100))
    hall["gates"]["g30"].refer(
        (ReasonCode.FACE_NO_MATCH,), DOCUMENT, portrait, frame, face=face, match=0.48
    )
    select(d, "g30")  # a referral open beside the hall, as an officer works it
    wait(
        d,
        lambda dr: dr.execute_script(
            "const i = document.getElementById('img-frame');"
            " return !!i && i.complete && i.naturalWidth > 0"
        ),
    )
    out = ROOT / "docs" if os.environ.get("CONSOLE_SCREENSHOTS") == "docs" else hall["tmp"]
    d.save_screenshot(str(out / "console-hall.png"))
