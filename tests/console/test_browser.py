"""End to end in headless Chromium: real mosquitto, the console on uvicorn, simulated gates.

A gate refers a traveller with the chip portrait and the live frame; an officer signs
in, sees both photos and the reasons in plain words, releases; the gate verifies the
signed command with ``gate.commands``, acknowledges it, and the crossing appears on the
page. An officer cannot take a gate out of service, a supervisor can. A malformed
message marks its gate faulty and nothing else; a gate that vanishes shows OFFLINE.

``CONSOLE_SCREENSHOTS=docs`` writes the screenshots to ``docs/`` (committed there);
otherwise they go to the test's temp folder.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gate.actions import EventType
from gate.inputs import Command
from gate.reasons import TEXT, ReasonCode
from tests.console.gatesim import SimGate
from tests.console.helpers import DOCUMENT, PASSWORDS, SITE, jpeg, make_console
from tests.console.live import CHROMEDRIVER, CHROMIUM, ConsoleServer, chrome, gate_user, hall_broker

if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    pytest.skip(
        "chromium / chromium-driver not installed (./run installs them)", allow_module_level=True
    )
if shutil.which("mosquitto_passwd") is None:
    pytest.skip("mosquitto not installed (./run installs it)", allow_module_level=True)

from selenium.common.exceptions import StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as EC  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

GATES = [f"g{n:02d}" for n in range(1, 9)]
WAIT = 10
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hall(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    tmp = tmp_path_factory.mktemp("console-e2e")
    broker = hall_broker(tmp, GATES)
    console = make_console(tmp / "console", gates=GATES)
    server = ConsoleServer(console, broker.port)
    pub = console.signer.key.public_key()
    gates = {g: SimGate(SITE, g, broker.port, *gate_user(g), console_key=pub) for g in GATES}
    for g in gates.values():
        g.status("IDLE")
    driver = chrome(tmp / "chrome")
    try:
        yield {"tmp": tmp, "console": console, "server": server, "gates": gates, "driver": driver}
    finally:
        driver.quit()
        for g in gates.values():
            g.close()
        server.stop()
        console.audit.close()
        broker.stop()


def shot_dir(tmp: Path) -> Path:
    return ROOT / "docs" if os.environ.get("CONSOLE_SCREENSHOTS") == "docs" else tmp


def wait(driver: Any, cond: Any, timeout: float = WAIT) -> Any:
    return WebDriverWait(
        driver, timeout, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)
    ).until(cond)


def click(driver: Any, element_id: str) -> None:
    """Click a button of the detail panel (re-rendered on updates: retry a stale handle)."""
    wait(driver, EC.element_to_be_clickable((By.ID, element_id))).click()


def card_text(driver: Any, gate: str) -> str:
    """Read in the page (cards are re-rendered on every update: no stale handles)."""
    return driver.execute_script(
        'const c = document.querySelector(`article[data-gate="${arguments[0]}"]`);'
        " return c ? c.innerText : '';",
        gate,
    )


def card_has(gate: str, text: str) -> Any:
    def check(driver: Any) -> bool:
        return text in card_text(driver, gate)

    return check


def sign_in(driver: Any, base: str, name: str) -> None:
    driver.delete_all_cookies()
    driver.get(base + "/login")
    wait(driver, EC.element_to_be_clickable((By.ID, "signin")))
    driver.find_element(By.ID, "name").send_keys(name)
    driver.find_element(By.ID, "password").send_keys(PASSWORDS[name])
    driver.find_element(By.ID, "signin").click()
    wait(driver, lambda d: live(d) == "1")
    wait(driver, EC.text_to_be_present_in_element((By.ID, "officer"), name))


def live(driver: Any) -> str | None:
    """The page's own flag: 1 while its event stream is connected."""
    return driver.execute_script("return document.body ? document.body.dataset.live : null")


def select_gate(driver: Any, gate: str) -> None:
    def click(d: Any) -> bool:
        try:
            d.find_element(By.CSS_SELECTOR, f'article[data-gate="{gate}"]').click()
        except StaleElementReferenceException:  # an event redrew the card meanwhile
            return False
        return True

    wait(driver, click)
    wait(driver, EC.text_to_be_present_in_element((By.CSS_SELECTOR, "#detail h2"), f"Gate {gate}"))


def test_unauthenticated_browser_is_sent_to_login(hall: dict[str, Any]) -> None:
    d = hall["driver"]
    d.delete_all_cookies()
    d.get(hall["server"].url + "/")
    wait(d, EC.url_contains("/login"))
    assert "ERIKSSON" not in d.page_source


def test_officer_sees_referral_with_both_photos_and_releases(hall: dict[str, Any]) -> None:
    d, gates, base = hall["driver"], hall["gates"], hall["server"].url
    sign_in(d, base, "alice")
    for g in GATES:
        wait(d, card_has(g, "IDLE"))
    # a hall worth a screenshot: one of each situation
    gates["g03"].alarm(ReasonCode.GATE_TAILGATING)
    gates["g04"].status("OUT_OF_SERVICE")
    gates["g05"].cross()
    gates["g05"].cross()
    gates["g06"].publish(
        EventType.ALARM_RAISED, None, (ReasonCode.GATE_DEVICE_FAULT,), device="camera"
    )
    gates["g07"].vanish()  # no DISCONNECT: the broker publishes its last will
    txn = gates["g01"].refer(
        (ReasonCode.FACE_NO_MATCH, ReasonCode.CHIP_AA_FAILED),
        DOCUMENT,
        jpeg((190, 150, 125)),
        jpeg((150, 120, 100)),
        match=0.42,
        match_threshold=0.6,
        pad=0.97,
    )
    wait(d, card_has("g01", "REFERRED"))
    wait(d, card_has("g07", "OFFLINE"))
    wait(d, card_has("g03", TEXT[ReasonCode.GATE_TAILGATING]))
    wait(d, card_has("g05", "2 crossed"))
    wait(
        d,
        lambda dr: (
            "link-down"
            in dr.find_element(
                By.CSS_SELECTOR, 'article[data-gate="g06"] li[title^="camera"]'
            ).get_attribute("class")
        ),
    )
    d.save_screenshot(str(hall["tmp"] / "console-hall-8.png"))  # docs': test_browser_hall

    select_gate(d, "g01")
    wait(d, EC.presence_of_element_located((By.ID, "referral")))
    reasons = [li.text for li in d.find_elements(By.CSS_SELECTOR, "#referral .reasons li")]
    assert reasons == [TEXT[ReasonCode.FACE_NO_MATCH], TEXT[ReasonCode.CHIP_AA_FAILED]]
    assert "ERIKSSON" in d.find_element(By.CSS_SELECTOR, "#referral .document").text
    for which in ("portrait", "frame"):  # both photos decoded by the browser
        wait(
            d,
            lambda dr, w=which: dr.execute_script(
                f"const i=document.getElementById('img-{w}'); return !!i && i.complete && i.naturalWidth===240"
            ),
        )
    match = d.find_element(By.CSS_SELECTOR, '#scores li[data-score="match"]')
    assert match.find_element(By.TAG_NAME, "b").text == "0.42"
    assert "0.60" in match.text and "fail" in match.get_attribute("class")
    assert "PAD" in d.find_element(By.ID, "scores").text
    d.save_screenshot(str(shot_dir(hall["tmp"]) / "console-referral.png"))

    # an officer has no service commands: the button is disabled and the server refuses
    assert not d.find_element(By.ID, "cmd-out_of_service").is_enabled()
    status = d.execute_async_script(
        "const done = arguments[0];"
        "fetch('/api/me').then(r => r.json()).then(me => fetch('/api/gates/g02/cmd/out_of_service',"
        " {method: 'POST', headers: {'X-CSRF-Token': me.csrf}})).then(r => done(r.status));"
    )
    assert status == 403
    assert gates["g02"].commands == []

    click(d, "cmd-release")
    wait(
        d,
        EC.text_to_be_present_in_element(
            (By.CSS_SELECTOR, "#acks li.ok"), "release by alice: accepted"
        ),
    )
    wait(d, card_has("g01", "1 crossed"))
    wait(d, card_has("g01", "last: released"))
    wait(d, card_has("g01", "IDLE"))
    got = gates["g01"].commands
    assert [(c.command, c.officer) for c in got] == [(Command.RELEASE, "alice")]
    assert gates["g01"].refused == []
    # the photos are gone with the referral
    assert (
        d.execute_async_script(
            f"const done = arguments[0]; fetch('/api/gates/g01/referral/{txn}/portrait')"
            ".then(r => done(r.status));"
        )
        == 404
    )


def test_malformed_message_marks_only_that_gate_faulty(hall: dict[str, Any]) -> None:
    d, gates, base = hall["driver"], hall["gates"], hall["server"].url
    sign_in(d, base, "alice")
    gates["g02"].client.publish(
        f"autogate/v1/{SITE}/g02/status", b'{"schema": "gate.status/1"', qos=1
    )
    wait(d, card_has("g02", "FAULTY"))
    gates["g08"].status("DOC_CHECK")  # the rest of the hall goes on
    wait(d, card_has("g08", "DOC CHECK"))
    assert "FAULTY" not in card_text(d, "g08")
    gates["g02"].status("IDLE")  # a valid status again clears the mark
    wait(d, lambda dr: "FAULTY" not in card_text(dr, "g02"))


def test_a_thumb_referral_shows_both_scores_and_the_deciding_channel(
    hall: dict[str, Any],
) -> None:
    """Issue 19: the face and the thumb beside their thresholds, and which channel decided."""
    d, gates, base = hall["driver"], hall["gates"], hall["server"].url
    sign_in(d, base, "alice")
    g = gates["g02"]
    g.status("REFERRED")
    g.publish(
        EventType.REFERRAL_OPENED,
        "b1-000777",
        (ReasonCode.FACE_NO_MATCH, ReasonCode.THUMB_NO_MATCH),
        document=DOCUMENT,
        face={"match": False, "score": 0.31, "threshold": 0.6},
        thumb={"match": False, "score": 12.0, "threshold": 40.0, "finger": "right thumb"},
        biometric={"decided_by": "thumb", "mode": "face_then_thumb"},
    )
    wait(d, card_has("g02", "REFERRED"))
    select_gate(d, "g02")
    wait(d, EC.presence_of_element_located((By.CSS_SELECTOR, '#scores li[data-score="thumb"]')))
    thumb = d.find_element(By.CSS_SELECTOR, '#scores li[data-score="thumb"]')
    assert thumb.find_element(By.TAG_NAME, "b").text == "12.00"
    assert "40.00" in thumb.text and "fail" in thumb.get_attribute("class")
    match = d.find_element(By.CSS_SELECTOR, '#scores li[data-score="match"]')
    assert "0.60" in match.text and "fail" in match.get_attribute("class")
    assert "decided by thumb" in d.find_element(By.ID, "decided-by").text
    g.status("IDLE")
    wait(d, card_has("g02", "IDLE"))


def test_supervisor_takes_gate_out_of_service_and_back(hall: dict[str, Any]) -> None:
    d, gates, base = hall["driver"], hall["gates"], hall["server"].url
    sign_in(d, base, "sam")
    select_gate(d, "g08")
    click(d, "cmd-out_of_service")
    wait(d, card_has("g08", "OUT OF SERVICE"))
    wait(
        d,
        EC.text_to_be_present_in_element(
            (By.CSS_SELECTOR, "#acks li.ok"), "out of service by sam: accepted"
        ),
    )
    click(d, "cmd-in_service")
    wait(d, card_has("g08", "IDLE"))
    assert [(c.command, c.officer) for c in gates["g08"].commands] == [
        (Command.OUT_OF_SERVICE, "sam"),
        (Command.IN_SERVICE, "sam"),
    ]


def test_page_says_when_connection_lost_and_recovers(hall: dict[str, Any]) -> None:
    d, server, base = hall["driver"], hall["server"], hall["server"].url
    sign_in(d, base, "alice")
    # cut every live stream; EventSource reconnects by itself within about a second
    for q in list(server.console.streams):
        server.loop.call_soon_threadsafe(q.put_nowait, "")
    wait(d, lambda dr: live(dr) == "0")
    assert d.find_element(By.ID, "banner").is_displayed()
    wait(d, lambda dr: live(dr) == "1")
    assert not d.find_element(By.ID, "banner").is_displayed()


def test_console_service_from_its_config_file(hall: dict[str, Any], tmp_path: Path) -> None:
    """``autogate console --config FILE`` as a process: serves, refuses, connects, stops."""
    import subprocess
    import sys
    import time

    import httpx
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from sim.broker import PASSWORDS as BROKER_PASSWORDS
    from sim.broker import free_port

    key = tmp_path / "sign.pem"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp_path / "secret").write_text("x" * 40)
    (tmp_path / "pw").write_text(BROKER_PASSWORDS["console"])
    port = free_port()
    broker_port = hall["server"].bus.cfg.port
    (tmp_path / "c.yaml").write_text(
        f"site: {SITE}\ngates: [g01]\n"
        f"broker: {{port: {broker_port}, password_file: {tmp_path / 'pw'}, client_id: cli-test}}\n"
        f"signing: {{key_file: {key}}}\n"
        f"officers_file: {tmp_path / 'officers.json'}\naudit_file: {tmp_path / 'audit.jsonl'}\n"
        f"session: {{secret_file: {tmp_path / 'secret'}}}\nlisten: {{port: {port}}}\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "console", "--config", str(tmp_path / "c.yaml")],
        cwd=ROOT,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                hall_json = httpx.get(f"http://127.0.0.1:{port}/api/hall", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert hall_json.status_code == 401
        assert httpx.get(f"http://127.0.0.1:{port}/login").status_code == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert b"connected to 127.0.0.1" in err, err.decode()[-2000:]
