"""Third-party loggers never write personal data into the daemon's log."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import httpx
import pytest

from autogate import logs
from sim.watchlist_service import Registry, WatchlistService

NUMBER = "A12345678"


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    out = io.StringIO()
    logs.setup(stream=out)
    yield out
    for h in list(root.handlers):
        root.removeHandler(h)
    for h in saved[0]:
        root.addHandler(h)
    root.setLevel(saved[1])


def test_an_http_lookup_by_document_number_is_not_logged(log_lines: io.StringIO) -> None:
    svc = WatchlistService(Registry()).start()
    try:
        with httpx.Client(base_url=svc.url) as client:
            client.get(f"/v1/passes/MYS/{NUMBER}")
    finally:
        svc.stop()
    assert NUMBER not in log_lines.getvalue()


def test_a_third_party_warning_is_kept_with_the_number_masked(log_lines: io.StringIO) -> None:
    logging.getLogger("httpx").warning("retrying GET http://h/v1/passes/MYS/%s", NUMBER)
    (line,) = [json.loads(x) for x in log_lines.getvalue().splitlines()]
    assert NUMBER not in line["msg"] and "/v1/passes/MYS/" in line["msg"]
    assert line["msg"].endswith(logs.mask_urls(f"/passes/MYS/{NUMBER}").rsplit("/", 1)[1])


def test_our_own_info_lines_still_pass(log_lines: io.StringIO) -> None:
    logging.getLogger("autogate.daemon").info("ready")
    logging.getLogger("drivers.watchlist").info("lists loaded")
    msgs = [json.loads(x)["msg"] for x in log_lines.getvalue().splitlines()]
    assert msgs == ["ready", "lists loaded"]


def test_a_third_party_traceback_keeps_its_frames_not_its_messages(
    log_lines: io.StringIO,
) -> None:
    """uvicorn logs an application's exception with its message: the message may quote
    what the traveller's record held (a name, a date of birth, a number)."""

    record = {"surname": "ERIKSSON", "birth": "1974-08-12", "number": NUMBER}

    def lookup() -> None:
        try:
            raise KeyError(" ".join(record.values()))
        except KeyError as exc:
            raise ValueError("record " + record["number"]) from exc

    try:
        lookup()
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
    (line,) = [json.loads(x) for x in log_lines.getvalue().splitlines()]
    text = json.dumps(line)
    for value in (NUMBER, "ERIKSSON", "1974-08-12"):
        assert value not in text
    assert "ValueError" in line["exc"] and "KeyError" in line["exc"]
    assert "in lookup" in line["exc"]  # the frames are still there to debug with
    # our own lines keep theirs: we write them, and our messages carry no such data
    try:
        lookup()
    except ValueError:
        logging.getLogger("autogate.daemon").exception("failed")
    assert "record" in json.loads(log_lines.getvalue().splitlines()[-1])["exc"]


def test_uvicorns_own_log_config_loaded_first_still_writes_through_the_mask(
    log_lines: io.StringIO,
) -> None:
    """uvicorn's default log config gives its loggers their own handlers and
    ``propagate: False`` (an in-process server started that way made the test above
    depend on test order): ``logs.setup`` puts them back behind the masking handler."""
    import logging.config

    from uvicorn.config import LOGGING_CONFIG

    logging.config.dictConfig(LOGGING_CONFIG)
    out = io.StringIO()
    logs.setup(stream=out)
    logging.getLogger("uvicorn.error").warning("GET /v1/passes/MYS/%s failed", NUMBER)
    (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
    assert NUMBER not in json.dumps(line) and "/v1/passes/MYS/" in line["msg"]
