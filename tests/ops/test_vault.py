"""Referral biometrics: sealed with AES-GCM at rest, deleted after resolution + retention."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from autogate.vault import Biometrics, ReferralStore, Vault, VaultError, _pack, _unpack
from drivers.icao.cbeff import FingerImage
from tests.ops.helpers import has_image_magic, image_hits


def face_jpeg() -> bytes:
    """A face-sized JPEG portrait, as DG2 carries (ISO/IEC 19794-5 token image size)."""
    rng = np.random.default_rng(7)
    img = Image.fromarray(rng.integers(0, 255, (320, 240, 3), dtype=np.uint8))
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return buf.getvalue()


def face_frame() -> np.ndarray:
    return np.random.default_rng(11).integers(0, 255, (480, 640, 3), dtype=np.uint8)


class Clock:
    def __init__(self) -> None:
        self.now = 1_790_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def vault(tmp_path: Path, clock: Clock, key: bytes | None = None, retention: float = 60) -> Vault:
    store = ReferralStore(tmp_path / "referrals", key or b"k" * 32, retention, 3600)
    return Vault(store, clock)


def referred(v: Vault, txn: str) -> tuple[bytes, np.ndarray]:
    portrait, frame = face_jpeg(), face_frame()
    v.begin(txn)
    v.put_portrait(txn, portrait)
    v.put_frame(txn, frame)
    v.forget(txn, keep_for_referral=True)
    return portrait, frame


def test_referral_is_sealed_on_disk_and_opens_with_the_key(tmp_path: Path, clock: Clock) -> None:
    v = vault(tmp_path, clock)
    portrait, frame = referred(v, "b1-000001")
    assert v._items == {}  # not in memory any more: on disk, sealed
    files = sorted(p.name for p in (tmp_path / "referrals").iterdir())
    assert files == ["b1-000001.bin", "b1-000001.json"]
    assert os.stat(tmp_path / "referrals" / "b1-000001.bin").st_mode & 0o077 == 0
    # neither the JPEG nor any stretch of the raw frame is on disk in the clear
    assert image_hits(tmp_path, (portrait[100:164], frame.tobytes()[5000:5064])) == []
    assert has_image_magic(portrait)  # the probe does find a JPEG in the clear
    bio = v.get("b1-000001")
    assert bio is not None and bio.portrait == portrait
    assert bio.best_frame is not None and np.array_equal(bio.best_frame, frame)
    assert v.held() == ["b1-000001"]


def test_wrong_key_or_tampered_file_is_a_vault_error(tmp_path: Path, clock: Clock) -> None:
    v = vault(tmp_path, clock)
    referred(v, "b1-000002")
    other = vault(tmp_path, clock, key=b"x" * 32)
    with pytest.raises(VaultError, match="wrong key or tampered"):
        other.get("b1-000002")
    blob = tmp_path / "referrals" / "b1-000002.bin"
    data = bytearray(blob.read_bytes())
    data[40] ^= 1
    blob.write_bytes(bytes(data))
    with pytest.raises(VaultError):
        v.get("b1-000002")
    # a sealed file moved to another transaction's name does not open either (AAD)
    v2 = vault(tmp_path / "b", clock)
    referred(v2, "b1-000003")
    (tmp_path / "b" / "referrals" / "b1-000003.bin").rename(
        tmp_path / "b" / "referrals" / "b1-000004.bin"
    )
    with pytest.raises(VaultError):
        v2.get("b1-000004")


def test_deleted_after_resolution_plus_retention(tmp_path: Path, clock: Clock) -> None:
    v = vault(tmp_path, clock, retention=60)
    referred(v, "b1-000005")
    clock.now += 1000  # an unresolved referral stays, however long the officer takes
    v.purge()
    assert v.held() == ["b1-000005"]
    v.forget("b1-000005")  # the officer resolved it
    clock.now += 59
    v.purge()
    assert v.held() == ["b1-000005"]
    clock.now += 2
    v.purge()
    assert v.held() == [] and list((tmp_path / "referrals").iterdir()) == []


def test_zero_retention_deletes_at_resolution(tmp_path: Path, clock: Clock) -> None:
    v = vault(tmp_path, clock, retention=0)
    referred(v, "b1-000006")
    v.forget("b1-000006")
    assert list((tmp_path / "referrals").iterdir()) == []


def test_never_resolved_is_deleted_after_max_hold(tmp_path: Path, clock: Clock) -> None:
    v = vault(tmp_path, clock)
    referred(v, "b1-000007")
    clock.now += 3600
    v.purge()
    assert v.held() == []


def test_restart_treats_old_referrals_as_resolved(tmp_path: Path, clock: Clock) -> None:
    v = vault(tmp_path, clock, retention=60)
    referred(v, "b1-000008")
    store = ReferralStore(tmp_path / "referrals", b"k" * 32, 60, 3600)  # the next boot
    store.resolve_all(clock.now)
    assert store.purge(clock.now + 61) == ["b1-000008"]


def test_accepted_transaction_never_touches_disk(tmp_path: Path, clock: Clock) -> None:
    v = vault(tmp_path, clock)
    v.begin("b1-000009")
    v.put_portrait("b1-000009", face_jpeg())
    v.put_frame("b1-000009", face_frame())
    v.forget("b1-000009")
    assert v.held() == [] and list((tmp_path / "referrals").iterdir()) == []


def test_memory_only_vault_keeps_referral_in_memory() -> None:
    v = Vault()
    v.begin("b1-000010")
    v.put_portrait("b1-000010", b"portrait")
    v.forget("b1-000010", keep_for_referral=True)
    bio = v.get("b1-000010")
    assert bio is not None and bio.portrait == b"portrait"
    v.forget("b1-000010")
    assert v.get("b1-000010") is None


def test_bad_transaction_id_cannot_escape_the_directory(tmp_path: Path, clock: Clock) -> None:
    v = vault(tmp_path, clock)
    v.begin("../../etc/x")
    v.put_portrait("../../etc/x", b"p")
    with pytest.raises(ValueError, match="bad transaction id"):
        v.forget("../../etc/x", keep_for_referral=True)


def test_what_arrives_after_its_transaction_ended_is_dropped_and_counted() -> None:
    """A late chip portrait or camera frame (the device answered after the traveller left)
    is not kept: no face data outlives its transaction."""
    v = Vault()
    v.begin("b1-000011")
    assert v.put_portrait("b1-000011", b"portrait")
    v.forget("b1-000011")  # ended: accepted, aborted or sent back
    assert not v.put_frame("b1-000011", face_frame())  # the burst finished late
    assert not v.put_portrait("b1-000011", b"portrait")  # a chip read finished late
    assert not v.put_frame("b1-000099", face_frame())  # a transaction never begun here
    assert v.held() == [] and v._items == {}
    assert v.dropped_late == 3
    # a referral keeps what it had; what comes after it was opened is dropped
    v.begin("b1-000012")
    v.put_portrait("b1-000012", b"portrait")
    v.forget("b1-000012", keep_for_referral=True)
    assert not v.put_frame("b1-000012", face_frame())
    bio = v.get("b1-000012")
    assert bio is not None and bio.portrait == b"portrait" and bio.best_frame is None
    assert v.dropped_late == 4


# --- the thumb's references (issue 19): DG3's finger images follow the face's rules ------


def finger(position: int) -> FingerImage:
    rng = np.random.default_rng(position)
    raw = rng.integers(0, 255, (64, 64), dtype=np.uint8).tobytes()
    return FingerImage(position, 0, 80, 0, 64, 64, 500, 8, "raw", raw)


def test_finger_images_are_sealed_with_the_referral_and_deleted_with_it(
    tmp_path: Path, clock: Clock
) -> None:
    v = vault(tmp_path, clock, retention=0)
    fingers = (finger(1), finger(6))
    v.begin("b1-000011")
    assert v.put_fingers("b1-000011", fingers)
    portrait, _ = referred(v, "b1-000011")
    assert v._items == {}
    assert image_hits(tmp_path, (fingers[0].image[100:164], fingers[1].image[9:73])) == []
    bio = v.get("b1-000011")
    assert bio is not None and bio.fingers == fingers and bio.portrait == portrait
    v.forget("b1-000011")  # the officer resolved it
    assert v.held() == [] and list((tmp_path / "referrals").iterdir()) == []


def test_finger_images_of_an_accepted_crossing_never_touch_disk(
    tmp_path: Path, clock: Clock
) -> None:
    v = vault(tmp_path, clock)
    v.begin("b1-000012")
    assert v.put_fingers("b1-000012", (finger(1),))
    v.forget("b1-000012")
    assert not v.put_fingers("b1-000012", (finger(1),))  # a late DG3 read is dropped
    assert v.get("b1-000012") is None and list((tmp_path / "referrals").iterdir()) == []


def test_a_referral_sealed_before_the_thumb_channel_still_opens() -> None:
    old = _pack(Biometrics(b"portrait", face_frame()))
    head_len = int.from_bytes(old[:4], "big")
    header = json.loads(old[4 : 4 + head_len])
    del header["fingers"]  # the earlier format had no such key
    head = json.dumps(header).encode()
    legacy = len(head).to_bytes(4, "big") + head + old[4 + head_len :]
    bio = _unpack(legacy)
    assert bio.portrait == b"portrait" and bio.fingers == () and bio.best_frame is not None


DAMAGE = {
    "times not JSON": lambda d: (d / "b1-000101.json").write_text("{torn"),
    "times a list": lambda d: (d / "b1-000101.json").write_text("[1]"),
    "times not text": lambda d: (d / "b1-000101.json").write_bytes(b"\xff\xfe\x00"),
    "times a folder": lambda d: ((d / "b1-000101.json").unlink(), (d / "b1-000101.json").mkdir()),
    "a name that is no transaction": lambda d: (d / "not a txn.bin").write_bytes(b"x"),
    "a folder named .bin": lambda d: (d / "b1-000102.bin").mkdir(),
}


@pytest.mark.parametrize("case", DAMAGE)
def test_a_damaged_store_entry_never_stops_the_start(
    tmp_path: Path, clock: Clock, case: str
) -> None:
    """What the next boot does first (``Ops.build``): resolve every referral of the last
    run, purge. One damaged entry (a bad block, a hand-made file) raised there and the
    lane could not start; now an entry whose times cannot be read is deleted (nothing
    justifies keeping it), and the sound referral beside it is kept."""
    v = vault(tmp_path, clock)
    referred(v, "b1-000100")
    referred(v, "b1-000101")
    DAMAGE[case](tmp_path / "referrals")
    store = ReferralStore(tmp_path / "referrals", b"k" * 32, 60, 3600)  # the next boot
    store.resolve_all(clock.now)
    store.purge(clock.now)
    assert store.open("b1-000100") is not None  # the sound one is kept until retention
    assert "b1-000100" in store.purge(clock.now + 61)  # resolved at the start: retention
    assert store.txns() == []


def test_a_disk_that_refuses_the_seal_keeps_the_referral_in_memory(
    tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a full disk raised out of forget(), in the daemon's step between two of the core's
    # actions: the daemon died at the first referral, and at every one after a restart
    v = vault(tmp_path, clock)

    def full(*_a: object, **_k: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(v.store, "_write", full)
    portrait, frame = referred(v, "b1-000002")
    bio = v.get("b1-000002")  # the officer still gets the photos
    assert bio is not None and bio.portrait == portrait
    assert not list((tmp_path / "referrals").glob("*.bin"))
    v.forget("b1-000002")  # resolved: gone from memory, and the disk error is no crash
    assert v.get("b1-000002") is None and v.held() == []
