from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.finger.config import FingerConfig
from drivers.finger.verifier import Verifier, build_verifier
from sim.thumb_reader import SimThumbReader


@pytest.fixture(scope="module")
def reader() -> SimThumbReader:
    return SimThumbReader(2, 1)


@pytest.fixture(scope="module")
def verifier(reader: SimThumbReader) -> Iterator[Verifier]:
    v = build_verifier(FingerConfig(), reader=reader)
    yield v
    v.close()
