"""Every config loader (gate, policy, register map, console) shares one safe YAML loader:
a bad file is one line naming the file and the field, found in well under a second
(issue 16, items 10 and 11)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from console.config import ConsoleConfigError, load_console_config
from drivers.errors import DeviceError
from drivers.regmap import load_regmap
from gate.config import ConfigError, load_config
from gate.policy_config import load_policy

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {
    "gate": ROOT / "config" / "gate.example.yaml",
    "policy": ROOT / "config" / "policy.example.yaml",
    "regmap": ROOT / "config" / "barrier-models" / "generic-2door.yaml",
    "console": ROOT / "config" / "console.example.yaml",
}
LOADERS: dict[str, Callable[[Path], object]] = {
    "gate": load_config,
    "policy": load_policy,
    "regmap": lambda p: load_regmap(path=p),
    "console": load_console_config,
}
REFUSED = (ConfigError, DeviceError, ConsoleConfigError)

# (name, bytes to put in front of a valid file or replace it with, text the line must hold)
BAD: list[tuple[str, bytes, str]] = [
    ("int tag on a word", b"bogus_key: !!int abc\n", "bogus_key: line 1"),
    # a key no example has: "site" is in some, and a key written twice is refused first
    ("impossible date", b"bogus_date: 2026-02-30\n", "bogus_date: line 1"),
    ("not UTF-8", b"# caf\xe9\n", "line 1: not UTF-8"),
    ("deep flow nesting", b"x: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested deeper"),
    (
        "deep block nesting",
        b"".join(b" " * i + b"k%d:\n" % i for i in range(1000)) + b" " * 1000 + b"v\n",
        "nested deeper",
    ),
    (
        "anchors multiplying",
        b"a: &a [x, x, x, x, x, x, x, x, x, x]\n"
        + b"".join(
            b"%c: &%c [%s]\n" % (c, c, b", ".join([b"*" + bytes([c - 1])] * 10))
            for c in range(ord("b"), ord("h"))
        ),
        "more than",
    ),
    ("float overflow", b"t: !!float 1e999999\n", ""),
    ("binary garbage", bytes(range(256)) * 4, ""),
    ("NUL byte", b"a: \x00\n", ""),
]


@pytest.mark.parametrize("loader", list(LOADERS))
@pytest.mark.parametrize(("name", "bad", "says"), BAD, ids=[b[0] for b in BAD])
def test_bad_file_is_one_line_naming_the_file(
    tmp_path: Path, loader: str, name: str, bad: bytes, says: str
) -> None:
    path = tmp_path / f"{loader}.yaml"
    path.write_bytes(bad + EXAMPLES[loader].read_bytes())
    t0 = time.perf_counter()
    with pytest.raises(REFUSED) as err:
        LOADERS[loader](path)
    elapsed = time.perf_counter() - t0
    text = str(err.value)
    assert "\n" not in text, text
    assert str(path) in text, text
    assert says in text, text
    assert elapsed < 0.5, f"{name}: {elapsed:.2f} s"


def autogate(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autogate.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
    )


def test_check_config_exits_2_with_one_line_on_a_bad_tag(tmp_path: Path) -> None:
    path = tmp_path / "gate.yaml"
    path.write_bytes(b"gate: {site: !!int abc, id: g}\n")
    res = autogate("check-config", str(path))
    assert res.returncode == 2, res.stderr
    assert res.stderr.count("\n") == 1 and "gate.site: line 1" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def test_check_config_works_from_any_folder(tmp_path: Path) -> None:
    """The example names its policy file and data folders relative to itself."""
    res = autogate("check-config", str(EXAMPLES["gate"]), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    cfg = load_config(EXAMPLES["gate"])
    assert cfg.policy.file == ROOT / "config" / "policy.example.yaml"
    assert cfg.storage.journal.is_absolute()


def test_relative_paths_resolve_against_the_files_folder(tmp_path: Path) -> None:
    folder = tmp_path / "etc"
    folder.mkdir()
    (folder / "policy.yaml").write_bytes(EXAMPLES["policy"].read_bytes())
    (folder / "gate.yaml").write_text(
        "gate: {site: s, id: g}\npolicy: {file: policy.yaml}\n"
        "storage: {data_dir: var, journal: /abs/journal.jsonl}\n"
    )
    cfg = load_config(folder / "gate.yaml")
    assert cfg.policy.file == folder / "policy.yaml"
    assert cfg.storage.data_dir == folder / "var"
    assert cfg.storage.journal == Path("/abs/journal.jsonl")
    # defaults name files shipped with the code: not moved
    assert cfg.devices.face is not None
    res = autogate("check-config", "gate.yaml", cwd=folder)
    assert res.returncode == 0, res.stderr


def test_console_relative_paths_resolve_against_its_folder(tmp_path: Path) -> None:
    text = EXAMPLES["console"].read_text().replace("/var/lib/autogate-console/", "")
    (tmp_path / "console.yaml").write_text(text)
    cfg = load_console_config(tmp_path / "console.yaml")
    assert cfg.officers_file == tmp_path / "officers.json"


def test_a_key_written_twice_is_refused_a_merged_key_may_be_overridden(tmp_path: Path) -> None:
    from gate.yamlfile import load_mapping

    dup = tmp_path / "dup.yaml"
    dup.write_text("a: 1\nb:\n  c: 1\n  c: 2\n")
    with pytest.raises(ConfigError, match="line 4: the key 'c' is written twice"):
        load_mapping(dup)
    merged = tmp_path / "merged.yaml"
    merged.write_text("base: &b\n  port: 1\n  host: a\nother:\n  <<: *b\n  port: 2\n")
    assert load_mapping(merged)["other"] == {"port": 2, "host": "a"}
