"""`./run demo --hold` as a user runs it: the whole virtual gate, the console, typed commands."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_demo_shows_the_gate_and_the_console_and_takes_commands() -> None:
    # a short TMPDIR of our own: the rig's folders go there and must be gone after
    tmp = Path(tempfile.mkdtemp(prefix="ag-demo-"))
    try:
        typed = "\n\nemergency\nofficer release\nquit\n"
        res = subprocess.run(
            [sys.executable, "-m", "autogate.cli", "sim", "--hold"],
            input=typed,
            capture_output=True,
            text=True,
            timeout=400,
            cwd=ROOT,
            env=dict(os.environ, TMPDIR=str(tmp), COLUMNS="160"),
        )
        out = res.stdout
        assert res.returncode == 0, res.stderr[-2000:]
        assert "console       http://127.0.0.1:" in out
        assert "demo-officer / " in out and "demo-supervisor / " in out
        assert "citizen happy path" in out and "crossed" in out
        assert "referred (doc_expired), sent back" in out  # the closing table
        assert "emergency needs on or off" in out  # an error, not "off"
        assert "release: refused (" in out  # the gate's reason, shown
        left = [p.name for p in tmp.iterdir() if p.name.startswith("autogate-")]
        assert left == []  # the rig's folder and its private pcscd's folder are removed
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
