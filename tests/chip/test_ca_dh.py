"""Chip authentication with a Diffie-Hellman DG14 key (id-CA-DH-*, id-PK-DH): the key as
X9.42 (dhpublicnumber) and PKCS #3 SubjectPublicKeyInfo, keys a reader must refuse, both
ciphers against the virtual chip, and the clone verdict for a chip without the key."""

from __future__ import annotations

import pytest
from asn1crypto import core

from drivers.icao import ca, dh, lds, pace, tlv
from drivers.icao.document import ReadOptions, read_document
from drivers.icao.errors import LDSError, UnsupportedKey
from gate.reasons import ReasonCode
from gate.results import Check
from sim.chip import Faults, VirtualChip, chip_ca_dh_infos, dh_spki


def read(chip: VirtualChip):
    return read_document(
        chip.answer, chip.holder.mrz_record(), chip.trust_store(), ReadOptions(), atr=chip.atr
    )


def dg14(infos) -> tuple[lds.SecurityInfo, ...]:
    return lds.parse_dg14(lds.build_dg14(infos))


@pytest.mark.parametrize("param", [0, 1, 2])
@pytest.mark.parametrize("pkcs3", [False, True])
def test_find_dh_key(param: int, pkcs3: bool) -> None:
    grp = dh.MODP[param]
    _, y = dh.keypair(grp)
    key = ca.find_key(dg14(chip_ca_dh_infos(grp, y, "AES", pkcs3=pkcs3)))
    assert key is not None and key.kind == "DH" and key.cipher == ("AES", 128)
    assert key.oid == ca.ID_CA_DH + "2" and key.public == y
    # PKCS #3 parameters carry no q: the RFC 5114 group's is taken
    assert isinstance(key.curve, dh.Group) and (key.curve.p, key.curve.q) == (grp.p, grp.q)


def test_find_dh_key_of_an_unnamed_group_without_q() -> None:
    """A PKCS #3 key on a group we do not know: used, range-checked only."""
    p = dh.MODP[1].p
    g = pow(dh.MODP[1].g, 3, p)
    grp = dh.Group("other", p, g, None)
    _, y = dh.keypair(grp)
    key = ca.find_key(dg14(chip_ca_dh_infos(grp, y, "3DES", pkcs3=True)))
    assert key is not None and key.cipher == ("3DES", 128) and key.curve.q is None  # type: ignore[union-attr]


def _bad(grp: dh.Group, y: int, **kw) -> tuple[lds.SecurityInfo, ...]:
    return dg14(
        [
            (ca.ID_CA_DH + "2", core.Integer(1).dump(), None),
            (ca.ID_PK_DH, dh_spki(grp, y, **kw), None),
        ]
    )


def test_dh_key_outside_the_subgroup_or_range_is_malformed() -> None:
    grp = dh.MODP[2]
    for y in (1, grp.p - 1, grp.p + 1, 2):
        with pytest.raises(LDSError):
            ca.find_key(_bad(grp, y))


def test_dh_key_with_inconsistent_parameters_is_malformed() -> None:
    grp = dh.MODP[2]
    _, y = dh.keypair(grp)
    for bad in (
        dh.Group("q does not divide p-1", grp.p, grp.g, grp.q + 2),  # type: ignore[operator]
        dh.Group("g of another order", grp.p, 2, grp.q),
        dh.Group("even p", grp.p + 1, grp.g, grp.q),
    ):
        with pytest.raises(LDSError):
            ca.find_key(_bad(bad, y))


def test_dh_key_of_a_size_we_do_not_use_is_unsupported() -> None:
    p = (1 << 511) + 187  # any odd 512-bit number: refused on its size before anything
    with pytest.raises(UnsupportedKey):
        ca.find_key(_bad(dh.Group("512", p, 2, None), 5))


def test_dh_key_that_is_not_der_is_malformed() -> None:
    grp = dh.MODP[0]
    _, y = dh.keypair(grp)
    good = dh_spki(grp, y)
    cut = tlv.encode(0x30, good[4:-5])  # a whole TLV, its inside cut short
    for raw in (cut, good[:40] + b"\xff" * 8 + good[48:], b"\x30\x00", b"\x05\x00"):
        with pytest.raises(LDSError):
            ca.find_key(
                dg14([(ca.ID_CA_DH + "2", core.Integer(1).dump(), None), (ca.ID_PK_DH, raw, None)])
            )


@pytest.mark.parametrize("cipher", ["AES", "3DES"])
@pytest.mark.parametrize("use_pace", [True, False])
def test_dh_chip_authentication_passes(cipher: str, use_pace: bool) -> None:
    rep = read(VirtualChip(pace=use_pace, ca=cipher, ca_key="dh"))
    assert rep.chip_auth is Check.PASSED and rep.reasons == [], rep.errors
    assert rep.steps["CA"].apdus == (3 if cipher == "AES" else 2)


def test_dh_clone_fails_chip_authentication() -> None:
    rep = read(VirtualChip(faults=Faults(cloned_chip=True), aa_kind=None, ca_key="dh"))
    assert rep.chip_auth is Check.FAILED and rep.reasons == [ReasonCode.CHIP_CA_FAILED]


def test_dh_chip_authentication_not_counted_without_pa() -> None:
    rep = read(VirtualChip(faults=Faults(unknown_csca=True), ca_key="dh"))
    assert rep.chip_auth is Check.NOT_RUN and rep.passive_auth is Check.FAILED


def test_chip_refuses_a_terminal_key_outside_its_group() -> None:
    """The virtual chip validates what the reader sends as the reader validates the chip."""
    from drivers.icao import tlv
    from drivers.icao.apdu import APDU

    chip = VirtualChip(ca_key="dh", ca="3DES")
    kat = APDU(0x00, 0x22, 0x41, 0xA6, tlv.encode(0x91, b"\x01"))
    assert chip.dispatch(kat, secure=True) == (b"", 0x6A80) and chip.sm_next is None


def test_terminal_authentication_after_a_dh_passport(tmp_path) -> None:
    """TA signs Comp() of our DH CA key (SHA-1 of its value) and, after PACE-DH, ID_PICC
    = Comp() of the chip's DH key. The virtual chip computes Comp() the same way, so this
    checks the two ends agree and that the DH path reaches DG3, not TR-03110 itself."""
    from drivers.icao import ta
    from sim import eac_pki
    from sim.chip_eac import EACChip
    from tests.chip.test_eac import NOW

    chip = EACChip(pace_protocol="dh-aes128", ca_key="dh")
    terminals = ta.load_trust(eac_pki.write_trust(tmp_path / "eac"))
    opts = ReadOptions(now=NOW, eac=terminals)
    rep = read_document(chip.answer, chip.holder.mrz_record(), chip.trust_store(), opts, chip.atr)
    assert rep.access_control == "PACE" and rep.chip_auth is Check.PASSED, rep.errors
    assert rep.terminal_auth.check is Check.PASSED, rep.terminal_auth.detail
    assert "DG3" in rep.files


def test_scenario_traveller_with_a_dh_passport() -> None:
    """A scenario's chip can be DH throughout; the rig builds that chip (read here in
    process, without the rest of the rig)."""
    from types import SimpleNamespace

    from sim.rig import Rig
    from sim.scenario import Traveller

    t = Traveller.model_validate({"chip": {"pace_protocol": "dh-aes192", "ca_key": "dh"}})
    fake = SimpleNamespace(pki=None)
    chip = Rig._chip(fake, t, Rig._identity(fake, t))  # type: ignore[arg-type]
    offer = pace.choose(chip.files[lds.FID_CARD_ACCESS])
    assert offer is not None and (offer.kind, offer.cipher) == ("DH", ("AES", 192))
    rep = read(chip)
    assert rep.access_control == "PACE" and rep.chip_auth is Check.PASSED, rep.errors
    assert rep.reasons == []
