"""The console's own audit journal: who did what, chained like the gate's journal.

Every record names the officer (or the login name tried). Kinds: ``login``,
``login.failed``, ``login.throttled``, ``logout``, ``command.sent``, ``command.refused``
(by role, before anything was signed), ``command.ack`` (what the gate answered),
``images.viewed``. ``autogate audit verify FILE`` checks the chain.
"""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path
from typing import Any

from gate.journal import Journal


class Audit:
    def __init__(self, path: str | Path, fsync: bool = True) -> None:
        self._journal = Journal(path, fsync=fsync)
        self._lock = threading.Lock()

    def record(self, kind: str, officer: str, **data: Any) -> dict[str, Any]:
        ts = dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        with self._lock:
            return self._journal.append(kind, {"officer": officer, **data}, ts)

    def close(self) -> None:
        self._journal.close()
