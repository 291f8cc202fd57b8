"""The page-camera reader: presence seen on a video stream, the still page read."""

from __future__ import annotations

import asyncio
from pathlib import Path

import cv2
import numpy as np

from drivers.page_camera import PageCameraScanner, Presence
from gate.config import PageCameraScannerConfig, parse_config
from gate.inputs import DeviceFault, DocumentPlaced, DocumentRemoved
from gate.resources import shipped
from sim.page import render_page


def _glass(shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    base = np.full(shape, 45, np.uint8)
    return np.clip(base + rng.normal(0, 2, shape), 0, 255).astype(np.uint8)


def _video(path: Path) -> str:
    """Empty glass, a page slid in (moving), held still, taken away: as a V4L2 camera sees it."""
    rng = np.random.default_rng(1)
    page, ident, _ = render_page(11, "clean")
    h, w = page.shape[:2]
    frames = [_glass(page.shape, rng) for _ in range(5)]
    for dx in (w // 2, w // 4):  # the hand slides the page in
        moving = _glass(page.shape, rng)
        moving[:, dx:] = page[:, : w - dx]
        frames.append(moving)
    frames += [page.copy() for _ in range(8)]
    frames += [_glass(page.shape, rng) for _ in range(6)]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (w, h))
    assert out.isOpened()
    for f in frames:
        out.write(f)
    out.release()
    return ident.document_number


def test_presence_needs_a_change_that_holds_still() -> None:
    p = Presence(change=12, still=4, settle_frames=3)
    empty = np.full((120, 160), 40, np.uint8)
    page = empty.copy()
    page[20:100, 20:140] = 220
    assert [p.feed(f) for f in (empty, empty, page)] == [None, None, None]  # still moving
    assert [p.feed(page) for _ in range(3)] == [None, None, "placed"]
    assert [p.feed(empty) for _ in range(4)] == [None, None, None, "removed"]
    brighter = np.full((120, 160), 46, np.uint8)  # light drift is not a document
    assert [p.feed(brighter) for _ in range(10)] == [None] * 10


def test_a_page_on_a_video_stream_is_placed_read_and_removed(tmp_path: Path) -> None:
    number = _video(tmp_path / "reader.avi")
    cfg = PageCameraScannerConfig(source=str(tmp_path / "reader.avi"), poll_s=0.01)
    seen: list[object] = []
    results = []

    async def run() -> None:
        scanner = PageCameraScanner(cfg)

        def emit(event: object) -> None:
            seen.append(event)

        await scanner.start(emit)
        for _ in range(500):
            await asyncio.sleep(0.01)
            if scanner.page is not None and not results:
                results.append(await scanner.read())
            if any(isinstance(e, DocumentRemoved) for e in seen):
                break
        await scanner.close()

    asyncio.run(run())
    kinds = [type(e) for e in seen if not isinstance(e, DeviceFault)]
    assert kinds[:2] == [DocumentPlaced, DocumentRemoved], seen
    (res,) = results
    assert res.mrz is not None and res.mrz.document_number == number, res.reasons


def test_the_gate_config_takes_a_page_camera() -> None:
    text = shipped("config/gate.example.yaml").read_text()
    text = text.replace("scanner: {type: sim}", "scanner: {type: page_camera, source: /dev/video0}")
    cfg = parse_config(text)
    assert cfg.devices.scanner.type == "page_camera"


def test_a_page_camera_that_gives_frames_again_clears_its_fault(
    tmp_path: Path, monkeypatch
) -> None:
    """No frame three times is the reader's DeviceFault (out of service); frames again
    were only logged, so the fault stayed until a restart. Now LinkRestored follows."""
    import drivers.page_camera as page_camera
    from gate.inputs import LinkRestored

    monkeypatch.setattr(page_camera, "REOPEN_S", 0.02)
    rng = np.random.default_rng(3)
    glass = [_glass((120, 160, 3), rng) for _ in range(2)]

    def write_frames() -> None:
        for n, g in enumerate(glass):
            cv2.imwrite(str(tmp_path / f"{n}.png"), g)

    write_frames()
    cfg = PageCameraScannerConfig(source=str(tmp_path), poll_s=0.01)
    seen: list[object] = []

    async def run() -> None:
        scanner = PageCameraScanner(cfg)
        await scanner.start(seen.append)
        for p in tmp_path.glob("*.png"):
            p.unlink()  # unplugged
        for _ in range(300):
            await asyncio.sleep(0.01)
            if any(isinstance(e, DeviceFault) for e in seen):
                break
        write_frames()  # plugged in again
        for _ in range(300):
            await asyncio.sleep(0.01)
            if any(isinstance(e, LinkRestored) for e in seen):
                break
        await scanner.close()

    asyncio.run(run())
    faults = [e for e in seen if isinstance(e, DeviceFault | LinkRestored)]
    assert [type(e) for e in faults] == [DeviceFault, LinkRestored], seen
    assert faults[1] == LinkRestored("scanner")


def test_a_page_camera_absent_at_boot_is_out_of_service_until_it_gives_frames(
    tmp_path: Path, monkeypatch
) -> None:
    """An absent camera failed the daemon's start (crash loop until systemd gave up on the
    lane); now it is the reader's fault from the start, cleared when frames come."""
    import drivers.page_camera as page_camera
    from gate.inputs import LinkRestored

    monkeypatch.setattr(page_camera, "REOPEN_S", 0.02)
    rng = np.random.default_rng(5)
    cfg = PageCameraScannerConfig(source=str(tmp_path), poll_s=0.01)  # no frames yet
    seen: list[object] = []

    async def run() -> None:
        scanner = PageCameraScanner(cfg)
        await scanner.start(seen.append)
        assert [type(e) for e in seen] == [DeviceFault], seen
        await asyncio.sleep(0.2)
        for n in range(2):
            cv2.imwrite(str(tmp_path / f"{n}.png"), _glass((120, 160, 3), rng))
        for _ in range(300):
            await asyncio.sleep(0.01)
            if any(isinstance(e, LinkRestored) for e in seen):
                break
        await scanner.close()

    asyncio.run(run())
    faults = [e for e in seen if isinstance(e, DeviceFault | LinkRestored)]
    assert faults == [faults[0], LinkRestored("scanner")], seen  # said once, then cleared


class _OddSource:
    """A camera backend that misbehaves between good frames: raises, hands over BGRA,
    16-bit, empty and non-image frames. Then shows a page laid on the glass."""

    def __init__(self, glass: np.ndarray, page: np.ndarray) -> None:
        h, w = glass.shape[:2]
        odd: list[object] = [
            RuntimeError("v4l2: VIDIOC_DQBUF: No such device"),
            cv2.cvtColor(glass, cv2.COLOR_BGR2BGRA),
            (glass.astype(np.uint16) << 8),
            np.zeros((0, 0, 3), np.uint8),
            np.zeros((h, w, 2), np.uint8),
            "not a frame",
        ]
        between = [x for o in odd for x in (o, glass)]  # one odd frame at a time
        self.frames: list[object] = [glass] * 3 + between + [glass] * 3 + [page] * 10

    def release(self) -> None:
        pass

    def read(self) -> object:
        item = self.frames.pop(0) if len(self.frames) > 1 else self.frames[0]
        if isinstance(item, Exception):
            raise item
        return item


def test_a_camera_backend_that_misbehaves_does_not_end_the_watch(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    # each odd frame used to raise inside the watch task, which ended: the lane never
    # saw a document again, and nothing said so
    monkeypatch.setattr("drivers.page_camera.REOPEN_S", 0.01)
    page, ident, _ = render_page(11, "clean")
    glass = _glass(page.shape, np.random.default_rng(2))
    cfg = PageCameraScannerConfig(source="/dev/video-test", poll_s=0.005)
    seen: list[object] = []

    async def run() -> None:
        scanner = PageCameraScanner(cfg)
        scanner._source = _OddSource(glass, page)
        scanner._task = asyncio.create_task(scanner._watch(seen.append))
        try:
            for _ in range(400):
                if DocumentPlaced() in seen:
                    break
                assert not scanner._task.done(), scanner._task
                await asyncio.sleep(0.01)
            assert DocumentPlaced() in seen
            res = await scanner.read()
            assert res.mrz is not None and res.mrz.document_number == ident.document_number
        finally:
            await scanner.close()

    asyncio.run(run())
    assert not [e for e in seen if isinstance(e, DeviceFault)]  # one odd frame is no fault
