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
- Failed logins are counted per user name and per client address over a sliding window;
  past the limit further attempts get 429 without even checking the password.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
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

    def _load(self) -> dict[str, Officer]:
        with self._lock:
            try:
                mtime = self.path.stat().st_mtime_ns
            except FileNotFoundError:
                self._officers, self._mtime = {}, None
                return self._officers
            if mtime != self._mtime:
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

    def add(self, name: str, password: str, role: Role | str) -> Officer:
        import re

        if not re.match(NAME, name):
            raise OfficerError(f"officer name must match {NAME}")
        if len(password) < 10:
            raise OfficerError("password must be at least 10 characters")
        officer = Officer(name, Role(role), self.hasher.hash(password))
        officers = dict(self._load())
        officers[name] = officer
        self._save(officers)
        return officer

    def disable(self, name: str) -> None:
        officers = dict(self._load())
        if name not in officers:
            raise OfficerError(f"no officer named {name!r}")
        o = officers[name]
        officers[name] = Officer(o.name, o.role, o.hash, disabled=True)
        self._save(officers)

    def check(self, name: str, password: str) -> Officer | None:
        """The officer if ``password`` is right and the account enabled, else None."""
        officer = self.get(name)
        try:
            self.hasher.verify(officer.hash if officer else self._dummy, password)
        except (VerificationError, InvalidHashError):
            return None
        return officer


class Throttle:
    """Failed logins per key (user name, client address) within a sliding window."""

    MAX_KEYS = 10_000

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.clock = limit, window_s, clock
        self._fails: dict[str, deque[float]] = defaultdict(deque)

    def _recent(self, key: str) -> deque[float]:
        q = self._fails[key]
        cutoff = self.clock() - self.window
        while q and q[0] < cutoff:
            q.popleft()
        return q

    def blocked(self, *keys: str) -> bool:
        return any(len(self._recent(k)) >= self.limit for k in keys)

    def failed(self, *keys: str) -> None:
        if len(self._fails) >= self.MAX_KEYS:  # many invented names: forget the quiet ones
            for k in [k for k in list(self._fails) if not self._recent(k)]:
                del self._fails[k]
        for k in keys:
            self._recent(k).append(self.clock())

    def succeeded(self, *keys: str) -> None:
        for k in keys:
            self._fails.pop(k, None)


@dataclass
class Session:
    sid: str
    officer: str
    role: Role
    csrf: str
    started: float


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
