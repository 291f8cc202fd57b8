"""No traceback for a user's mistake anywhere in the CLI: one line saying what to do,
exit 2 (issue 16 item 12; the exit-code scheme of docs/cli.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _junk(tmp: Path) -> Path:
    path = tmp / "junk.bin"
    path.write_bytes(bytes(range(128, 256)) * 8)
    return path


CASES = [
    ["mqtt", "keygen", "/no/such/dir/k"],
    [
        "mqtt",
        "sign",
        "release",
        "--key",
        "/no/such.key",
        "--key-id",
        "c",
        "--site",
        "s",
        "--gate",
        "g",
        "--officer",
        "o",
    ],
    [
        "mqtt",
        "sign",
        "release",
        "--key",
        "{junk}",
        "--key-id",
        "c",
        "--site",
        "s",
        "--gate",
        "g",
        "--officer",
        "o",
    ],
    ["mqtt", "validate", "/no/such.json"],
    ["mqtt", "validate", "{junk}"],
    ["mqtt", "validate", "{tmp}"],
    ["console", "user", "add", "bob", "--role", "officer", "--officers", "{tmp}/off.json"],
    ["console", "user", "list", "--officers", "{junk}"],
    ["console", "--config", "{tmp}"],
    ["console", "--config", "{junk}"],
    ["check-config", "{junk}"],
    ["check-config", "{tmp}"],
    ["run", "--config", "/no/such.yaml"],
    ["audit", "verify", "{tmp}"],
    ["audit", "verify", "/no/such.jsonl"],
    ["lists", "build", "{junk}", "{tmp}/o.json"],
    ["lists", "build", "/no/such.csv", "{tmp}/o.json"],
    ["lists", "check", "{junk}", "--number", "1"],
    ["lists", "check", "{tmp}", "--number", "1"],
    ["mrz", "parse", "x", "--today", "soon"],
    ["sim", "run", "{junk}"],
    ["sim", "fleet", "--gates", "-3"],
    ["lists", "build", "/no/such.csv", "{tmp}"],
]


@pytest.mark.parametrize(
    "argv", CASES, ids=[" ".join(c[:3]) + f" {i}" for i, c in enumerate(CASES)]
)
def test_user_mistake_is_one_line_and_exit_2(tmp_path: Path, argv: list[str]) -> None:
    junk = _junk(tmp_path)
    args = [a.format(junk=junk, tmp=tmp_path) for a in argv]
    res = subprocess.run(
        [sys.executable, "-m", "autogate.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    err = "\n".join(ln for ln in res.stderr.splitlines() if not ln.startswith('{"ts"'))
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 2, (res.returncode, res.stdout, res.stderr)
    lines = [ln for ln in err.splitlines() if ln.strip() and not ln.startswith("usage:")]
    assert lines, res.stdout
    assert len(lines) == 1, err  # one line, argparse's errors too (no wrapped usage block)


HOSTILE_FILES = {
    "deep.json": b"[" * 100_000 + b"]" * 100_000 + b"\n",
    "types.json": b'{"format": "autogate-lists/1", "salt": "' + b"00" * 16 + b'", "passes": []}\n',
}
NO_TRACEBACK = [
    (["audit", "verify", "{tmp}/deep.json"], 1),  # a broken journal: the answer is no
    (["lists", "check", "{tmp}/deep.json", "--number", "1"], 2),
    (["lists", "check", "{tmp}/types.json", "--number", "1"], 2),
    (["mqtt", "validate", "{tmp}/deep.json"], 1),
]


@pytest.mark.parametrize(
    ("argv", "code"),
    NO_TRACEBACK,
    ids=[" ".join(a[:2]) + f" {i}" for i, (a, _) in enumerate(NO_TRACEBACK)],
)
def test_hostile_files_are_answered_not_raised(tmp_path: Path, argv: list[str], code: int) -> None:
    for name, data in HOSTILE_FILES.items():
        (tmp_path / name).write_bytes(data)
    res = subprocess.run(
        [sys.executable, "-m", "autogate.cli", *[a.format(tmp=tmp_path) for a in argv]],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == code, (res.returncode, res.stdout, res.stderr)
