"""Attacks on the console's logins and sessions, against the console as its own process.

Issue 17 items 1, 3 and 4: concurrent guesses must not outrun the limit; a role or
password change ends the officer's sessions; nobody can lock an officer out, and a
guessing pattern alarms the supervisors.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from gate.journal import iter_records
from tests.console.proc import OFFICERS, ConsoleProcess, login, login_token, user_cli

XFF = "X-Forwarded-For"


@pytest.fixture()
def console(tmp_path: Path) -> Iterator[ConsoleProcess]:
    proc = ConsoleProcess(
        tmp_path / "console",
        listen={"trusted_proxies": ["127.0.0.1/32"]},
        session={"login_attempts": 5, "login_window_s": 300, "login_alarm_at": 15},
    )
    yield proc
    proc.stop()


def _kinds(console: ConsoleProcess) -> list[str]:
    return [r["kind"] for r in iter_records(console.audit) if isinstance(r, dict)]


def test_forty_concurrent_guesses_check_at_most_the_limit(console: ConsoleProcess) -> None:
    """Item 1: all 40 requests in flight together; at most 5 passwords are ever checked."""
    with console.client() as c:
        token = login_token(c)
        cookies = dict(c.cookies)
    passwords = [f"guess-{n:02d}-wrong" for n in range(39)] + [OFFICERS["alice"][1]]
    barrier = threading.Barrier(len(passwords))

    def guess(pw: str) -> int:
        with console.client(cookies=cookies) as c:
            barrier.wait()
            r = c.post(
                "/api/login",
                json={"name": "alice", "password": pw},
                headers={"X-CSRF-Token": token},
            )
            return r.status_code

    started = time.monotonic()
    with ThreadPoolExecutor(len(passwords)) as pool:
        codes = list(pool.map(guess, passwords))
    elapsed = time.monotonic() - started
    # 5 at once, then one more after 1, 1+2, 1+2+4 ... seconds (the slow-down, not a lock)
    allowed = 5 + math.floor(math.log2(elapsed + 1))
    checked = [c for c in codes if c != 429]
    assert len(checked) <= allowed, (codes, elapsed)
    assert codes.count(429) >= 40 - allowed and set(codes) <= {200, 401, 429}
    assert _kinds(console).count("login.failed") + _kinds(console).count("login") == len(checked)


def test_role_or_password_change_ends_open_sessions(console: ConsoleProcess) -> None:
    """Item 3: a demoted supervisor and an officer with a new password are signed out."""
    with console.client() as sam, console.client() as alice:
        sam_csrf = login(sam, "sam", OFFICERS["sam"][1]).json()["csrf"]
        alice_csrf = login(alice, "alice", OFFICERS["alice"][1]).json()["csrf"]
        assert sam.get("/api/me").json()["role"] == "supervisor"
        user_cli(
            console.officers,
            "add",
            "sam",
            "--role",
            "officer",
            "--password-stdin",
            stdin=OFFICERS["sam"][1],
        )  # same password, lower role
        user_cli(
            console.officers,
            "add",
            "alice",
            "--role",
            "officer",
            "--password-stdin",
            stdin="a-brand-new-password",
        )  # same role, new password
        assert sam.get("/api/me").status_code == 401
        r = sam.post("/api/gates/g01/cmd/out_of_service", headers={"X-CSRF-Token": sam_csrf})
        assert r.status_code == 401  # not a supervisor command any more, not even tried
        assert alice.get("/api/me").status_code == 401
        r = alice.post("/api/gates/g01/cmd/release", headers={"X-CSRF-Token": alice_csrf})
        assert r.status_code == 401
    with console.client() as sam:
        assert login(sam, "sam", OFFICERS["sam"][1]).json()["role"] == "officer"


def test_guesser_cannot_lock_an_officer_out_behind_the_proxy(console: ConsoleProcess) -> None:
    """Item 4: 60 wrong guesses for alice from one address behind the trusted proxy;
    alice, at her desk behind the same proxy, signs in at once; supervisors are alerted."""
    events: list[str] = []
    with console.client() as sup:
        login(sup, "sam", OFFICERS["sam"][1], headers={XFF: "198.51.100.9"})

        def listen() -> None:
            with sup.stream("GET", "/api/stream", headers={XFF: "198.51.100.9"}) as r:
                for line in r.iter_lines():
                    events.append(line)
                    if line.startswith("data: ") and events[-2:-1] == ["event: alert"]:
                        return

        reader = threading.Thread(target=listen, daemon=True)
        reader.start()
        time.sleep(0.5)
        with console.client() as attacker:
            codes = [
                login(attacker, "alice", f"wrong-{n}", headers={XFF: "203.0.113.66"}).status_code
                for n in range(60)
            ]
        assert codes[:5] == [401] * 5 and codes.count(429) >= 50
        with console.client() as alice:
            r = login(alice, "alice", OFFICERS["alice"][1], headers={XFF: "198.51.100.5"})
            assert r.status_code == 200
        reader.join(10)
    assert "event: alert" in events
    alert = next(json.loads(e[6:]) for e in events if e.startswith("data: ") and "guess" in e)
    assert alert["kind"] == "login.guessing"
    assert "login.guessing" in _kinds(console)
    clients = {r["data"].get("client") for r in iter_records(console.audit) if r["kind"] == "login"}
    assert "198.51.100.5" in clients  # the proxy's header named the officer's own address


def test_the_guesser_is_slowed_not_locked(console: ConsoleProcess) -> None:
    """Item 4: past the limit the pair waits Retry-After seconds, then may try again."""
    with console.client() as c:
        for n in range(5):
            assert login(c, "alice", f"wrong-{n}").status_code == 401
        r = login(c, "alice", OFFICERS["alice"][1])
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"
        time.sleep(1.1)
        assert login(c, "alice", OFFICERS["alice"][1]).status_code == 200


def test_forwarded_for_from_an_untrusted_peer_is_ignored(tmp_path: Path) -> None:
    """Item 4: without a configured proxy a rotating X-Forwarded-For buys no attempts."""
    proc = ConsoleProcess(tmp_path / "c2")  # trusted_proxies: none
    try:
        with proc.client() as c:
            codes = [
                login(c, "alice", f"wrong-{n}", headers={XFF: f"192.0.2.{n}"}).status_code
                for n in range(10)
            ]
        # five tries, then slowed: at most one more once a second has passed (a loaded box)
        assert codes[:5] == [401] * 5 and codes.count(401) <= 6 and codes[-1] == 429
    finally:
        proc.stop()
