"""Login throttling and sessions, with the clock as an argument."""

from __future__ import annotations

from pathlib import Path

from console.auth import Officers, Sessions, Throttle
from tests.console.helpers import FAST_HASHER


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_throttle_blocks_after_limit_and_lifts_after_window() -> None:
    clock = Clock()
    th = Throttle(3, 60, clock)
    for _ in range(3):
        assert not th.blocked("user:a", "addr:1")
        th.failed("user:a", "addr:1")
    assert th.blocked("user:a") and th.blocked("addr:1") and not th.blocked("user:b")
    assert th.blocked("user:b", "addr:1")  # the same address trying another name
    clock.t += 61
    assert not th.blocked("user:a", "addr:1")


def test_throttle_forgets_quiet_keys_when_flooded() -> None:
    clock = Clock()
    th = Throttle(3, 60, clock)
    th.MAX_KEYS = 100
    for n in range(100):
        th.failed(f"user:{n}")
    clock.t += 61
    th.failed("user:new")
    assert len(th._fails) == 1


def test_session_expires_and_ends_with_officer(tmp_path: Path) -> None:
    clock = Clock()
    officers = Officers(tmp_path / "o.json", hasher=FAST_HASHER)
    alice = officers.add("alice", "a-long-password", "officer")
    sessions = Sessions(100, clock)
    s1, s2 = sessions.start(alice), sessions.start(alice)
    assert s1.sid != s2.sid and s1.csrf != s2.csrf
    assert sessions.get(s1.sid) is s1
    sessions.end_officer("alice")
    assert sessions.get(s2.sid) is None
    s3 = sessions.start(alice)
    clock.t += 101
    assert sessions.get(s3.sid) is None


def test_unknown_name_and_wrong_password_look_the_same(tmp_path: Path) -> None:
    officers = Officers(tmp_path / "o.json", hasher=FAST_HASHER)
    officers.add("alice", "a-long-password", "officer")
    assert officers.check("alice", "nope") is None
    assert officers.check("mallory", "a-long-password") is None
    assert officers.check("alice", "a-long-password") is not None
