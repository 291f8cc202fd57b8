"""A capture-only fingerprint reader over libfprint (any reader libfprint drives that can
capture images; its ``virtual_image`` driver gives a hardware-free test).

Each capture runs ``fprint_helper.py`` under the interpreter that has Debian's GObject
bindings (``python3-gi``, ``gir1.2-fprint-2.0``, ``libfprint-2-2``; ``./run`` installs
them): PyGObject does not build into the daemon's venv on Debian 12 (newer releases need
a newer GLib), and a process apart keeps GLib's main context and a native crash away
from the daemon. A cancel or a timeout kills the helper. The resolution is the device's
(``ppmm``) when it states one; ``resolution_ppi`` in the config when it states none
(the virtual driver does not).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

from drivers.finger.config import LibfprintReaderConfig
from drivers.finger.reader import MAX_SIDE, Capture, NoFinger, ReaderFault

HELPER = Path(__file__).with_name("fprint_helper.py")
START_MARGIN_S = 10.0  # the helper's own start (interpreter, GI, device open)


class LibfprintReader:
    def __init__(self, cfg: LibfprintReaderConfig | None = None) -> None:
        self.cfg = cfg or LibfprintReaderConfig()
        self.name = f"libfprint {self.cfg.device or ''}".strip()

    def capture(self, timeout_s: float, cancel: threading.Event | None = None) -> Capture:
        argv = [str(self.cfg.python), str(HELPER), "--timeout", f"{max(0.0, timeout_s):.3f}"]
        if self.cfg.device:
            argv += ["--device", self.cfg.device]
        env = os.environ | self.cfg.environment
        try:
            proc = subprocess.Popen(
                argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
            )  # fmt: skip
        except OSError as exc:
            raise ReaderFault(f"cannot start the libfprint helper: {exc}") from None
        out: list[bytes] = []
        reader = threading.Thread(target=lambda: out.append(proc.stdout.read()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        deadline = time.monotonic() + timeout_s + START_MARGIN_S
        while reader.is_alive():
            if cancel is not None and cancel.is_set():
                proc.kill()
                proc.wait()
                raise NoFinger("cancelled")
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                raise ReaderFault("the libfprint helper did not answer")
            reader.join(0.05)
        proc.wait()
        return self._parse(out[0] if out else b"", proc.returncode, proc.stderr)

    def _parse(self, raw: bytes, status: int | None, stderr: object) -> Capture:
        line, _, pixels = raw.partition(b"\n")
        try:
            head = json.loads(line)
        except ValueError:
            err = stderr.read().decode(errors="replace")[-300:] if hasattr(stderr, "read") else ""
            raise ReaderFault(
                f"libfprint helper ended with status {status}: {err.strip()}"
            ) from None
        if not isinstance(head, dict):
            raise ReaderFault(f"libfprint helper sent {type(head).__name__}, not a header")
        if "error" in head:
            detail = str(head.get("detail", ""))
            if head["error"] == "no_finger":
                raise NoFinger(detail)
            raise ReaderFault(detail or "libfprint helper error")
        w, h, ppmm = head.get("width"), head.get("height"), head.get("ppmm") or 0.0
        if not (isinstance(w, int) and isinstance(h, int) and isinstance(ppmm, int | float)):
            raise ReaderFault(f"libfprint helper header {line[:120]!r}")
        if not (0 < w <= MAX_SIDE and 0 < h <= MAX_SIDE) or len(pixels) != w * h:
            raise ReaderFault(f"libfprint gave {len(pixels)} bytes for {w}x{h} pixels")
        if not 0 <= ppmm <= 200:  # 5,000 ppi; no sensor comes near
            raise ReaderFault(f"libfprint states {ppmm} pixels per mm")
        ppi = ppmm * 25.4 if ppmm > 0 else self.cfg.resolution_ppi
        return Capture(pixels, w, h, ppi, f"libfprint {head.get('driver', '')}")

    def close(self) -> None:
        pass
