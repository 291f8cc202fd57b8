"""Structured logs: one JSON object per line on stderr (journald keeps it as MESSAGE).

Every line carries the current transaction id (from a context the daemon's wiring sets),
so ``journalctl -u autogate@gate-01 | jq 'select(.txn_id=="...")'`` shows one traveller.
Personal data: none but the masked document number; events log their type, reasons and
timings, never names, dates of birth, full document numbers or images. Third-party
libraries do not know that rule (httpx logs every request line at INFO, and the pass
registry's URL holds the document number): ``PersonalDataFilter`` on the handler keeps
their lines below WARNING out and masks document numbers in URL paths of any line left.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import re
import sys
from collections.abc import Callable
from typing import Any, TextIO

from gate.actions import OUTCOME_EVENTS, Publish
from gate.events import mask_document_number as mask_number
from gate.results import MrzRecord

# attributes every LogRecord has; anything else came in through ``extra=`` and is logged
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}

_context: Callable[[], dict[str, Any]] = dict

# loggers of this project's packages; everything else is third-party
OWN_LOGGERS = ("autogate", "gate", "drivers", "sim", "console")
# a document number in a pass-registry or list URL: /passes/{state}/{number}
_DOC_IN_PATH = re.compile(r"(/(?:passes|documents|stolen)/[A-Z<-]{1,3}/)([A-Z0-9<]{4,})")


def mask_urls(text: str) -> str:
    """``text`` with document numbers in known URL paths masked."""
    return _DOC_IN_PATH.sub(lambda m: m[1] + mask_number(m[2]), text)


# What an HTTP service (console, ingest ``serve``) passes to ``uvicorn.run``: by default
# uvicorn installs its own handlers on its loggers (``propagate: False``), which write
# past ``PersonalDataFilter``; with ``log_config=None`` its lines reach the root handler.
UVICORN_LOGGING: dict[str, Any] = {"log_config": None, "log_level": "warning", "access_log": False}


def _scrubbed(exc_info: Any) -> str:
    """A third-party traceback without exception messages: frames and exception types
    stay (what a developer needs), the text goes (it may quote a request or a record)."""
    import traceback

    _, exc, _ = exc_info
    if exc is None:
        return ""
    te = traceback.TracebackException.from_exception(exc, capture_locals=False)
    parts: list[str] = []
    while te is not None:
        frames = "".join(te.stack.format())
        kind = te.exc_type.__qualname__ if te.exc_type is not None else "exception"
        parts.append(f"Traceback (most recent call last):\n{frames}{kind}: (message withheld)")
        te = te.__cause__ or te.__context__  # type: ignore[assignment]
    return "\n\nthen:\n".join(reversed(parts))


class PersonalDataFilter(logging.Filter):
    """On the handler, so every logger's lines pass it: third-party lines below WARNING
    are dropped (they log requests, and requests carry personal data), document numbers
    in URL paths are masked in whatever remains, and a third-party line's traceback keeps
    its frames but not its exception messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        own = record.name.split(".", 1)[0] in OWN_LOGGERS
        if not own and record.levelno < logging.WARNING:
            return False
        if not own and record.exc_info:
            record.exc_text = _scrubbed(record.exc_info)
            record.exc_info = None
        try:
            msg = record.getMessage()
        except Exception:  # a broken format string: let the formatter report it
            return True
        masked = mask_urls(msg)
        if masked != msg:
            record.msg, record.args = masked, ()
        return True


def set_context(fn: Callable[[], dict[str, Any]]) -> None:
    """Fields added to every line (the daemon's wiring passes the current ``txn_id``)."""
    global _context
    _context = fn


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        with contextlib.suppress(Exception):  # a broken context must not lose the line
            line.update({k: v for k, v in _context().items() if v is not None})
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:  # already formatted (a third-party one, scrubbed)
            line["exc"] = record.exc_text
        return json.dumps(line, default=str, ensure_ascii=False)


def setup(verbose: bool = False, stream: TextIO | None = None) -> None:
    """Replace the root handlers with one JSON-lines handler."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(PersonalDataFilter())
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    for name in _OWN_HANDLERS:  # whoever configured them before us, they write through ours
        lg = logging.getLogger(name)
        for h in list(lg.handlers):
            lg.removeHandler(h)
        lg.propagate = True


# loggers that a library may give handlers of their own (uvicorn's default log config
# does, with ``propagate: False``): their lines would pass ``PersonalDataFilter`` by
_OWN_HANDLERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class EventLogObserver:
    """Daemon observer: one log line per transaction outcome and alarm, PII-free."""

    def __init__(self) -> None:
        self.log = logging.getLogger("autogate.event")

    def on_step(
        self, before: Any, event: Any, after: Any, actions: list[Any], elapsed: float
    ) -> None:
        for act in actions:
            if not isinstance(act, Publish) or act.type.value == "gate.status":
                continue
            fields: dict[str, Any] = {
                "event": act.type.value,
                "txn_id": act.txn_id,
                "reasons": [r.value for r in act.reasons],
            }
            mrz = act.data.get("mrz")
            if isinstance(mrz, MrzRecord):
                fields["doc"] = mask_number(mrz.document_number)
            timings = act.data.get("timings")
            if isinstance(timings, dict) and "total" in timings:
                fields["duration_s"] = timings["total"]
            level = logging.WARNING if act.type not in OUTCOME_EVENTS else logging.INFO
            self.log.log(level, act.type.value, extra=fields)
