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


def test_throttle_slows_a_pair_down_progressively_never_locks_it() -> None:
    clock = Clock()
    th = Throttle(3, 300, clock, max_delay_s=8)
    for _ in range(3):
        assert th.attempt("a", "10.0.0.1").allowed
    v = th.attempt("a", "10.0.0.1")
    assert not v.allowed and v.retry_after == 1
    waits = []
    for _ in range(6):
        v = th.attempt("a", "10.0.0.1")
        clock.t += v.retry_after
        assert th.attempt("a", "10.0.0.1").allowed  # right after the wait, one more try
        waits.append(v.retry_after or 1)
    assert waits[:4] == [1, 2, 4, 8] and max(waits) == 8  # doubling, to the ceiling
    # the same account from another address, and another account, are untouched
    assert th.attempt("a", "10.0.0.2").allowed and th.attempt("b", "10.0.0.1").allowed


def test_throttle_reservation_counts_before_the_answer() -> None:
    th = Throttle(5, 300, Clock())
    verdicts = [th.attempt("a", "10.0.0.1") for _ in range(40)]  # none answered yet
    assert sum(v.allowed for v in verdicts) == 5


def test_success_takes_the_reservation_back_and_clears_the_pair() -> None:
    th = Throttle(3, 300, Clock())
    for _ in range(2):
        th.attempt("a", "10.0.0.1")
        th.failed("a", "10.0.0.1")
    th.attempt("a", "10.0.0.1")
    th.succeeded("a", "10.0.0.1")
    assert all(th.attempt("a", "10.0.0.1").allowed for _ in range(3))


def test_guessing_from_many_addresses_alarms_once_and_spares_fresh_addresses() -> None:
    clock = Clock()
    th = Throttle(5, 300, clock, alarm_at=10)
    alarms = []
    for n in range(12):
        assert th.attempt("alice", f"10.0.1.{n}").allowed
        alarms.append(th.guessing("alice"))
    assert [a for a in alarms if a] == [10]  # once per window
    assert th.guessing("bob") is None
    assert not th.attempt("alice", "10.0.1.3").allowed  # a guesser is slowed by the account
    assert th.attempt("alice", "10.0.9.9").allowed  # the officer at a fresh address is not


def test_throttle_memory_is_bounded_under_a_flood_of_invented_names() -> None:
    clock = Clock()
    th = Throttle(3, 60, clock)
    th.MAX_KEYS = 100
    for n in range(40):  # 160 keys: pair, account, address, tries
        assert th.attempt(f"user{n}", f"10.0.0.{n}").allowed
    assert len(th._fails) <= 100
    clock.t += 61
    for n in range(200):  # a flood of invented names from many addresses
        th.attempt(f"x{n}", f"10.9.{n // 250}.{n % 250}")
    assert len(th._fails) <= 100
    assert th.attempt("x199", "10.9.0.199").allowed  # the newest are still counted
    assert len(th._fails[("pair", "x199", "10.9.0.199")]) == 2


def test_ipv6_clients_count_per_64() -> None:
    th = Throttle(3, 300, Clock())
    for n in range(3):
        assert th.attempt("a", f"2001:db8:1:2::{n + 1}").allowed  # a fresh address each
    assert not th.attempt("a", "2001:db8:1:2::ffff").allowed
    assert th.attempt("a", "2001:db8:1:3::1").allowed  # another /64


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


def test_success_amid_concurrent_guesses_forgives_nothing() -> None:
    """A right password answered while other guesses of the pair are still being checked
    must not reopen the limit for the rest of the burst (issue 17 item 1, seen in CI)."""
    th = Throttle(5, 300, Clock())
    assert all(th.attempt("a", "10.0.0.1").allowed for _ in range(5))  # 5 in flight
    th.succeeded("a", "10.0.0.1")  # one of them was right; 4 still being hashed
    assert not th.attempt("a", "10.0.0.1").allowed
    for _ in range(4):
        th.failed("a", "10.0.0.1")
    assert not th.attempt("a", "10.0.0.1").allowed


def test_two_administrators_adding_officers_at_once_lose_neither(tmp_path: Path) -> None:
    """``console user add`` in two processes at once: each reads the file, adds its officer
    and writes it back. Interleaved (A reads, B reads, A writes, B writes) A's officer was
    lost. The interleaving is forced with events; each wait is bounded, so with the file
    locked across read-modify-write the forced order simply cannot happen (A's wait for B
    to have read times out, then B reads what A wrote)."""
    import threading

    path = tmp_path / "o.json"
    a, b = Officers(path, hasher=FAST_HASHER), Officers(path, hasher=FAST_HASHER)
    a_read, b_read, a_wrote = threading.Event(), threading.Event(), threading.Event()
    a_load, a_save, b_load, b_save = a._load, a._save, b._load, b._save

    def a_loads(*args, **kw):  # type: ignore[no-untyped-def]
        got = a_load(*args, **kw)
        a_read.set()
        return got

    def a_saves(officers):  # type: ignore[no-untyped-def]
        b_read.wait(2.0)  # without the lock, B has read the file without A's officer
        a_save(officers)
        a_wrote.set()

    def b_loads(*args, **kw):  # type: ignore[no-untyped-def]
        got = b_load(*args, **kw)
        b_read.set()
        return got

    def b_saves(officers):  # type: ignore[no-untyped-def]
        a_wrote.wait(2.0)
        b_save(officers)

    a._load, a._save = a_loads, a_saves  # type: ignore[method-assign]
    b._load, b._save = b_loads, b_saves  # type: ignore[method-assign]
    first = threading.Thread(target=a.add, args=("alice", "alice-password-1", "officer"))
    first.start()
    assert a_read.wait(10)
    second = threading.Thread(target=b.add, args=("bob", "bob-password-12", "officer"))
    second.start()
    first.join(10)
    second.join(10)
    assert sorted(o.name for o in Officers(path, hasher=FAST_HASHER).all()) == ["alice", "bob"]
