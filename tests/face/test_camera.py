"""The OpenCV camera on real frames: folders, video files, dead and frozen cameras."""

from __future__ import annotations

import asyncio
import shutil

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from drivers.camera import OpenCVCamera, build
from drivers.errors import DeviceError
from gate.config import GateConfig, OpenCVCameraConfig, parse_config
from gate.inputs import DeviceFault, LinkRestored


def cam(source, **kw) -> OpenCVCamera:
    return OpenCVCamera(OpenCVCameraConfig(type="opencv", source=source, **kw))


async def test_folder_of_frames_gives_bursts_in_order_with_timestamps(faces_dir, tmp_path):
    for i, name in enumerate(["01.jpg", "02.jpg", "03.jpg"]):
        shutil.copy(faces_dir / "Colin_Powell" / name, tmp_path / f"f{i}.jpg")
    c = cam(str(tmp_path))
    await c.start(lambda _: None)
    frames = await c.burst(4)  # wraps around the three files
    assert len(frames) == 4
    assert all(f.image.shape == (250, 250, 3) for f in frames)
    assert [f.ts for f in frames] == sorted(f.ts for f in frames)
    assert np.array_equal(frames[0].image, frames[3].image)
    await c.close()
    await c.close()  # idempotent


async def test_video_file_burst(faces_dir):
    c = cam(str(faces_dir / "video" / "single_face.mp4"))
    await c.start(lambda _: None)
    frames = await c.burst(5)
    assert len(frames) == 5 and frames[0].image.shape == (360, 640, 3)
    await c.close()


async def test_video_without_loop_runs_dry_as_device_error(faces_dir):
    c = cam(str(faces_dir / "video" / "single_face.mp4"), loop=False)
    await c.start(lambda _: None)
    with pytest.raises(DeviceError, match="no frame"):
        for _ in range(40):  # 72 frames in the clip
            await c.burst(5)
    await c.close()


async def test_frozen_camera_is_a_device_error(faces_dir, tmp_path):
    shutil.copy(faces_dir / "london_002" / "01.jpg", tmp_path / "only.jpg")
    c = cam(str(tmp_path))
    await c.start(lambda _: None)
    with pytest.raises(DeviceError, match="frozen"):
        await c.burst(3)


async def test_frozen_across_bursts_of_one(faces_dir, tmp_path):
    shutil.copy(faces_dir / "london_002" / "01.jpg", tmp_path / "only.jpg")
    c = cam(str(tmp_path))
    await c.start(lambda _: None)
    await c.burst(1)
    with pytest.raises(DeviceError, match="frozen"):
        await c.burst(1)


async def test_forget_drops_the_last_travellers_frame(faces_dir, tmp_path):
    """The last frame is kept to see a camera frozen across bursts, but it is the face of
    the last traveller: it goes when their transaction ends (the daemon calls forget)."""
    shutil.copy(faces_dir / "london_002" / "01.jpg", tmp_path / "only.jpg")
    c = cam(str(tmp_path))
    await c.start(lambda _: None)
    await c.burst(1)
    assert c._last is not None
    c.forget()
    assert c._last is None
    await c.burst(1)  # the next traveller's first burst: nothing to call frozen against
    await c.close()


@pytest.mark.parametrize("source", ["/nonexistent/cam.mp4", 97])
async def test_absent_camera_is_a_fault_at_start_not_a_failed_start(source):
    """A camera absent at boot failed the daemon's start: systemd restarted it every 2 s
    and gave up after 10, leaving the lane dead. Now it is the camera's fault (out of
    service) and a burst is a DeviceError until it gives frames."""
    said: list[object] = []
    c = cam(source, timeout_s=0.5)
    await c.start(said.append)
    try:
        assert [type(e) for e in said] == [DeviceFault] and said[0].device == "camera"
        with pytest.raises(DeviceError):
            await c.burst(1)
    finally:
        await c.close()


async def test_a_camera_absent_at_boot_clears_its_fault_when_frames_come(tmp_path, faces_dir):
    said: list[object] = []
    c = cam(str(tmp_path), timeout_s=0.2)  # no image files yet
    await c.start(said.append)
    try:
        assert [type(e) for e in said] == [DeviceFault] and "no image" in said[0].detail
        shutil.copy(faces_dir / "Colin_Powell" / "01.jpg", tmp_path / "a.jpg")
        shutil.copy(faces_dir / "Colin_Powell" / "02.jpg", tmp_path / "b.jpg")
        for _ in range(100):
            if len(said) > 1:
                break
            await asyncio.sleep(0.05)
        assert said[1:] == [LinkRestored("camera")]
        assert len(await c.burst(2)) == 2
    finally:
        await c.close()


def test_config_union_and_factory(tmp_path):
    cfg = parse_config(
        "gate: {site: s1, id: g1}\n"
        f"devices:\n  camera: {{type: opencv, source: '{tmp_path}', width: 640, fps: 15}}\n"
    )
    assert isinstance(cfg.devices.camera, OpenCVCameraConfig)
    assert isinstance(build(cfg.devices.camera, cfg), OpenCVCamera)
    with pytest.raises(ValidationError):
        OpenCVCameraConfig(type="opencv", source=0, colour="yes")
    assert isinstance(GateConfig.model_validate({"gate": {"site": "s", "id": "g"}}), GateConfig)


async def test_folder_camera_follows_the_scene_when_the_folder_is_swapped(faces_dir, tmp_path):
    """The simulator swaps the frame folder for each traveller; the camera must show the
    new scene, not fail on the old file names."""
    scene = tmp_path / "camera"
    scene.mkdir()
    shutil.copy(faces_dir / "Colin_Powell" / "01.jpg", scene / "a.jpg")
    shutil.copy(faces_dir / "Colin_Powell" / "02.jpg", scene / "b.jpg")
    c = cam(str(scene))
    await c.start(lambda _: None)
    first = await c.burst(2)
    new = tmp_path / "next"
    new.mkdir()
    for i, name in enumerate(["01.jpg", "02.jpg"]):
        shutil.copy(faces_dir / "Ariel_Sharon" / name, new / f"{i}.jpg")
    shutil.rmtree(scene)
    new.rename(scene)
    second = await c.burst(2)
    expected = [faces_dir / "Ariel_Sharon" / "01.jpg", faces_dir / "Ariel_Sharon" / "02.jpg"]
    import cv2

    assert all(
        np.array_equal(f.image, cv2.imread(str(p))) for f, p in zip(second, expected, strict=True)
    )
    assert not np.array_equal(first[0].image, second[0].image)
    await c.close()


def _png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` (a decompression bomb's header)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


async def test_an_unusable_frame_file_is_skipped_not_a_dead_camera(faces_dir, tmp_path):
    """One truncated or bomb-sized file in the folder the camera writes was 'no frame':
    a DeviceError, the lane out of service. It is skipped (and never decoded when its
    header claims more pixels than any frame), and the burst comes from the others."""
    shutil.copy(faces_dir / "Colin_Powell" / "01.jpg", tmp_path / "a.jpg")
    good = (faces_dir / "Colin_Powell" / "02.jpg").read_bytes()
    (tmp_path / "b.jpg").write_bytes(good[: len(good) // 3])  # torn write
    (tmp_path / "c.png").write_bytes(_png_claiming(60_000, 60_000))  # 3.6 gigapixels
    (tmp_path / "d.jpg").write_bytes(b"")
    shutil.copy(faces_dir / "Colin_Powell" / "03.jpg", tmp_path / "e.jpg")
    c = cam(str(tmp_path))
    await c.start(lambda _: None)
    frames = await c.burst(4)
    assert len(frames) == 4 and all(f.image.shape == (250, 250, 3) for f in frames)
    await c.close()


async def test_a_camera_that_answers_again_clears_its_fault(faces_dir, tmp_path):
    """A camera fault put the lane out of service for good: nothing ever said the camera
    was back, so 'in service' was refused ('not recovered: camera') until a restart.
    After a failed burst the camera is tried again, and LinkRestored says it is back."""
    from gate.inputs import LinkRestored

    said: list[object] = []
    folder = tmp_path / "scene"
    folder.mkdir()
    shutil.copy(faces_dir / "Colin_Powell" / "01.jpg", folder / "a.jpg")
    c = cam(str(folder), timeout_s=0.2)
    await c.start(said.append)
    for p in folder.iterdir():
        p.unlink()  # the camera stops giving frames
    with pytest.raises(DeviceError):
        await c.burst(2)
    await asyncio.sleep(0.5)
    assert not said  # still nothing to read: no recovery claimed
    shutil.copy(faces_dir / "Colin_Powell" / "02.jpg", folder / "b.jpg")
    shutil.copy(faces_dir / "Colin_Powell" / "03.jpg", folder / "c.jpg")
    for _ in range(100):
        if said:
            break
        await asyncio.sleep(0.05)
    assert said == [LinkRestored("camera")]
    frames = await c.burst(2)
    assert len(frames) == 2
    await c.close()


async def test_a_frozen_camera_is_not_reported_back(faces_dir, tmp_path):
    """Trying again reads two frames: the same picture twice is still frozen."""
    shutil.copy(faces_dir / "london_002" / "01.jpg", tmp_path / "only.jpg")
    said: list[object] = []
    c = cam(str(tmp_path))
    await c.start(said.append)
    with pytest.raises(DeviceError, match="frozen"):
        await c.burst(3)
    await asyncio.sleep(2.5)  # two tries
    assert said == []
    await c.close()


async def test_a_burst_that_fails_unexpectedly_is_a_camera_fault_that_clears(
    faces_dir, tmp_path, monkeypatch
):
    """An exception of no expected type inside the burst (a backend's odd failure) used
    to escape as itself: the daemon reported a camera fault nothing ever cleared."""
    from gate.inputs import LinkRestored

    said: list[object] = []
    folder = tmp_path / "scene"
    folder.mkdir()
    shutil.copy(faces_dir / "Colin_Powell" / "01.jpg", folder / "a.jpg")
    shutil.copy(faces_dir / "Colin_Powell" / "02.jpg", folder / "b.jpg")
    c = cam(str(folder), timeout_s=0.2)
    await c.start(said.append)
    real = c._burst
    calls = 0

    def broken(n: int):
        nonlocal calls
        calls += 1
        if calls == 1:
            raise cv2.error("OpenCV(4.10.0) resize.cpp:4152: error: (-215:Assertion failed)")
        return real(n)

    monkeypatch.setattr(c, "_burst", broken)
    with pytest.raises(DeviceError, match="unexpected error"):
        await c.burst(2)
    for _ in range(100):
        if said:
            break
        await asyncio.sleep(0.05)
    assert said == [LinkRestored("camera")]
    assert len(await c.burst(2)) == 2
    await c.close()


async def test_frames_of_other_formats_reach_the_face_pipeline_as_bgr(tmp_path):
    """A backend handing over BGRA, 16-bit or gray frames: each traveller's face check
    failed on them (one referral after another); they are made 8-bit BGR."""
    rng = np.random.default_rng(3)
    base = [rng.integers(0, 255, (48, 64, 3), dtype=np.uint8) for _ in range(3)]
    odd = [
        cv2.cvtColor(base[0], cv2.COLOR_BGR2BGRA),
        base[1].astype(np.uint16) << 8,
        cv2.cvtColor(base[2], cv2.COLOR_BGR2GRAY),
    ]

    class Source:
        def read(self):
            return odd.pop(0)

        def release(self) -> None:
            pass

    folder = tmp_path / "scene"
    folder.mkdir()
    c = cam(str(folder), timeout_s=0.2)
    c._src = Source()
    frames = c._burst(3)
    assert [f.image.shape for f in frames] == [(48, 64, 3)] * 3
    assert all(f.image.dtype == np.uint8 for f in frames)
    assert np.array_equal(frames[0].image, base[0]) and np.array_equal(frames[1].image, base[1])
