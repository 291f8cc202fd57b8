"""PACE-GM over Diffie-Hellman (mod p) and PACE with 3DES: ICAO 9303-11 Appendix G.2's
worked example step by step, the arithmetic against ``cryptography``'s DH, every cipher
against the virtual chip, and chips that send values a reader must refuse.

Vector source: ICAO Doc 9303 part 11 (8th ed., 2021), Appendix G.2 "DH based example"
(RFC 5114 1024-bit group, id-PACE-DH-GM-AES-CBC-CMAC-128), as transcribed in
zienit/icao-examples ``PACE_DH_GMTest.java``. The example fixes the terminal's private
keys and the chip's public keys; everything derived from them is checked here.
"""

from __future__ import annotations

import warnings

import pytest

from drivers.icao import dh, keys, pace, tlv
from drivers.icao.apdu import APDU
from drivers.icao.document import ReadOptions, read_document
from gate.reasons import ReasonCode
from gate.results import Check
from sim import chip_pace
from sim.chip import Holder, VirtualChip

H = lambda s: bytes.fromhex(s.replace(" ", ""))  # noqa: E731
N = lambda s: int.from_bytes(H(s), "big")  # noqa: E731

G2 = {
    "z": "854D8DF5 827FA685 2D1A4FA7 01CDDDCA",
    "k_pi": "89DED1B2 6624EC1E 634C1989 302849DD",
    "s": "FA5B7E3E 49753A0D B9178B7B 9BD898C8",
    "t_map": "5265030F 751F4AD1 8B08AC56 5FC7AC95 2E41618D",
    "T_map": "23FB3749 EA030D2A 25B278D2 A562047A DE3F01B7 4F17A154 02CB7352 CA7D2B3E"
    "B71C343D B13D1DEB CE9A3666 DBCFC920 B49174A6 02CB4796 5CAA73DC 702489A4"
    "4D41DB91 4DE9613D C5E98C94 160551C0 DF86274B 9359BC04 90D01B03 AD54022D"
    "CB4F57FA D6322497 D7A1E28D 46710F46 1AFE710F BBBC5F8B A166F431 1975EC6C",
    "C_map": "78879F57 225AA808 0D52ED0F C890A4B2 5336F699 AA89A2D3 A189654A F70729E6"
    "23EA5738 B26381E4 DA19E004 706FACE7 B235C2DB F2F38748 312F3C98 C2DD4882"
    "A41947B3 24AA1259 AC22579D B93F7085 655AF308 89DBB845 D9E6783F E42C9F24"
    "49400306 254C8AE8 EE9DD812 A804C0B6 6E8CAFC1 4F84D825 8950A91B 44126EE6",
    "h": "5BABEBEF 5B74E5BA 94B5C063 FDA15F1F 1CDE9487 3EE0A5D3 A2FCAB49 F258D07F"
    "544F13CB 66658C3A FEE9E727 389BE3F6 CBBBD321 28A8C21D D6EEA3CF 7091CDDF"
    "B08B8D00 7D40318D CCA4FFBF 51208790 FB4BD111 E5A968ED 6B6F08B2 6CA87C41"
    "0B3CE0C3 10CE104E ABD16629 AA48620C 1279270C B0750C0D 37C57FFF E302AE7F",
    "g_mapped": "7C9CBFE9 8F9FBDDA 8D143506 FA7D9306 F4CB17E3 C71707AF F5E1C1A1 23702496"
    "84D64EE3 7AF44B8D BD9D45BF 6023919C BAA027AB 97ACC771 666C8E98 FF483301"
    "BFA4872D EDE9034E DFACB708 14166B7F 36067682 9B826BEA 57291B5A D69FBC84"
    "EF1E7790 32A30580 3F743417 93E86974 2D401325 B37EE856 5FFCDEE6 18342DC5",
    "t_eph": "89CCD99B 0E8D3B1F 11E1296D CA68EC53 411CF2CA",
    "C_eph": "075693D9 AE941877 573E634B 6E644F8E 60AF17A0 076B8B12 3D920107 4D36152B"
    "D8B3A213 F53820C4 2ADC79AB 5D0AEEC3 AEFB9139 4DA476BD 97B9B14D 0A65C1FC"
    "71A0E019 CB08AF55 E1F72900 5FBA7E3F A5DC4189 9238A250 767A6D46 DB974064"
    "386CD456 743585F8 E5D90CC8 B4004B1F 6D866C79 CE0584E4 9687FF61 BC29AEA1",
    "T_eph": "907D89 E2D425A1 78AA81AF 4A7774EC 8E388C11 5CAE6703 1E85EECE 520BD911"
    "551B9AE4 D04369F2 9A02626C 86FBC674 7CC7BC35 2645B616 1A2A42D4 4EDA80A0"
    "8FA8D61B 76D3A154 AD8A5A51 786B0BC0 71470578 71A92221 2C5F67F4 31731722"
    "36B7747D 1671E6D6 92A3C7D4 0A0C3C5C E397545D 015C175E B5130551 EDBC2EE5 D4",
    "K": "6BABC7B3 A72BCD7E A385E4C6 2DB2625B D8613B24 149E146A 629311C4 CA6698E3"
    "8B834B6A 9E9CD718 4BA8834A FF5043D4 36950C4C 1E783236 7C10CB8C 314D40E5"
    "990B0DF7 013E64B4 549E2270 923D06F0 8CFF6BD3 E977DDE6 ABE4C31D 55C0FA2E"
    "465E553E 77BDF75E 3193D383 4FC26E8E B1EE2FA1 E4FC97C1 8C3F6CFF FE2607FD",
    "k_enc": "2F7F46AD CC9E7E52 1B45D192 FAFA9126",
    "k_mac": "805A1D27 D45A5116 F73C5446 9462B7D8",
    "token_pcd": "B46DD9BD 4D98381F",  # over the chip's ephemeral key
    "token_picc": "917F37B5 C0E6D8D1",  # over the terminal's
}
OID_DH_AES128 = pace.PACE_DH_GM + "2"


def test_modp_groups_are_rfc5114_and_consistent() -> None:
    assert [g.p.bit_length() for g in dh.MODP.values()] == [1024, 2048, 2048]
    assert [g.q.bit_length() for g in dh.MODP.values() if g.q] == [160, 224, 256]
    for g in dh.MODP.values():
        assert g.q is not None and (g.p - 1) % g.q == 0 and pow(g.g, g.q, g.p) == 1
    # RFC 5114 2.1 as printed (and in the G.2 example): first and last words of p and g
    g0 = dh.MODP[0]
    assert hex(g0.p).upper().startswith("0XB10B8F96") and g0.p & 0xFFFFFFFF == 0x2E4A4371
    assert hex(g0.g).upper().startswith("0XA4D1CBD5") and g0.g & 0xFFFFFFFF == 0x22B3B2E5


def test_g2_encrypted_nonce_and_password_key() -> None:
    mrz = keys.mrz_information("T22000129", "640812", "101031")
    k_pi = pace.password_key(mrz, 128, "AES")
    assert k_pi == H(G2["k_pi"])
    assert keys.aes_decrypt(k_pi, H(G2["z"])) == H(G2["s"])


def test_g2_generic_mapping() -> None:
    grp = dh.MODP[0]
    t = N(G2["t_map"])
    assert pow(grp.g, t, grp.p) == N(G2["T_map"])
    c_map = dh.decode(grp, H(G2["C_map"]))  # the chip's value passes validation
    h = dh.agree(grp, t, c_map)
    assert h == N(G2["h"])
    assert dh.map_generator(grp, H(G2["s"]), h) == N(G2["g_mapped"])


def test_g2_key_agreement_keys_and_tokens() -> None:
    grp, ops = dh.MODP[0], pace.DHGM(dh.MODP[0])
    c_eph, t_eph = dh.decode(grp, H(G2["C_eph"])), dh.decode(grp, H(G2["T_eph"]))
    k = dh.secret(grp, dh.agree(grp, N(G2["t_eph"]), c_eph))
    assert k == H(G2["K"])
    assert keys.kdf(k, keys.KDF_ENC, "AES", 128) == H(G2["k_enc"])
    assert keys.kdf(k, keys.KDF_MAC, "AES", 128) == H(G2["k_mac"])
    k_mac = H(G2["k_mac"])
    assert pace.auth_token(k_mac, OID_DH_AES128, ops, c_eph) == H(G2["token_pcd"])
    assert pace.auth_token(k_mac, OID_DH_AES128, ops, t_eph) == H(G2["token_picc"])
    # the chip's ephemeral key is computed on the mapped generator, not on g
    assert pow(N(G2["g_mapped"]), N(G2["t_eph"]), grp.p) == t_eph


@pytest.mark.parametrize("param", [0, 1, 2])
def test_agreement_matches_cryptography(param: int) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cryptography deprecates FFDH; fine as a check
        from cryptography.hazmat.primitives.asymmetric import dh as cdh

        grp = dh.MODP[param]
        numbers = cdh.DHParameterNumbers(grp.p, grp.g, grp.q)
        theirs = numbers.parameters().generate_private_key()
        x, y = dh.keypair(grp)
        y_theirs = theirs.public_key().public_numbers().y
        ours = dh.secret(grp, dh.agree(grp, x, dh.decode(grp, dh.encode(y_theirs))))
        mine = cdh.DHPublicNumbers(y, numbers).public_key()
        assert ours == theirs.exchange(mine) and len(ours) == grp.size


def test_public_value_validation() -> None:
    grp = dh.MODP[1]
    _, y = dh.keypair(grp)
    assert dh.public_ok(grp, y)
    for bad in (0, 1, grp.p - 1, grp.p, grp.p + 5):
        assert not dh.public_ok(grp, bad)
    assert not dh.public_ok(grp, 2)  # 2 is not in the 224-bit subgroup
    assert dh.decode(grp, y.to_bytes(grp.size, "big")) == y  # leading zeros are fine
    for data in (b"", b"\x00" * (grp.size + 1), dh.encode(grp.p - 1), b"\x02"):
        with pytest.raises(pace.AccessError):
            dh.decode(grp, data)
    with pytest.raises(pace.AccessError):
        dh.map_generator(grp, b"\x00", 1)  # g^0 * 1 = 1


def test_choose_dh_and_3des_pace() -> None:
    info = pace.choose(chip_pace.card_access(OID_DH_AES128, 2))
    assert info is not None and info.kind == "DH" and info.cipher == ("AES", 128)
    info = pace.choose(chip_pace.card_access(pace.PACE_DH_GM + "1", 0))
    assert info is not None and info.cipher == ("3DES", 128)
    info = pace.choose(chip_pace.card_access(pace.PACE_ECDH_GM + "1", 13))
    assert info is not None and info.kind == "ECDH" and info.cipher[0] == "3DES"
    assert pace.choose(chip_pace.card_access(OID_DH_AES128, 7)) is None  # reserved id


def test_choose_prefers_ecdh_aes_then_dh_aes() -> None:
    from asn1crypto import core

    from drivers.icao import lds

    def infos(*pairs: tuple[str, int]) -> bytes:
        return lds.build_security_infos(
            [(oid, core.Integer(2).dump(), core.Integer(p).dump()) for oid, p in pairs]
        )

    both = infos((pace.PACE_DH_GM + "2", 2), (pace.PACE_ECDH_GM + "2", 13))
    assert pace.choose(both).kind == "ECDH"  # type: ignore[union-attr]
    des = infos((pace.PACE_ECDH_GM + "1", 13), (pace.PACE_DH_GM + "4", 1))
    assert pace.choose(des).oid == pace.PACE_DH_GM + "4"  # type: ignore[union-attr]


def read(chip, printed=None, transmit=None):
    return read_document(
        transmit or chip.answer,
        printed or chip.holder.mrz_record(),
        chip.trust_store(),
        ReadOptions(),
        atr=chip.atr,
    )


CASES = [
    (pace.PACE_DH_GM + "1", 0),  # 3DES
    (pace.PACE_DH_GM + "2", 0),  # AES-128, the worked example's
    (pace.PACE_DH_GM + "3", 1),  # AES-192
    (pace.PACE_DH_GM + "4", 2),  # AES-256
    (pace.PACE_ECDH_GM + "1", 13),  # ECDH with 3DES
]


@pytest.mark.parametrize(
    ("oid", "param"), CASES, ids=["dh-3des", "dh-aes128", "dh-aes192", "dh-aes256", "ecdh-3des"]
)
def test_pace_read_round_trip(oid: str, param: int) -> None:
    chip = VirtualChip()
    chip.files[0x011C] = chip_pace.card_access(oid, param)
    rep = read(chip)
    res = rep.result()
    assert res.access_control == "PACE" and res.reasons == (), rep.errors
    assert res.passive_auth is Check.PASSED and res.active_auth is Check.PASSED
    assert rep.steps["pace"].apdus == 6


def test_pace_dh_1024_fits_short_apdus() -> None:
    chip = VirtualChip(extended=False)
    chip.files[0x011C] = chip_pace.card_access(OID_DH_AES128, 0)
    rep = read(chip)
    assert rep.result().access_control == "PACE" and rep.result().reasons == (), rep.errors


def test_pace_dh_2048_on_a_card_without_extended_length_falls_back_to_bac() -> None:
    """Its public value makes a 264-byte command; the card answers 6700; BAC reads it."""
    chip = VirtualChip(extended=False)
    chip.files[0x011C] = chip_pace.card_access(pace.PACE_DH_GM + "2", 2)
    rep = read(chip)
    assert rep.result().access_control == "BAC" and rep.result().reasons == (), rep.errors
    assert "6700" in rep.errors[0]


def test_pace_dh_wrong_password_is_access_denied() -> None:
    chip = VirtualChip()
    chip.files[0x011C] = chip_pace.card_access(OID_DH_AES128, 1)
    res = read(chip, printed=Holder(birth="740813").mrz_record()).result()
    assert res.access_control == "" and res.reasons == (ReasonCode.CHIP_ACCESS_DENIED,)


# --- a hostile chip: answers a reader must refuse, with a reason and no crash --------------


def _tamper(chip: VirtualChip, nth: int, value: bytes, tag: int | None = None):
    """The chip's transmit, its ``nth`` GENERAL AUTHENTICATE answered with ``value``
    under the tag it would have used (or ``tag``)."""
    seen = [0]

    def transmit(apdu: bytes) -> bytes:
        resp = chip.answer(apdu)
        if apdu[1] != 0x86 or chip.sm is not None:
            return resp
        seen[0] += 1
        if seen[0] != nth or resp[-2:] != b"\x90\x00":
            return resp
        t = tag if tag is not None else next(iter(tlv.children(tlv.unwrap(resp[:-2], 0x7C))))
        return tlv.encode(0x7C, tlv.encode(t, value)) + b"\x90\x00"

    return transmit


GRP = dh.MODP[0]
HOSTILE = {
    "map-one": (2, dh.encode(1)),
    "map-p-minus-1": (2, dh.encode(GRP.p - 1)),
    "map-p": (2, dh.encode(GRP.p)),
    "map-not-in-subgroup": (2, dh.encode(2)),
    "map-too-long": (2, b"\x00" + b"\x01" * GRP.size),
    "map-empty": (2, b""),
    "eph-one": (3, dh.encode(1)),
    "eph-not-in-subgroup": (3, dh.encode(GRP.p - 2)),
    "eph-junk": (3, b"\xff" * 7),
    "nonce-not-a-block": (1, b"\x01\x02\x03"),
    "nonce-empty": (1, b""),
}


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_pace_dh_answer_is_access_denied(case: str) -> None:
    nth, value = HOSTILE[case]
    chip = VirtualChip()
    chip.files[0x011C] = chip_pace.card_access(OID_DH_AES128, 0)
    rep = read(chip, transmit=_tamper(chip, nth, value))
    res = rep.result()
    assert res.reasons == (ReasonCode.CHIP_ACCESS_DENIED,), rep.errors
    assert not any("internal error" in e for e in rep.errors)


def test_hostile_answer_under_the_wrong_tag_is_access_denied() -> None:
    chip = VirtualChip()
    chip.files[0x011C] = chip_pace.card_access(pace.PACE_DH_GM + "1", 0)
    rep = read(chip, transmit=_tamper(chip, 3, b"\x01" * 10, tag=0x99))
    assert rep.result().reasons == (ReasonCode.CHIP_ACCESS_DENIED,), rep.errors


def test_chip_echoing_our_dh_key_is_refused() -> None:
    chip = VirtualChip()
    chip.files[0x011C] = chip_pace.card_access(OID_DH_AES128, 0)
    echoed: list[bytes] = []

    def transmit(raw: bytes) -> bytes:
        resp = chip.answer(raw)
        cmd = APDU.parse(raw)
        kids = tlv.children(tlv.unwrap(cmd.data, 0x7C)) if cmd.ins == 0x86 else {}
        if 0x83 in kids and chip.sm is None:
            echoed.append(kids[0x83])
            return tlv.encode(0x7C, tlv.encode(0x84, kids[0x83])) + b"\x90\x00"
        return resp

    rep = read(chip, transmit=transmit)
    assert echoed and rep.result().reasons == (ReasonCode.CHIP_ACCESS_DENIED,), rep.errors


def test_dh_passport_over_pcsc(vpcd) -> None:
    """A passport that is DH throughout (PACE-DH AES-256, DH chip authentication), read
    by the production reader through pcscd and vpcd."""
    from drivers.chip import read_once
    from gate.config import PcscChipConfig
    from sim.chip import ChipSpec

    chip = ChipSpec(pace_protocol="dh-aes256", ca_key="dh").build()
    vpcd(chip)
    rep, portrait = read_once(
        PcscChipConfig(type="pcsc"), chip.trust_store(), chip.holder.mrz_record()
    )
    assert rep.access_control == "PACE" and rep.result().reasons == (), rep.errors
    assert rep.chip_auth is Check.PASSED and portrait is not None
