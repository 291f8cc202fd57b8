"""Shared fixtures: real faces from ``../shared/data/faces`` (beside the repository)."""

from __future__ import annotations

from pathlib import Path

import pytest

FACES = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "faces"


@pytest.fixture(scope="session")
def faces_dir() -> Path:
    if not (FACES / "pairs.csv").is_file():
        pytest.skip(f"shared face data not found at {FACES}")
    return FACES


@pytest.fixture(scope="session")
def verifier():
    from drivers.face.verifier import DlibFaceVerifier
    from gate.config import DlibFaceConfig

    return DlibFaceVerifier(DlibFaceConfig(type="dlib"))
