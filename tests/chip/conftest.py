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


@pytest.fixture(scope="session")
def pcscd():
    """A running pcscd with vpcd's readers: reuse the system's, else start our own."""
    import shutil
    import subprocess
    import time

    sock = Path("/run/pcscd/pcscd.comm")
    proc = None
    if not sock.exists():
        exe = shutil.which("pcscd") or "/usr/sbin/pcscd"
        if not Path(exe).exists():
            pytest.skip("pcscd not installed")
        proc = subprocess.Popen(
            [exe, "--foreground"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        for _ in range(50):
            if sock.exists():
                break
            time.sleep(0.1)
    from drivers.chip import list_readers

    for _ in range(50):
        try:
            if "Virtual PCD 00 00" in list_readers():
                break
        except Exception:
            pass
        time.sleep(0.1)
    else:
        pytest.skip("vpcd reader not visible in pcscd")
    yield
    if proc is not None:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def vpcd(pcscd):
    """Put a virtual chip in 'Virtual PCD 00 00': ``card = vpcd(chip)``; removed after."""
    from sim.chip import VpcdCard

    cards = []

    def insert(chip):
        card = VpcdCard(chip).start()
        cards.append(card)
        assert card.connected.wait(5), "vpcd did not accept the card emulator"
        from drivers.chip import PcscTransport

        tr = PcscTransport("Virtual PCD 00 00")
        tr.connect(5.0)  # pcscd has seen the card
        tr.close()
        chip.count = 0
        return card

    yield insert
    for c in cards:
        c.stop()
