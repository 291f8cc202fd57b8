"""Attack review, round 3: the console's HTTP surface and its reading of gate messages.

Each test failed on the console before this round: a nested JSON body answered 500
(a crash, without the security headers), a body of any size was read into memory
before the login was even checked, a re-login left the browser's previous session
alive, the static route served the package's Python files, and a gate message with
duplicate keys or in UTF-16 was read as whatever Python's lenient parser made of it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from console.app import MAX_BODY, create_app
from console.state import MAX_MESSAGE, Hall
from gate.actions import EventType
from gate.journal import iter_records
from tests.console.helpers import IMAGE_KEY, PASSWORDS, SITE, make_console, message


@pytest.fixture()
def console(tmp_path: Path):  # type: ignore[no-untyped-def]
    c = make_console(tmp_path)
    yield c
    c.audit.close()


def client(console) -> TestClient:  # type: ignore[no-untyped-def]
    # a crash must come back as the app's answer, not as an exception in the test
    return TestClient(
        create_app(console), base_url="https://testserver", raise_server_exceptions=False
    )


def login_token(c: TestClient) -> str:
    return c.get("/api/login-token").json()["csrf"]


def login(c: TestClient, name: str) -> str:
    r = c.post(
        "/api/login",
        json={"name": name, "password": PASSWORDS[name]},
        headers={"X-CSRF-Token": login_token(c)},
    )
    assert r.status_code == 200, r.text
    return r.json()["csrf"]


NESTED = b"[" * 50_000 + b"]" * 50_000  # under the size limit, over Python's recursion limit


def test_a_nested_login_body_is_a_bad_request_not_a_crash(console) -> None:  # type: ignore[no-untyped-def]
    with client(console) as c:
        token = login_token(c)
        for body in (b"[" * 5000, b'{"name":"alice","name":"sam","password":"x"}', b"\xff\xfe{}"):
            r = c.post("/api/login", content=body, headers={"X-CSRF-Token": token})
            assert r.status_code == 400, (body[:20], r.status_code, r.text)
            assert "content-security-policy" in r.headers


def test_a_nested_command_body_is_a_bad_request_not_a_crash(console) -> None:  # type: ignore[no-untyped-def]
    with client(console) as c:
        csrf = login(c, "alice")
        r = c.post(
            "/api/gates/g01/cmd/release", content=b"[" * 5000, headers={"X-CSRF-Token": csrf}
        )
        assert r.status_code == 400, r.text
    assert console.publisher.sent == []


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_over_the_limit_is_refused_before_it_is_read(console, chunked: bool) -> None:  # type: ignore[no-untyped-def]
    """Anyone may post to the login: its body is bounded like nginx's (16 KB), also when
    the client sends no length (chunked) or a false one."""
    big = b'{"name":"alice","password":"' + b"a" * (MAX_BODY + 1) + b'"}'

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 4096):
            yield big[i : i + 4096]

    with client(console) as c:
        token = login_token(c)
        body = chunks() if chunked else big
        r = c.post("/api/login", content=body, headers={"X-CSRF-Token": token})  # type: ignore[arg-type]
        assert r.status_code == 413, r.text
        csrf = login(c, "alice")
        r = c.post("/api/gates/g01/cmd/release", content=big, headers={"X-CSRF-Token": csrf})
        assert r.status_code == 413, r.text
    assert console.publisher.sent == []


def test_a_crash_answers_with_the_security_headers_and_no_detail(console, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Starlette's own 500 page is made outside the app's middleware: it had no CSP, no
    no-store and no frame-ancestors. The page of a crash is the app's, with all of them."""
    with client(console) as c:
        login(c, "alice")

        def broken(now: float) -> list[object]:
            raise RuntimeError("ERIKSSON L898902C3")  # what an exception may quote

        monkeypatch.setattr(console.hall, "snapshot", broken)
        r = c.get("/api/hall")
        assert r.status_code == 500
        assert "ERIKSSON" not in r.text and "Traceback" not in r.text
        assert r.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
        assert r.json() == {"error": "internal error"}


def test_a_new_login_ends_the_session_the_browser_had(console) -> None:  # type: ignore[no-untyped-def]
    """On a shared hall desk the next officer signs in over the last one's session: the
    old cookie (copied before, or left in another tab's memory) must not stay valid."""
    with client(console) as c:
        login(c, "alice")
        old = c.cookies.get(console.session_cookie)
        login(c, "sam")
        assert c.get("/api/me").json()["officer"] == "sam"
    with client(console) as other:
        other.cookies.set(console.session_cookie, old)  # no domain: the jar files it as sent
        assert other.get("/api/me").status_code == 401


def test_static_serves_the_pages_files_only(console) -> None:  # type: ignore[no-untyped-def]
    with client(console) as c:
        login(c, "alice")
        assert c.get("/static/app.js").status_code == 200
        for name in ("__init__.py", "__pycache__", "app.js.map", "hall"):
            assert c.get(f"/static/{name}").status_code == 404, name


# --- what gates send -----------------------------------------------------------------


def _status(gate: str, state: str) -> tuple[str, bytes]:
    return message(gate, EventType.GATE_STATUS, state=state)


def test_a_gate_message_with_duplicate_keys_or_not_utf8_changes_nothing() -> None:
    hall = Hall(SITE, ["g01"], IMAGE_KEY)
    t, raw = _status("g01", "IDLE")
    hall.ingest(t, raw, time.time())
    assert hall.view("g01").state == "IDLE"
    payload = json.loads(_status("g01", "OUT_OF_SERVICE")[1])
    text = json.dumps(payload)
    for bad in (
        # the console read the last "state", another reader the first
        text.replace("{", '{"state":"IDLE",', 1).encode(),
        text.encode("utf-16"),
        b"\xef\xbb\xbf" + text.encode(),
    ):
        hall.ingest(t, bad, time.time())
        view = hall.view("g01")
        assert view.state == "IDLE", bad[:40]
        assert view.faulty is not None and view.faulty["leaf"] == "status"
    hall.ingest(t, text.encode(), time.time())
    assert hall.view("g01").state == "OUT_OF_SERVICE" and hall.view("g01").faulty is None


def test_a_gate_message_over_the_limit_is_refused_unread() -> None:
    hall = Hall(SITE, ["g01"], IMAGE_KEY)
    t, raw = _status("g01", "IDLE")
    padded = raw[:-1] + b"," + b'"x":"' + b"a" * MAX_MESSAGE + b'"}'
    hall.ingest(t, padded, time.time())
    view = hall.view("g01")
    assert view.faulty is not None and "more than" in view.faulty["detail"]
    assert view.state == "UNKNOWN"


def test_a_command_the_gate_would_refuse_as_malformed_is_not_signed(console) -> None:  # type: ignore[no-untyped-def]
    """The referral or alarm a decision names comes from the page's body: an id that is
    not Unicode crashed the signer (500), and one outside the command schema was signed
    and sent, for the gate to refuse as malformed and raise an alarm over."""
    with client(console) as c:
        csrf = login(c, "alice")
        for cmd, body in (
            ("release", b'{"txn_id":"\\ud800"}'),
            ("send_back", b'{"txn_id":"b1-\\udfff"}'),
            ("reset_alarm", b'{"alarm_id":"b1-a000001<script>"}'),
            ("reset_alarm", b'{"alarm_id":"b1-a000001\\n"}'),
        ):
            r = c.post(f"/api/gates/g01/cmd/{cmd}", content=body, headers={"X-CSRF-Token": csrf})
            assert r.status_code == 400, (cmd, body, r.status_code, r.text)
        r = c.post(
            "/api/gates/g01/cmd/reset_alarm",
            json={"alarm_id": "b1-a000001"},
            headers={"X-CSRF-Token": csrf},
        )
        assert r.status_code == 202, r.text  # the control
    assert [m["alarm_id"] for m in console.publisher.sent] == ["b1-a000001"]


def test_strict_json_refuses_unpaired_surrogates() -> None:
    from gate import strictjson

    for raw in (b'{"a":"\\ud800"}', b'["x",["\\udc00"]]', b'{"\\ud800":1}'):
        with pytest.raises(strictjson.StrictJsonError):
            strictjson.loads(raw)
    assert strictjson.loads(b'"\\ud83d\\ude00"') == "\U0001f600"  # a pair is one character


def test_a_referral_the_gate_reports_aborted_shows_no_photos_any_more(console) -> None:  # type: ignore[no-untyped-def]
    """A gate that crashes during a referral reports the interrupted transaction as
    aborted when it starts again; with a device fault it then stays OUT_OF_SERVICE, and
    the console kept the referral open and served the traveller's photos for as long as
    the gate was not back in IDLE (hours, for a broken reader)."""
    from gate.reasons import ReasonCode
    from tests.console.test_http import _open_referral

    _open_referral(console)
    url = "/api/gates/g01/referral/b1-000001/portrait"
    with client(console) as c:
        login(c, "alice")
        assert c.get(url).status_code == 200  # the control: open, shown
        for t, raw in (
            message(
                "g01",
                EventType.CROSSING_ABORTED,
                "b1-000001",
                (ReasonCode.GATE_RESTART,),
                stage="unknown",
            ),
            _status("g01", "OUT_OF_SERVICE"),
        ):
            console.on_message(t, raw)
        assert c.get(url).status_code == 404
        gate = c.get("/api/hall").json()["gates"][0]
        assert gate["gate"] == "g01" and gate["referral"] is None


def _ack(gate: str, command_id: str, accepted: bool, detail: str) -> tuple[str, bytes]:
    return message(
        gate,
        EventType.COMMAND_ACK,
        None,
        (),
        command_id=command_id,
        command="release",
        accepted=accepted,
        detail=detail,
        officer="alice",
    )


@pytest.mark.parametrize("forged_first", [True, False])
def test_a_forged_copys_refusal_does_not_overturn_the_gates_answer(
    console,  # type: ignore[no-untyped-def]
    forged_first: bool,
) -> None:
    """The console's broker account reads the command topics: whoever holds its password
    sees a command's id and sends a copy with a bad signature. The gate refuses the copy
    and its negative ack carries the genuine id; the console showed the officer's release
    as refused (and journalled that) although the gate had carried it out."""
    from tests.console.test_http import _open_referral

    _open_referral(console)
    with client(console) as c:
        csrf = login(c, "alice")
        r = c.post(
            "/api/gates/g01/cmd/release",
            json={"txn_id": "b1-000001"},
            headers={"X-CSRF-Token": csrf},
        )
        assert r.status_code == 202
        cid = r.json()["command_id"]
        genuine = _ack("g01", cid, True, "released")
        forged = _ack("g01", cid, False, "bad_signature: signature does not verify")
        for t, raw in (forged, genuine) if forged_first else (genuine, forged):
            console.on_message(t, raw)
        shown = c.get("/api/hall").json()["gates"][0]["commands"][0]
    assert shown["command_id"] == cid and shown["ack"]["accepted"] is True
    alerts = [r for r in iter_records(console.audit.path) if r["kind"] == "command.forged_copy"]
    assert len(alerts) == 1 and cid in alerts[0]["data"]["text"]


def test_an_officer_cannot_flood_a_gate_with_signed_commands(console) -> None:  # type: ignore[no-untyped-def]
    """Every command the console signs costs the gate a nonce (10,000 per window: a full
    store refuses every command as replayed), an fsync'd journal record and an ack. A
    session scripting the endpoint (a stolen session, a rogue tab) signed as fast as it
    could post; an officer clicks a few times a minute. Past the limit: 429."""
    from console.app import COMMANDS_PER_WINDOW

    console.clock = lambda: 1_800_000_000.0  # one instant: however slowly the posts go
    with client(console) as c:
        csrf = login(c, "sam")
        codes = [
            c.post("/api/gates/g01/cmd/out_of_service", headers={"X-CSRF-Token": csrf}).status_code
            for _ in range(COMMANDS_PER_WINDOW + 20)
        ]
    assert codes[:COMMANDS_PER_WINDOW] == [202] * COMMANDS_PER_WINDOW
    assert set(codes[COMMANDS_PER_WINDOW:]) == {429}
    assert len(console.publisher.sent) == COMMANDS_PER_WINDOW
    throttled = [r for r in iter_records(console.audit.path) if r["kind"] == "command.throttled"]
    assert len(throttled) == 1 and throttled[0]["data"]["officer"] == "sam"  # once per window
