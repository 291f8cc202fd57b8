"""Noticing that someone else is using our broker account (a stolen password).

With ``use_username_as_clientid`` a second connection with the same account takes over
the session: the broker closes the first one. MQTT 5 brokers may say so (DISCONNECT
reason 0x8E); Mosquitto 2.0 just closes the socket. Either way the pattern is the same:
the session is lost and, a moment later, regained without trouble, again and again, as
the owner and the thief throw each other out. ``Takeovers`` counts such bounces (or
explicit 0x8E) and says when they reached the alarm level, once per window.

Pure: the caller passes ``now`` (monotonic seconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SESSION_TAKEN_OVER = 0x8E  # MQTT 5 DISCONNECT reason code


@dataclass
class Takeovers:
    alarm_at: int = 3
    window_s: float = 300.0
    bounce_s: float = 5.0  # regained within this long after a loss: a bounce
    times: list[float] = field(default_factory=list)
    _lost_at: float | None = None
    _alarmed_at: float | None = None

    def lost(self, now: float, reason: int | None = None) -> int | None:
        """The connection went; returns the count if this raises the alarm."""
        self._lost_at = now
        return self._count(now) if reason == SESSION_TAKEN_OVER else None

    def regained(self, now: float) -> int | None:
        """Connected again; returns the count if this bounce raises the alarm."""
        lost, self._lost_at = self._lost_at, None
        if lost is None or now - lost > self.bounce_s or (self.times and self.times[-1] >= lost):
            return None
        return self._count(now)

    def _count(self, now: float) -> int | None:
        self.times = [t for t in self.times if now - t < self.window_s] + [now]
        quiet = self._alarmed_at is None or now - self._alarmed_at >= self.window_s
        if len(self.times) >= self.alarm_at and quiet:
            self._alarmed_at = now
            return len(self.times)
        return None
