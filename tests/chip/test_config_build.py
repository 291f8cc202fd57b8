"""`devices.chip: {type: pcsc}` in the gate config and the daemon's `build` factory."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from drivers.chip import PcscChipReader, ReaderNotFound, build
from gate.config import ConfigError, PcscChipConfig, parse_config
from gate.results import MrzRecord
from sim.chip_pki import make_pki

BASE = "gate: {site: s1, id: g1}\n"


def test_pcsc_chip_config(tmp_path: Path) -> None:
    pki = make_pki()
    (tmp_path / "csca").mkdir()
    (tmp_path / "csca" / "ut.pem").write_bytes(pki.csca.public_bytes(Encoding.PEM))
    (tmp_path / "crl").mkdir()
    (tmp_path / "crl" / "ut.crl").write_bytes(pki.crl([]))
    cfg = parse_config(
        BASE
        + f"devices:\n  chip:\n    type: pcsc\n    reader: Virtual PCD\n    csca_dir: {tmp_path / 'csca'}\n"
        + f"    crl_dir: {tmp_path / 'crl'}\n    apdu_timeout_s: 4\n    pace: never\n"
    )
    chip = cfg.devices.chip
    assert isinstance(chip, PcscChipConfig) and chip.apdu_timeout_s == 4.0
    reader = build(chip, cfg)
    assert (
        isinstance(reader, PcscChipReader)
        and len(reader.trust.cscas) == 1
        and len(reader.trust.crls) == 1
    )


@pytest.mark.parametrize(
    "bad",
    [
        "    typo: 1\n",
        "    pace: sometimes\n",
        "    apdu_timeout_s: 0\n",
        "    max_extended_read: 70000\n",
    ],
)
def test_bad_chip_config(bad: str) -> None:
    with pytest.raises(ConfigError, match="devices.chip"):
        parse_config(BASE + "devices:\n  chip:\n    type: pcsc\n" + bad)


async def test_missing_reader_is_a_device_error(pcscd) -> None:
    from gate.inputs import DeviceFault

    reader = PcscChipReader(PcscChipConfig(type="pcsc", reader="Nope 99"), build_trust())
    events: list[object] = []
    await reader.start(events.append)  # a fault the reader's probe clears, not a failed start
    assert len(events) == 1 and isinstance(events[0], DeviceFault) and "Nope 99" in str(events[0])
    with pytest.raises(ReaderNotFound):
        await reader.read(MrzRecord("TD3", "P", "UTO", "A", "B", "X", "UTO", None, "F", None))
    await reader.close()


def build_trust():
    from drivers.icao.pa import TrustStore

    return TrustStore()
