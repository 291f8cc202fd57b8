"""Inside ./run test, a skip for a service the command installs is a failure."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).resolve().parents[1] / "conftest.py"

MODULE_SKIP = """
import pytest
pytest.skip("mosquitto not installed (./run installs it)", allow_module_level=True)
def test_never(): pass
"""
TEST_SKIP = """
import pytest
def test_needs_pcscd():
    pytest.skip("pcscd not installed")
def test_needs_data():
    pytest.skip("shared face data not found")
"""


def _run(tmp: Path, strict: bool, *only: str) -> str:
    shutil.copy(CONFTEST, tmp / "conftest.py")
    (tmp / "test_module_skip.py").write_text(MODULE_SKIP)
    (tmp / "test_skip.py").write_text(TEST_SKIP)
    env = {k: v for k, v in os.environ.items() if k != "AUTOGATE_TEST_STRICT"}
    if strict:
        env["AUTOGATE_TEST_STRICT"] = "1"
    res = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rfEs", "-p", "no:cacheprovider", *(only or [str(tmp)])],
        cwd=tmp, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return res.stdout


def test_missing_services_fail_inside_the_test_command(tmp_path: Path) -> None:
    out = _run(tmp_path, strict=True)  # a collection error stops the run, saying why
    assert "1 error" in out and "missing service fails the run: mosquitto not installed" in out
    out = _run(tmp_path, True, "test_skip.py")
    assert "1 failed, 1 skipped" in out, out  # missing data is still a skip
    assert "missing service fails the run: pcscd not installed" in out


def test_by_hand_they_stay_skips(tmp_path: Path) -> None:
    out = _run(tmp_path, strict=False)
    assert "3 skipped" in out, out
