"""The verifier end to end on real faces, and every kind of bad input as a reason code."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
from PIL import Image

from drivers.face.verifier import DlibFaceVerifier, decode_portrait
from drivers.interfaces import FaceVerification, Frame
from gate.reasons import ReasonCode as R


def read(faces_dir, rel: str) -> bytes:
    return (faces_dir / rel).read_bytes()


def img(faces_dir, rel: str) -> np.ndarray:
    return cv2.imread(str(faces_dir / rel))


def test_genuine_london_pair_matches(verifier: DlibFaceVerifier, faces_dir):
    rep = verifier.check(
        read(faces_dir, "london_002/01.jpg"), [img(faces_dir, "london_002/02.jpg")]
    )
    assert rep.result.match, rep.as_dict()
    assert rep.result.reasons == ()
    assert rep.result.score >= rep.result.threshold == verifier.descriptor.threshold
    assert rep.result.backend == "dlib"
    assert rep.best_frame is not None


def test_impostor_is_no_match(verifier, faces_dir):
    rep = verifier.check(
        read(faces_dir, "london_002/01.jpg"), [img(faces_dir, "london_004/02.jpg")]
    )
    assert not rep.result.match
    assert rep.result.reasons == (R.FACE_NO_MATCH,)
    assert rep.result.score < rep.result.threshold


def test_jpeg2000_portrait_and_dg2_wrapper(verifier, faces_dir):
    buf = io.BytesIO()
    Image.open(faces_dir / "london_006/01.jpg").save(
        buf, "JPEG2000", quality_mode="rates", quality_layers=[40]
    )
    jp2 = buf.getvalue()
    assert jp2[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n"
    live = [img(faces_dir, "london_006/02.jpg")]
    assert verifier.check(jp2, live).result.match
    # the image inside an ISO/IEC 19794-5 record ("FAC\0" header and facial header bytes)
    record = b"FAC\x00010\x00" + bytes(40) + jp2
    assert verifier.check(record, live).result.match


@pytest.mark.parametrize(
    "mangle",
    [
        lambda b: b[: len(b) // 4],  # truncated: only the top quarter of the portrait
        lambda b: b"\x00" * 2000,
        lambda b: b"not an image at all",
        lambda b: b[:2] + bytes(reversed(b[2:])),  # corrupt stream behind a JPEG marker
    ],
    ids=["truncated", "zeros", "text", "corrupt"],
)
def test_bad_portrait_bytes_are_unreadable(verifier, faces_dir, mangle):
    bad = mangle(read(faces_dir, "london_002/01.jpg"))
    rep = verifier.check(bad, [img(faces_dir, "london_002/02.jpg")])
    assert not rep.result.match
    assert rep.result.reasons == (R.FACE_UNREADABLE,)


def test_no_portrait(verifier, faces_dir):
    rep = verifier.check(None, [img(faces_dir, "london_002/02.jpg")])
    assert rep.result.reasons == (R.CHIP_NO_PORTRAIT,)


def test_huge_declared_portrait_is_refused_before_decoding(faces_dir):
    data = bytearray(read(faces_dir, "london_002/01.jpg"))
    sof = data.find(b"\xff\xc0")
    assert sof > 0
    data[sof + 5 : sof + 9] = (20000).to_bytes(2, "big") + (20000).to_bytes(2, "big")
    assert decode_portrait(bytes(data), 50_000_000) is None


def test_one_pixel_portrait(verifier, faces_dir):
    ok, one = cv2.imencode(".jpg", img(faces_dir, "london_002/01.jpg")[300:301, 300:301])
    rep = verifier.check(one.tobytes(), [img(faces_dir, "london_002/02.jpg")])
    assert rep.result.reasons == (R.FACE_UNREADABLE,)


def test_large_live_frame_still_works(verifier, faces_dir):
    big = cv2.resize(img(faces_dir, "london_002/02.jpg"), (4000, 4000))
    portrait = read(faces_dir, "london_002/01.jpg")
    rep = verifier.check(portrait, [big])
    if rep.result.retryable:  # a borderline PAD score (0.64): the core asks for one more
        assert rep.pad.get("borderline"), rep.as_dict()
        rep = verifier.check(portrait, [big])
    assert rep.result.match, rep.as_dict()


@pytest.mark.parametrize("value", [0, 128], ids=["black", "grey"])
def test_blank_frames_have_no_face(verifier, faces_dir, value):
    frames = [np.full((480, 640, 3), value, np.uint8)] * 3
    rep = verifier.check(read(faces_dir, "london_002/01.jpg"), frames)
    assert rep.result.reasons == (R.FACE_NOT_FOUND,)


def test_tiny_and_malformed_frames(verifier, faces_dir):
    portrait = read(faces_dir, "london_002/01.jpg")
    one = img(faces_dir, "london_002/02.jpg")[360:361, 360:361]
    assert verifier.check(portrait, [one]).result.reasons == (R.FACE_NOT_FOUND,)
    assert verifier.check(portrait, []).result.reasons == (R.FACE_UNREADABLE,)
    floats = img(faces_dir, "london_002/02.jpg").astype(np.float32)
    assert verifier.check(portrait, [floats]).result.reasons == (R.FACE_UNREADABLE,)


def test_two_faces_side_by_side(verifier, faces_dir):
    a = img(faces_dir, "london_002/02.jpg")
    b = img(faces_dir, "london_004/02.jpg")
    both = np.hstack([a, b])
    rep = verifier.check(read(faces_dir, "london_002/01.jpg"), [both])
    assert rep.result.reasons == (R.FACE_MULTIPLE,)


def test_video_without_face(verifier, faces_dir):
    cap = cv2.VideoCapture(str(faces_dir / "video" / "no_face.mp4"))
    frames = [cap.read()[1] for _ in range(3)]
    cap.release()
    rep = verifier.check(read(faces_dir, "london_002/01.jpg"), frames)
    assert rep.result.reasons == (R.FACE_NOT_FOUND,)


def test_blurred_and_dark_frames_fail_quality_with_their_measures(verifier, faces_dir):
    portrait = read(faces_dir, "london_002/01.jpg")
    live = img(faces_dir, "london_002/02.jpg")
    blurred = cv2.GaussianBlur(live, (0, 0), 5)
    rep = verifier.check(portrait, [blurred])
    assert rep.result.reasons[0] == R.FACE_QUALITY and R.FACE_BLUR in rep.result.reasons
    dark = (live * 0.12).astype(np.uint8)
    rep = verifier.check(portrait, [dark])
    assert R.FACE_EXPOSURE in rep.result.reasons
    assert not rep.result.match


def test_best_frame_is_picked_from_a_mixed_burst(verifier, faces_dir):
    live = img(faces_dir, "london_002/02.jpg")
    burst = [np.zeros_like(live), cv2.GaussianBlur(live, (0, 0), 5), live]
    rep = verifier.check(read(faces_dir, "london_002/01.jpg"), burst)
    assert rep.result.match and rep.quality["best"] == 2


async def test_async_interface(verifier, faces_dir):
    frames = [Frame(image=img(faces_dir, "london_006/02.jpg"), ts=1.0)]
    out = await verifier.verify(read(faces_dir, "london_006/01.jpg"), frames)
    assert isinstance(out, FaceVerification)
    assert out.result.match and out.best_frame is not None


async def test_prepared_portrait_gives_the_same_score(faces_dir):
    from drivers.face.verifier import DlibFaceVerifier
    from gate.config import DlibFaceConfig

    fresh = DlibFaceVerifier(DlibFaceConfig(type="dlib"))
    portrait = read(faces_dir, "london_009/01.jpg")
    live = [img(faces_dir, "london_009/02.jpg")]
    cold = fresh.check(portrait, live)
    await fresh.prepare(portrait)
    warm = fresh.check(portrait, live)
    assert warm.result.match and warm.result.score == pytest.approx(cold.result.score)
    await fresh.prepare(b"garbage")  # a bad portrait prepared is still a reason code later
    assert fresh.check(b"garbage", live).result.reasons == (R.FACE_UNREADABLE,)


async def test_forget_drops_the_portrait_template_even_from_work_in_flight(
    verifier: DlibFaceVerifier, faces_dir
) -> None:
    """The DG2 embedding is biometric data: it goes when its transaction ends, and a
    ``prepare`` still running when the transaction ended keeps nothing either."""
    portrait = read(faces_dir, "london_009/01.jpg")
    await verifier.prepare(portrait)
    assert verifier._portraits
    verifier.forget()
    assert not verifier._portraits
    era = verifier._era
    verifier.forget()  # the transaction ends while a prepare begun before is running
    assert verifier._portrait_vector(portrait, era) is not None  # it still answers
    assert not verifier._portraits  # and caches nothing
