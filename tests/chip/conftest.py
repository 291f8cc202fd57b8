from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / "../shared/data"
ICAO = SHARED / "icao9303"


@pytest.fixture(scope="session")
def worked() -> dict:
    return json.loads((ICAO / "bac_worked_example.json").read_text())


@pytest.fixture(scope="session")
def bsi() -> dict:
    return json.loads((ICAO / "bsi_tr03105_reference.json").read_text())
