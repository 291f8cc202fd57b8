"""The HTTP surface: sessions, CSRF, roles, throttling, images, signed commands."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from console.app import PROTECTED, create_app
from gate.actions import EventType
from gate.commands import NonceStore, verify_command
from gate.inputs import Command, OfficerCommand
from gate.journal import iter_records, verify
from gate.reasons import ReasonCode
from gate.referral_image import build_image_message
from tests.console.helpers import DOCUMENT, IMAGE_KEY, PASSWORDS, SITE, jpeg, make_console, message

PORTRAIT, FRAME = jpeg((181, 140, 120)), jpeg((171, 130, 110))


@pytest.fixture()
def console(tmp_path: Path):
    c = make_console(tmp_path)
    yield c
    c.audit.close()


def client(console) -> TestClient:
    # https: the session cookie is Secure, so httpx only sends it over https
    return TestClient(create_app(console), base_url="https://testserver")


def login(c: TestClient, name: str) -> str:
    token = c.get("/api/login-token").json()["csrf"]
    r = c.post(
        "/api/login",
        json={"name": name, "password": PASSWORDS[name]},
        headers={"X-CSRF-Token": token},
    )
    assert r.status_code == 200, r.text
    return r.json()["csrf"]


def _path(path: str) -> str:
    return (
        path.replace("{gate}", "g01")
        .replace("{txn}", "b1-000001")
        .replace("{which}", "portrait")
        .replace("{command}", "release")
    )


def _open_referral(console) -> None:
    now = time.time()
    for t, raw in (
        message(
            "g01", EventType.REFERRAL_OPENED, "b1-000001", (ReasonCode.FACE_PAD,), document=DOCUMENT
        ),
        build_image_message(
            recipient=IMAGE_KEY.public_key(),
            site=SITE,
            gate="g01",
            txn_id="b1-000001",
            portrait_jpeg=PORTRAIT,
            frame_jpeg=FRAME,
            match=0.8,
            pad=0.2,
        ),
    ):
        console.on_message(t, raw)
    assert console.hall.open_images("g01", "b1-000001") is not None
    del now


@pytest.mark.parametrize("method,path", [(m, p) for m, p, _, _ in PROTECTED])
def test_every_protected_endpoint_refuses_without_session(console, method: str, path: str) -> None:
    _open_referral(console)
    with client(console) as c:
        r = c.request(method, _path(path), follow_redirects=False)
        assert r.status_code in (401, 303), r.status_code
        assert b"ERIKSSON" not in r.content and not r.content.startswith(b"\xff\xd8")
        if r.status_code == 303:
            assert r.headers["location"] == "/login"
    assert console.publisher.sent == []


def test_app_script_needs_session_login_page_does_not(console) -> None:
    with client(console) as c:
        assert c.get("/static/app.js").status_code == 401
        assert c.get("/login").status_code == 200
        assert c.get("/static/login.js").status_code == 200
        login(c, "alice")
        assert c.get("/static/app.js").status_code == 200


@pytest.mark.parametrize("method,path", [(m, p) for m, p, _, write in PROTECTED if write])
@pytest.mark.parametrize("token", [None, "wrong-token"])
def test_every_state_changing_endpoint_needs_csrf(console, method, path, token) -> None:
    with client(console) as c:
        login(c, "sam")
        headers = {"X-CSRF-Token": token} if token else {}
        r = c.request(method, _path(path), headers=headers)
        assert r.status_code == 403
        assert "CSRF" in r.json()["error"]
        assert c.get("/api/me").status_code == 200  # logout did not happen
    assert console.publisher.sent == []


def test_cross_origin_post_refused_even_with_token(console) -> None:
    with client(console) as c:
        csrf = login(c, "sam")
        r = c.post(
            "/api/gates/g01/cmd/release",
            headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"},
        )
        assert r.status_code == 403
    assert console.publisher.sent == []


def test_login_needs_its_own_csrf_token(console) -> None:
    with client(console) as c:
        r = c.post("/api/login", json={"name": "alice", "password": PASSWORDS["alice"]})
        assert r.status_code == 403
        c.get("/api/login-token")
        r = c.post(
            "/api/login",
            json={"name": "alice", "password": PASSWORDS["alice"]},
            headers={"X-CSRF-Token": "guessed"},
        )
        assert r.status_code == 403


def test_session_cookie_flags(console) -> None:
    with client(console) as c:
        token = c.get("/api/login-token").json()["csrf"]
        r = c.post(
            "/api/login",
            json={"name": "alice", "password": PASSWORDS["alice"]},
            headers={"X-CSRF-Token": token},
        )
        cookie = [
            v
            for k, v in r.headers.multi_items()
            if k == "set-cookie" and console.session_cookie in v
        ][0]
        low = cookie.lower()
        assert "httponly" in low and "secure" in low and "samesite=strict" in low
        assert r.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in r.headers["content-security-policy"]


def test_forged_cookie_refused(console) -> None:
    with client(console) as c:
        # no domain: the jar files the cookie under the host it is sent to (with
        # domain="testserver" it was never sent, and the test could not fail)
        c.cookies.set(console.session_cookie, "eyJhbGciOi.forged.value")
        assert c.get("/api/hall").status_code == 401


def test_failed_logins_rate_limited_and_logged(console, tmp_path: Path) -> None:
    with client(console) as c:
        token = c.get("/api/login-token").json()["csrf"]
        codes = []
        for _ in range(7):
            r = c.post(
                "/api/login",
                json={"name": "alice", "password": "wrong-password"},
                headers={"X-CSRF-Token": token},
            )
            codes.append(r.status_code)
        assert codes == [401] * 5 + [429] * 2
        # locked out even with the right password while the window lasts
        r = c.post(
            "/api/login",
            json={"name": "alice", "password": PASSWORDS["alice"]},
            headers={"X-CSRF-Token": token},
        )
        assert r.status_code == 429
    kinds = [rec["kind"] for rec in iter_records(tmp_path / "audit.jsonl")]
    assert kinds.count("login.failed") == 5 and kinds.count("login.throttled") == 3
    assert verify(tmp_path / "audit.jsonl").ok


def test_officer_releases_supervisor_also_takes_out_of_service(console, tmp_path) -> None:
    with client(console) as c:
        csrf = login(c, "alice")
        r = c.post("/api/gates/g01/cmd/out_of_service", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 403
        r = c.post(
            "/api/gates/g01/cmd/release", headers={"X-CSRF-Token": csrf}, json={"txn_id": "t1"}
        )
        assert r.status_code == 202
    with client(console) as c:
        csrf = login(c, "sam")
        r = c.post("/api/gates/g01/cmd/out_of_service", headers={"X-CSRF-Token": csrf})
        assert r.status_code == 202
        assert (
            c.post("/api/gates/g01/cmd/explode", headers={"X-CSRF-Token": csrf}).status_code == 404
        )
        assert (
            c.post("/api/gates/g99/cmd/release", headers={"X-CSRF-Token": csrf}).status_code == 404
        )
    sent = console.publisher.sent
    assert [(s["command"], s["officer"]) for s in sent] == [
        ("release", "alice"),
        ("out_of_service", "sam"),
    ]
    # the gate's own verifier accepts what the console signed
    nonces = NonceStore(30, dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    for s in sent:
        got = verify_command(
            json.dumps(s),
            topic_command=s["command"],
            site=SITE,
            gate="g01",
            keys={"console-1": console.signer.key.public_key()},
            now=dt.datetime.now(dt.UTC),
            nonces=nonces,
        )
        assert isinstance(got, OfficerCommand) and got.command is Command(s["command"])
    records = [r for r in iter_records(tmp_path / "audit.jsonl")]
    by_kind = {r["kind"]: r["data"] for r in records}
    assert by_kind["command.refused"]["officer"] == "alice"
    assert by_kind["command.sent"]["officer"] == "sam"
    assert verify(tmp_path / "audit.jsonl").ok


def test_images_only_while_referral_open_no_store_never_on_disk(console, tmp_path) -> None:
    _open_referral(console)
    with client(console) as c:
        login(c, "alice")
        r = c.get("/api/gates/g01/referral/b1-000001/portrait")
        assert r.status_code == 200 and r.content == PORTRAIT
        assert r.headers["content-type"] == "image/jpeg"
        assert "no-store" in r.headers["cache-control"]
        assert c.get("/api/gates/g01/referral/b1-000001/frame").content == FRAME
        assert c.get("/api/gates/g01/referral/b1-000002/frame").status_code == 404
        assert c.get("/api/gates/g01/referral/b1-000001/other").status_code == 404
        t, raw = message(
            "g01", EventType.REFERRAL_RESOLVED, "b1-000001", resolution="send_back", officer="alice"
        )
        console.on_message(t, raw)
        assert c.get("/api/gates/g01/referral/b1-000001/portrait").status_code == 404
    for f in tmp_path.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert PORTRAIT[100:200] not in data and FRAME[100:200] not in data, f
    viewed = [r for r in iter_records(tmp_path / "audit.jsonl") if r["kind"] == "images.viewed"]
    assert {v["data"]["image"] for v in viewed} == {"portrait", "frame"}


def test_disabled_officer_loses_session_and_logout_ends_it(console) -> None:
    with client(console) as c:
        login(c, "alice")
        assert c.get("/api/hall").status_code == 200
        console.officers.disable("alice")
        assert c.get("/api/hall").status_code == 401
    with client(console) as c:
        csrf = login(c, "sam")
        cookie = c.cookies.get(console.session_cookie)
        with client(console) as copy:  # the same cookie from elsewhere works until logout
            copy.cookies.set(console.session_cookie, cookie)
            assert copy.get("/api/hall").status_code == 200
        assert c.post("/api/logout", headers={"X-CSRF-Token": csrf}).status_code == 200
        c.cookies.set(console.session_cookie, cookie)  # replaying the old cookie
        assert c.get("/api/hall").status_code == 401


def test_hall_json_and_broker_message_with_ack_is_audited(console, tmp_path) -> None:
    from gate.actions import AckCommand
    from gate.events import ack_action

    with client(console) as c:
        csrf = login(c, "alice")
        cid = c.post(
            "/api/gates/g01/cmd/release", headers={"X-CSRF-Token": csrf}, json={"txn_id": "t1"}
        ).json()["command_id"]
        act = ack_action(AckCommand(Command.RELEASE, cid, False, "no traveller to release"))
        t, raw = message("g01", act.type, None, **act.data)
        console.on_message(t, raw)
        gates = {g["gate"]: g for g in c.get("/api/hall").json()["gates"]}
        ack = gates["g01"]["commands"][0]["ack"]
        assert ack == {"accepted": False, "detail": "no traveller to release", "ts": ack["ts"]}
    acks = [r for r in iter_records(tmp_path / "audit.jsonl") if r["kind"] == "command.ack"]
    assert acks[0]["data"]["officer"] == "alice" and acks[0]["data"]["accepted"] is False


def test_command_while_broker_down_is_refused_not_queued(console, tmp_path) -> None:
    from console.config import BrokerConfig
    from console.mqtt import ConsoleBus

    bus = ConsoleBus(
        BrokerConfig(port=1, password_file=Path("/dev/null")), SITE, "pw", lambda t, r: None
    )
    console.publisher = bus  # never connected
    with client(console) as c:
        csrf = login(c, "alice")
        r = c.post(
            "/api/gates/g01/cmd/release", headers={"X-CSRF-Token": csrf}, json={"txn_id": "t1"}
        )
        assert r.status_code == 503 and "not connected" in r.json()["error"]
        gates = {g["gate"]: g for g in c.get("/api/hall").json()["gates"]}
        assert gates["g01"]["commands"] == []  # nothing shown as pending
    kinds = [r["kind"] for r in iter_records(tmp_path / "audit.jsonl")]
    assert "command.failed" in kinds


def test_a_journal_the_disk_refuses_sends_no_command_and_says_why(console, monkeypatch) -> None:
    # a full disk under the console's audit journal: the command was journalled first,
    # the append raised, and the officer got "internal error" (500) with no reason
    with client(console) as c:
        csrf = login(c, "alice")

        def full(*_a: object, **_k: object) -> None:
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(console.audit._journal, "append", full)
        r = c.post(
            "/api/gates/g01/cmd/release", headers={"X-CSRF-Token": csrf}, json={"txn_id": "t1"}
        )
        assert r.status_code == 503, r.text
        assert "audit journal not writable" in r.json()["error"]
        assert r.headers["cache-control"] == "no-store"
    assert console.publisher.sent == []  # not journalled: not sent


def test_over_https_the_cookies_are_host_only(console) -> None:
    # without the __Host- prefix a sibling subdomain, or anyone on the hall network over
    # plain HTTP, could plant a session cookie of their own login in an officer's browser
    with client(console) as c:
        r = c.get("/api/login-token")
        set_cookie = r.headers["set-cookie"]
        assert set_cookie.startswith("__Host-ag_login=") and "Domain" not in set_cookie
        token = r.json()["csrf"]
        r = c.post(
            "/api/login",
            json={"name": "alice", "password": PASSWORDS["alice"]},
            headers={"X-CSRF-Token": token},
        )
        cookies = [v for k, v in r.headers.multi_items() if k == "set-cookie"]
        session = [v for v in cookies if v.startswith("__Host-ag_session=")]
        assert session and "Path=/" in session[0] and "Domain" not in session[0]
        c.cookies.set("ag_session", c.cookies.get("__Host-ag_session"))  # unprefixed
        c.cookies.delete("__Host-ag_session")
        assert c.get("/api/me").status_code == 401  # only the prefixed cookie counts
    console.secure_cookie = False  # a lab console over plain HTTP cannot use the prefix
    assert console.session_cookie == "ag_session"
