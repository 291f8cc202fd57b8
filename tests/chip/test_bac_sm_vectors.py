"""ICAO 9303-11 Appendix D worked example, every step (key derivation, BAC, SM)."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.icao import bac, keys
from drivers.icao.apdu import APDU
from drivers.icao.errors import AccessError, SMError
from drivers.icao.sm import SecureMessaging

H = bytes.fromhex


def test_key_derivation(worked: dict) -> None:
    m, kd = worked["mrz"], worked["key_derivation"]
    info = keys.mrz_information(
        m["document_number"].rstrip("<"), m["date_of_birth"], m["date_of_expiry"]
    )
    assert info == kd["mrz_information"]
    assert keys.bac_seed(info) == H(kd["k_seed"])
    k_enc, k_mac = bac.document_keys(info)
    assert k_enc == H(kd["k_enc"])
    assert k_mac == H(kd["k_mac"])


def test_mutual_authentication(worked: dict) -> None:
    kd, ma = worked["key_derivation"], worked["mutual_authentication"]
    k_enc, k_mac = H(kd["k_enc"]), H(kd["k_mac"])
    rnd_ifd, rnd_icc, k_ifd = H(ma["rnd_ifd"]), H(ma["rnd_icc"]), H(ma["k_ifd"])
    cmd = bac.mutual_auth_data(k_enc, k_mac, rnd_ifd, rnd_icc, k_ifd)
    assert cmd == H(ma["command_data"])
    assert cmd[:32] == H(ma["e_ifd"]) and cmd[32:] == H(ma["m_ifd"])
    sm = bac.open_response(k_enc, k_mac, H(ma["response_data"]), rnd_ifd, rnd_icc, k_ifd)
    assert keys.des3_decrypt(k_enc, H(ma["response_data"])[:32]) == H(ma["decrypted_r"])
    assert sm.ks_enc == H(ma["ks_enc"]) and sm.ks_mac == H(ma["ks_mac"])
    assert sm.ssc_bytes() == H(ma["ssc"])


def test_mutual_authentication_wrong_mac_is_access_error(worked: dict) -> None:
    kd, ma = worked["key_derivation"], worked["mutual_authentication"]
    resp = bytearray(H(ma["response_data"]))
    resp[-1] ^= 1
    with pytest.raises(AccessError):
        bac.open_response(
            H(kd["k_enc"]),
            H(kd["k_mac"]),
            bytes(resp),
            H(ma["rnd_ifd"]),
            H(ma["rnd_icc"]),
            H(ma["k_ifd"]),
        )


def _session(worked: dict) -> SecureMessaging:
    ma = worked["mutual_authentication"]
    return SecureMessaging(H(ma["ks_enc"]), H(ma["ks_mac"]), int(ma["ssc"], 16))


def test_secure_messaging_steps(worked: dict) -> None:
    sm = _session(worked)
    for step in worked["secure_messaging"]:
        cmd = APDU.parse(H(step["unprotected"]))
        protected = sm.protect_command(cmd)
        assert sm.ssc_bytes() == H(step["ssc_before_command"]), step["step"]
        assert protected.encode() == H(step["protected"]), step["step"]
        if "do87" in step:
            assert H(step["do87"]) in protected.data
            assert protected.data.endswith(H(step["cc"]))
        data, sw = sm.unprotect_response(H(step["response"]))
        assert sm.ssc_bytes() == H(step["ssc_for_response"])
        assert sw == 0x9000
        assert data == H(step.get("decrypted_data", ""))


def test_card_side_reproduces_the_example(worked: dict) -> None:
    """The virtual chip's half of SM must produce the example's responses byte for byte."""
    reader, card = _session(worked), _session(worked)
    for step in worked["secure_messaging"]:
        protected = reader.protect_command(APDU.parse(H(step["unprotected"])))
        plain = card.unprotect_command(protected.encode())
        assert plain.encode() == H(step["unprotected"]) or plain.ne == 256
        resp = card.protect_response(H(step.get("decrypted_data", "")), 0x9000)
        assert resp == H(step["response"])
        reader.unprotect_response(resp)


@pytest.mark.parametrize("flip", [0, 5, -3])
def test_tampered_response_is_sm_error(worked: dict, flip: int) -> None:
    sm = _session(worked)
    step = worked["secure_messaging"][1]
    sm.protect_command(APDU.parse(H(step["unprotected"])))
    resp = bytearray(H(step["response"]))
    resp[flip] ^= 0x01
    with pytest.raises(SMError):
        sm.unprotect_response(bytes(resp))


def test_unprotected_success_inside_session_is_rejected(worked: dict) -> None:
    sm = _session(worked)
    with pytest.raises(SMError):
        sm.unprotect_response(b"\x90\x00")
    assert sm.unprotect_response(b"\x69\x88") == (b"", 0x6988)


def test_aes_session_round_trip() -> None:
    reader = SecureMessaging(bytes(range(16)), bytes(range(16, 32)), 0, "AES")
    card = SecureMessaging(bytes(range(16)), bytes(range(16, 32)), 0, "AES")
    for data in (b"", b"x", bytes(300)):
        cmd = APDU(0x00, 0xB0, 0x01, 0x02, data, 0x1000)
        got = card.unprotect_command(reader.protect_command(cmd).encode())
        assert got == cmd
        assert reader.unprotect_response(card.protect_response(data * 2, 0x9000)) == (
            data * 2,
            0x9000,
        )


@pytest.mark.parametrize(
    "raw",
    [
        "00A4020C02011E",
        "00B0000004",
        "00B0000000",
        "00B0000000FFFF",
        "0082000028" + "00" * 40 + "28",
    ],
)
def test_apdu_round_trip(raw: str) -> None:
    assert APDU.parse(H(raw)).encode() == H(raw)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80), st.sampled_from(["3DES", "AES"]))
def test_secure_messaging_on_arbitrary_bytes(data: bytes, cipher: str) -> None:
    """Garbage from the card (or the reader) is an SMError, never anything else."""
    for fn in (
        lambda d: SecureMessaging(bytes(16), bytes(16), 1, cipher).unprotect_response(d),
        lambda d: SecureMessaging(bytes(16), bytes(16), 1, cipher).unprotect_command(d),
        lambda d: SecureMessaging(bytes(16), bytes(16), 1, cipher).unprotect_command(
            b"\x0c\xb0\x00\x00" + d
        ),
    ):
        with contextlib.suppress(SMError):
            fn(data)


@given(st.binary(max_size=300))
def test_apdu_parse_raises_only_value_error(data: bytes) -> None:
    try:
        apdu = APDU.parse(data)
    except ValueError:
        return
    assert APDU.parse(apdu.encode()) == apdu
