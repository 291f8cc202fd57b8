"""Officers, passwords, sessions, CSRF tokens and login throttling.

- Passwords are hashed with Argon2id (``argon2-cffi`` defaults, RFC 9106 low-memory
  profile); the officer list is a JSON file written atomically with mode 0600, managed
  by ``autogate console user add/disable``. The file is re-read when it changes, so a
  disabled officer's open sessions stop working at their next request.
- A session is a random id kept in memory (logout and restarts end it) inside a cookie
  signed with ``itsdangerous`` (HttpOnly, SameSite=Strict, Secure, ``max_age``).
- Each session has its own CSRF token; every state-changing request must echo it in
  the ``X-CSRF-Token`` header. The login itself is protected by a double-submit token
  from a short-lived signed pre-login cookie.
- Failed logins are counted per (user name, client address) and slow that pair down
  progressively; nobody can lock an officer out from elsewhere (``Throttle``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import ipaddress
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from gate.inputs import Command

log = logging.getLogger("autogate.console.auth")

NAME = r"^[a-z][a-z0-9._-]{1,31}$"


class Role(StrEnum):
    OFFICER = "officer"  # acts on referrals and alarms
    SUPERVISOR = "supervisor"  # also takes gates out of and into service


ALLOWED: dict[Role, frozenset[Command]] = {
    Role.OFFICER: frozenset({Command.RELEASE, Command.SEND_BACK, Command.RESET_ALARM}),
    Role.SUPERVISOR: frozenset(Command),
}


class OfficerError(ValueError):
    pass


@dataclass(frozen=True)
class Officer:
    name: str
    role: Role
    hash: str
    disabled: bool = False


class Officers:
    """The officer list file: ``{"officers": {name: {role, hash, disabled}}}``."""

    def __init__(self, path: str | Path, hasher: PasswordHasher | None = None) -> None:
        self.path = Path(path)
        self.hasher = hasher or PasswordHasher()  # argon2id, RFC 9106 low-memory profile
        # verified against when the name is unknown, so both answers take the same time
        self._dummy = self.hasher.hash(secrets.token_hex(8))
        self._mtime: float | None = None
        self._officers: dict[str, Officer] = {}
        self._lock = threading.Lock()

    def _load(self, fresh: bool = False) -> dict[str, Officer]:
        with self._lock:
            try:
                mtime = self.path.stat().st_mtime_ns
            except FileNotFoundError:
                self._officers, self._mtime = {}, None
                return self._officers
            if fresh or mtime != self._mtime:
                data = json.loads(self.path.read_text(encoding="utf-8"))
                self._officers = {
                    name: Officer(name, Role(o["role"]), o["hash"], bool(o.get("disabled")))
                    for name, o in data.get("officers", {}).items()
                }
                self._mtime = mtime
            return self._officers

    def get(self, name: str) -> Officer | None:
        officer = self._load().get(name)
        return officer if officer is not None and not officer.disabled else None

    def all(self) -> list[Officer]:
        return sorted(self._load().values(), key=lambda o: o.name)

    def _save(self, officers: dict[str, Officer]) -> None:
        data = {
            "officers": {
                o.name: {"role": o.role.value, "hash": o.hash, "disabled": o.disabled}
                for o in officers.values()
            }
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".officers-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    @contextlib.contextmanager
    def _changing(self) -> Iterator[dict[str, Officer]]:
        """Read-modify-write of the file under an exclusive lock (``flock`` on a file
        beside it): two administrators changing officers at once (two ``console user``
        processes) each read the other's change before writing, so neither is lost."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(f".{self.path.name}.lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            officers = dict(self._load(fresh=True))
            yield officers
            self._save(officers)
        finally:
            os.close(fd)  # releases the lock

    def add(self, name: str, password: str, role: Role | str) -> Officer:
        import re

        if not re.match(NAME, name):
            raise OfficerError(f"officer name must match {NAME}")
        if len(password) < 10:
            raise OfficerError("password must be at least 10 characters")
        officer = Officer(name, Role(role), self.hasher.hash(password))  # slow: outside
        with self._changing() as officers:
            officers[name] = officer
        return officer

    def disable(self, name: str) -> None:
        with self._changing() as officers:
            if name not in officers:
                raise OfficerError(f"no officer named {name!r}")
            o = officers[name]
            officers[name] = Officer(o.name, o.role, o.hash, disabled=True)

    def check(self, name: str, password: str) -> Officer | None:
        """The officer if ``password`` is right and the account enabled, else None."""
        officer = self.get(name)
        try:
            self.hasher.verify(officer.hash if officer else self._dummy, password)
        except (VerificationError, InvalidHashError):
            return None
        return officer


@dataclass(frozen=True)
class Verdict:
    """May this login attempt be checked now? If not, when to try again."""

    allowed: bool
    retry_after: float = 0.0
    why: str = ""


class Throttle:
    """Failed logins, counted so that nobody can lock an officer out.

    Failures are counted per (account, client address) pair within a sliding window.
    Past ``limit`` a pair is slowed, not locked: each further attempt waits
    ``min(max_delay, 2 ** (failures - limit))`` seconds after the pair's last one. An
    address spraying many accounts is slowed the same way past ``spray_limit``, and
    once an account gathers ``alarm_at`` failures from any addresses (a guessing
    pattern, reported once per window by ``guessing``) every address that already
    failed against it is slowed on the account's count too; an address that never
    failed against the account (the officer at their desk) is never slowed by it.
    The alarm counts refused attempts too: a guesser who keeps hammering is a pattern.

    ``attempt`` reserves the attempt as a failure *before* the password is hashed, in
    one step under a lock, so concurrent guesses cannot all pass the check first;
    ``failed`` or ``succeeded`` answers it. A success forgives the pair only when no
    other attempt of that pair is still being checked: an officer at a desk sends one
    login at a time, while a right password among a burst of concurrent guesses must not
    reopen the limit for the rest of the burst.
    """

    MAX_KEYS = 100_000  # ~30 MB at most; past it the least recently active keys go

    def __init__(
        self,
        limit: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        max_delay_s: float = 60.0,
        alarm_at: int | None = None,
        spray_limit: int | None = None,
    ) -> None:
        self.limit, self.window, self.clock = limit, window_s, clock
        self.max_delay = max_delay_s
        self.alarm_at = alarm_at or 3 * limit
        self.spray_limit = spray_limit or 4 * limit
        # key -> times, least recently touched first; a key is stored only when it
        # records something, so refused floods of invented names cost no memory
        self._fails: OrderedDict[tuple[str, ...], deque[float]] = OrderedDict()
        self._alarmed: dict[str, float] = {}
        self._in_flight: dict[tuple[str, str], int] = {}  # reserved, not yet answered
        self._lock = threading.Lock()

    def _recent(self, key: tuple[str, ...]) -> deque[float]:
        q = self._fails.get(key)
        if q is None:
            return deque()
        cutoff = self.clock() - self.window
        while q and q[0] < cutoff:
            q.popleft()
        return q

    def _record(self, key: tuple[str, ...], q: deque[float], now: float) -> None:
        q.append(now)
        self._fails[key] = q
        self._fails.move_to_end(key)
        if len(self._fails) > self.MAX_KEYS:
            for k in [k for k in list(self._fails) if not self._recent(k)]:
                del self._fails[k]
            while len(self._fails) > self.MAX_KEYS * 9 // 10:
                self._fails.popitem(last=False)
            cutoff = now - self.window
            self._alarmed = {k: t for k, t in self._alarmed.items() if t >= cutoff}

    def _wait(self, q: deque[float], limit: int, now: float) -> float:
        if len(q) < limit:
            return 0.0
        delay = min(self.max_delay, 2.0 ** (len(q) - limit))
        return max(0.0, q[-1] + delay - now)

    def attempt(self, account: str, addr: str) -> Verdict:
        """Check and, if allowed, reserve one attempt (counted as failed until it succeeds)."""
        addr = _bucket(addr)
        with self._lock:
            now = self.clock()
            pair = self._recent(("pair", account, addr))
            acct, src = self._recent(("acct", account)), self._recent(("addr", addr))
            waits = [(self._wait(pair, self.limit, now), "this account from this address")]
            waits.append((self._wait(src, self.spray_limit, now), "this address"))
            if pair:  # only addresses that already failed here feel the account's count
                waits.append((self._wait(acct, self.alarm_at, now), "this account"))
            wait, why = max(waits)
            self._record(("tries", account), self._recent(("tries", account)), now)
            if wait > 0:
                return Verdict(False, wait, why)
            self._record(("pair", account, addr), pair, now)
            self._record(("acct", account), acct, now)
            self._record(("addr", addr), src, now)
            self._in_flight[(account, addr)] = self._in_flight.get((account, addr), 0) + 1
            return Verdict(True)

    def _answered(self, account: str, addr: str) -> int:
        """Close one reservation of the pair; how many others are still in flight."""
        left = self._in_flight.get((account, addr), 0) - 1
        if left > 0:
            self._in_flight[(account, addr)] = left
        else:
            self._in_flight.pop((account, addr), None)
        return max(left, 0)

    def failed(self, account: str, addr: str) -> None:
        """The reserved attempt was wrong (or could not be checked): it stays counted."""
        addr = _bucket(addr)
        with self._lock:
            self._answered(account, addr)

    def succeeded(self, account: str, addr: str) -> None:
        """The reserved attempt was right: the pair starts afresh, the others forget it,
        unless other attempts of the pair are still in flight (then nothing is forgiven)."""
        addr = _bucket(addr)
        with self._lock:
            if self._answered(account, addr):
                return
            self._fails.pop(("pair", account, addr), None)
            for key in (("acct", account), ("addr", addr), ("tries", account)):
                q = self._fails.get(key)
                if q:
                    q.pop()

    def guessing(self, account: str) -> int | None:
        """The account's failed and refused attempts in the window if they just reached
        the alarm level (reported once per window), else None."""
        with self._lock:
            now = self.clock()
            n = len(self._recent(("tries", account)))
            if n < self.alarm_at or now - self._alarmed.get(account, -1e18) < self.window:
                return None
            self._alarmed[account] = now
            return n


def _bucket(addr: str) -> str:
    """IPv6 clients count per /64 (one host usually holds a whole /64); IPv4 per address."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return addr[:64]
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


@dataclass
class Session:
    sid: str
    officer: str
    role: Role
    csrf: str
    started: float
    credential: str = ""  # the password hash at login: a new password ends the session


class Sessions:
    """Live sessions by id: what a signed cookie refers to."""

    def __init__(self, max_age_s: float, clock: Callable[[], float] = time.time) -> None:
        self.max_age, self.clock = max_age_s, clock
        self._live: dict[str, Session] = {}

    def start(self, officer: Officer) -> Session:
        s = Session(
            secrets.token_urlsafe(24),
            officer.name,
            officer.role,
            secrets.token_urlsafe(24),
            self.clock(),
            officer.hash,
        )
        self._live[s.sid] = s
        return s

    def get(self, sid: str) -> Session | None:
        s = self._live.get(sid)
        if s is not None and self.clock() - s.started > self.max_age:
            del self._live[sid]
            return None
        return s

    def end(self, sid: str) -> None:
        self._live.pop(sid, None)

    def end_officer(self, name: str) -> None:
        for sid in [sid for sid, s in self._live.items() if s.officer == name]:
            del self._live[sid]


def same_token(a: str | None, b: str | None) -> bool:
    return bool(a) and bool(b) and hmac.compare_digest(str(a), str(b))
