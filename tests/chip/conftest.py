from __future__ import annotations

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO / "../shared/data"
ICAO = SHARED / "icao9303"
READER = "Virtual PCD 00 00"  # slot 0 of the session's private vpcd


@pytest.fixture(scope="session")
def worked() -> dict:
    return json.loads((ICAO / "bac_worked_example.json").read_text())


@pytest.fixture(scope="session")
def bsi() -> dict:
    return json.loads((ICAO / "bsi_tr03105_reference.json").read_text())


@pytest.fixture(scope="session")
def pcscd():
    """This session's own pcscd + vpcd (``sim.pcscd``): never the system's, so another
    rig, test run or card emulator on the machine cannot answer for our card. Missing
    pcscd, vpcd or root fails with what to do: the test command installs them.

    The PC/SC client library reads PCSCLITE_CSOCK_NAME once per process, so it is set
    before this process's first PC/SC call and left for the session."""
    import os

    from sim.pcscd import PrivatePcscd, problems

    why = problems()
    if why:
        pytest.fail(why)
    with PrivatePcscd() as private:
        saved = os.environ.get("PCSCLITE_CSOCK_NAME")
        os.environ["PCSCLITE_CSOCK_NAME"] = str(private.socket_path)
        from drivers.chip import list_readers

        assert READER in list_readers(), "the private pcscd does not show its vpcd reader"
        yield private
        if saved is None:
            os.environ.pop("PCSCLITE_CSOCK_NAME", None)
        else:
            os.environ["PCSCLITE_CSOCK_NAME"] = saved


@pytest.fixture
def vpcd(pcscd):
    """Put a virtual chip in this session's reader: ``card = vpcd(chip)``; removed after."""
    from sim.chip import VpcdCard

    cards = []

    def insert(chip):
        card = VpcdCard(chip, port=pcscd.port).start()
        cards.append(card)
        assert card.connected.wait(5), "vpcd did not accept the card emulator"
        from drivers.chip import PcscTransport

        tr = PcscTransport(READER)
        tr.connect(5.0)  # pcscd has seen the card
        tr.close()
        chip.count = 0
        return card

    yield insert
    for c in cards:
        c.stop()
