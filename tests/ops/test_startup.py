"""The CLI starts light: ``autogate --help`` imports none of the gate's heavy libraries, a
tool's module is imported only when its subcommand runs, and the help the top-level
parser shows for each tool is the tool's own (issue 23, part 1; times in bench/startup.py)."""

from __future__ import annotations

import argparse
import importlib
import subprocess
import sys
from pathlib import Path

from autogate.cli import TOOLS

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("numpy", "cv2", "pydantic", "jsonschema", "cryptography", "httpx", "rich", "onnxruntime")


def _modules_after(args: list[str]) -> set[str]:
    code = (
        "import sys\nfrom autogate.cli import main\n"
        "try:\n    main(sys.argv[1:])\nexcept SystemExit:\n    pass\n"
        "print('\\n'.join(sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return set(out.split())


def test_help_imports_nothing_heavy() -> None:
    loaded = _modules_after(["--help"])
    assert not [m for m in HEAVY if m in loaded]
    assert not [m for m, _ in TOOLS.values() if m in loaded]


def test_a_tool_imports_only_its_own_module() -> None:
    loaded = _modules_after(["mrz", "--help"])
    assert "drivers.mrz_cli" in loaded
    assert "console.cli" not in loaded and "sim.cli" not in loaded and "cv2" not in loaded


def test_top_level_help_is_each_tools_own() -> None:
    for command, (module, text) in TOOLS.items():
        p = argparse.ArgumentParser()
        sub = p.add_subparsers()
        importlib.import_module(module).add_subcommands(sub)
        helps = {a.dest: a.help for a in sub._choices_actions}
        assert helps.get(command) == text, (command, helps)
