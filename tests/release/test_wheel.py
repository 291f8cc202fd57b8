"""The release installs: build the wheel, install it into a fresh venv outside the checkout,
and run the commands a new user runs first, from there.

Kept quick: the fresh venv gets no dependencies of its own; a ``.pth`` line lets it see the
project venv's site-packages (third-party packages only: directories added by a ``.pth``
line do not run their own ``.pth`` files, so the checkout's editable install stays out).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
FACES = ROOT.parent / "shared" / "data" / "faces"
# what the release is built from (pyproject's packages and the folders gate/data links to)
SOURCES = ("pyproject.toml", "README.md", "gate", "drivers", "sim", "autogate", "console")
SOURCES += ("models", "config")
JUNK = shutil.ignore_patterns("__pycache__", "*.pyc")


def _run(cmd: list[str | Path], cwd: Path, env: dict[str, str], timeout: float = 180) -> str:
    res = subprocess.run(
        [str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert res.returncode == 0, f"{cmd}: exit {res.returncode}\n{res.stdout}\n{res.stderr}"
    return res.stdout


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, str]]:
    """(bin folder of a venv holding only the wheel, a folder outside the checkout, env)."""
    tmp = tmp_path_factory.mktemp("release")
    # built from a clean copy: setuptools never empties a checkout's build/, where a module
    # deleted from the source would live on and ship
    src = tmp / "src"
    src.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=JUNK)
        else:
            shutil.copy2(ROOT / name, src / name)
    wheels = tmp / "wheels"
    # the build runs in pip's isolated build env (setuptools from pyproject's build-system)
    _run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", wheels, src],
        cwd=tmp,
        env=dict(os.environ),
        timeout=300,
    )
    (wheel,) = wheels.glob("autogate-*.whl")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp, env=dict(os.environ))
    python = venv / "bin" / "python"
    _run(
        [sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel],
        cwd=tmp,
        env=dict(os.environ),
        timeout=300,
    )
    site = Path(
        _run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            cwd=tmp,
            env=dict(os.environ),
        ).strip()
    )
    (site / "zz_project_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    work = tmp / "elsewhere"
    work.mkdir()
    return venv / "bin", work, env


def test_the_installed_code_is_the_wheel_not_the_checkout(release) -> None:
    bin_dir, work, env = release
    out = _run(
        [bin_dir / "python", "-c", "import gate, drivers, autogate; print(gate.__file__)"],
        cwd=work,
        env=env,
    )
    assert str(bin_dir.parent) in out and str(ROOT) not in out


def test_mrz_read_from_the_wheel(release) -> None:
    from sim.page import write_page

    bin_dir, work, env = release
    ident = write_page(work / "page.png", seed=3, level="clean")
    out = json.loads(_run([bin_dir / "autogate", "mrz", "read", "page.png"], cwd=work, env=env))
    assert out["document_number"] == ident.document_number


def test_face_verify_from_the_wheel(release) -> None:
    bin_dir, work, env = release
    person = FACES / "london_009"
    res = subprocess.run(
        [bin_dir / "autogate", "face", "verify", person / "01.jpg", person / "02.jpg"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert res.returncode in (0, 1), res.stderr  # match or no match, never a crash
    out = json.loads(res.stdout)
    assert "score" in json.dumps(out)


def test_chip_read_help_from_the_wheel(release) -> None:
    bin_dir, work, env = release
    out = _run([bin_dir / "autogate", "chip", "read", "--help"], cwd=work, env=env)
    assert "--document-number" in out


def test_run_sim_from_the_wheel_with_the_shipped_example_config(release) -> None:
    bin_dir, work, env = release
    shipped = Path(
        _run(
            [
                bin_dir / "python",
                "-c",
                "from gate.resources import shipped; print(shipped('config/gate.example.yaml'))",
            ],
            cwd=work,
            env=env,
        ).strip()
    )
    assert str(bin_dir.parent) in str(shipped)
    cfg = yaml.safe_load(shipped.read_text())
    # relative to the config's own folder: the policy shipped beside it
    assert (shipped.parent / cfg["policy"]["file"]).is_file()
    cfg["policy"]["file"] = str(shipped.parent / cfg["policy"]["file"])  # config moved here
    cfg["storage"] = {"data_dir": "var", "journal": "var/journal.jsonl"}
    (work / "gate.yaml").write_text(yaml.safe_dump(cfg))
    out = _run([bin_dir / "autogate", "run", "--sim", "--config", "gate.yaml"], cwd=work, env=env)
    types = {json.loads(line).get("type") for line in out.splitlines() if line.startswith("{")}
    assert {"crossing.accepted", "referral.opened"} <= types


def test_the_wheel_ships_every_runtime_file(release) -> None:
    """Each file the code opens at run time is in the installed tree."""
    bin_dir, work, env = release
    code = (
        "from gate.resources import shipped;"
        "import drivers.regmap as r, drivers.mrz_ocr as m;"
        "print(sorted(p.stem for p in r.MODELS_DIR.glob('*.yaml')));"
        "m.load_model();"
        "import drivers.mrz_ctc as c; assert c.load_line_model() is not None;"
        "[shipped(p) for p in ('models/face/dlib_resnet_v1.json', 'models/face/pad_texture.json',"
        " 'models/face/dlib_frontal_face_detector.svm', 'models/finger/nbis_bozorth3.json',"
        " 'config/console.example.yaml', 'config/policy.example.yaml')];"
        "from importlib import resources;"
        "print(resources.files('console.static').joinpath('hall.html').is_file());"
        "from sim.scenario import all_scenarios; print(len(all_scenarios()))"
    )
    lines = _run([bin_dir / "python", "-c", code], cwd=work, env=env).splitlines()
    assert "generic-2door" in lines[0]
    assert lines[1] == "True"
    assert int(lines[2]) >= 16
