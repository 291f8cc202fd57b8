"""Suite-wide rule of the README's test command (``./run test`` sets AUTOGATE_TEST_STRICT=1).

A service the command installs itself (Mosquitto, pcscd + vpcd, Chromium, systemd-analyze)
is never a reason to skip there: a test that would skip because one is "not installed"
fails instead, with the skip's own text saying what to do. Run by hand (plain ``pytest``),
such a skip stays a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

STRICT_ENV = "AUTOGATE_TEST_STRICT"
MISSING_SERVICE = "not installed"  # the phrase every such skip uses


def _strict() -> bool:
    return os.environ.get(STRICT_ENV) == "1"


def _skip_reason(longrepr: Any) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    return str(longrepr)


def _fail_instead(report: Any) -> None:
    why = _skip_reason(report.longrepr).removeprefix("Skipped: ")
    report.outcome = "failed"
    report.longrepr = f"inside ./run test a missing service fails the run: {why}"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if _strict() and report.skipped and MISSING_SERVICE in _skip_reason(report.longrepr):
        _fail_instead(report)


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if _strict() and report.skipped and MISSING_SERVICE in _skip_reason(report.longrepr):
        _fail_instead(report)
