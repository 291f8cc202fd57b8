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


TRUST_DAMAGE = {
    "a master list that is not one": ("csca", "icao.ml", b"\x30\x03\x02\x01\x01"),
    "a master list cut short": ("csca", "icao.ml", b"\x30\x82\x10\x00\x06\x09"),
    "a folder named like a certificate": ("csca", "folder.der", None),
    "a folder named like a CRL": ("crl", "folder.crl", None),
}


@pytest.mark.parametrize("case", TRUST_DAMAGE)
def test_a_damaged_trust_store_file_is_a_device_error_naming_it(tmp_path: Path, case: str) -> None:
    """A damaged file in the CSCA / CRL folders stopped ``build`` with a bare ValueError
    or IsADirectoryError (a traceback at start). It is the chip reader's DeviceError with
    the file's path, which ``autogate run`` turns into one line and exit 3."""
    from drivers.errors import DeviceError

    pki = make_pki()
    for folder in ("csca", "crl"):
        (tmp_path / folder).mkdir()
    (tmp_path / "csca" / "ut.pem").write_bytes(pki.csca.public_bytes(Encoding.PEM))
    folder, name, data = TRUST_DAMAGE[case]
    bad = tmp_path / folder / name
    if data is None:
        bad.mkdir()
    else:
        bad.write_bytes(data)
    cfg = parse_config(
        BASE
        + f"devices:\n  chip:\n    type: pcsc\n    reader: Virtual PCD\n    csca_dir: {tmp_path / 'csca'}\n"
        + f"    crl_dir: {tmp_path / 'crl'}\n"
    )
    chip = cfg.devices.chip
    assert isinstance(chip, PcscChipConfig)
    with pytest.raises(DeviceError, match=str(bad)) as err:
        build(chip, cfg)
    assert err.value.device == "chip"


def test_a_broken_eac_folder_is_a_device_error_naming_the_file(tmp_path: Path) -> None:
    from drivers.errors import DeviceError
    from sim import eac_pki

    folder = eac_pki.write_trust(tmp_path / "eac")
    (folder / "UTO" / "terminal.pem").write_bytes(b"not a key")
    cfg = parse_config(BASE + f"devices:\n  chip:\n    type: pcsc\n    eac_dir: {folder}\n")
    chip = cfg.devices.chip
    assert isinstance(chip, PcscChipConfig)
    with pytest.raises(DeviceError, match="terminal.pem"):
        build(chip, cfg)
