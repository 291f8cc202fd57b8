"""Capture one image with libfprint, in its own process (run by ``libfprint.py``).

Run by the interpreter that has Debian's GObject bindings (``python3-gi`` with
``gir1.2-fprint-2.0``), which need not be the daemon's virtual environment; so this
file imports only the standard library and ``gi``. It also keeps libfprint's GLib
main context and its USB handling out of the daemon, and a crash in them out too.

    python3 fprint_helper.py --timeout S [--device DRIVER]

Writes one JSON line, then on success the 8-bit pixels: ``{"width", "height", "ppmm",
"driver", "name"}`` + width*height bytes, or ``{"error": "no_finger"|"fault",
"detail"}``. Exit status 0 in both cases; anything else is a crash.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import threading


def _emit(header: dict[str, object], data: bytes = b"") -> int:
    sys.stdout.buffer.write(json.dumps(header).encode() + b"\n" + data)
    sys.stdout.buffer.flush()
    return 0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--timeout", type=float, required=True)
    p.add_argument("--device", default=None)
    a = p.parse_args()
    try:
        import gi

        gi.require_version("FPrint", "2.0")
        from gi.repository import FPrint, Gio, GLib
    except (ImportError, ValueError) as exc:
        return _emit({"error": "fault", "detail": f"libfprint bindings missing: {exc}"})
    ctx = FPrint.Context()
    ctx.enumerate()
    devices = [d for d in ctx.get_devices() if a.device in (None, d.get_driver())]
    if not devices:
        return _emit(
            {"error": "fault", "detail": f"no fingerprint reader {a.device or ''}".strip()}
        )
    dev = devices[0]
    if not dev.has_feature(FPrint.DeviceFeature.CAPTURE):
        return _emit({"error": "fault", "detail": f"{dev.get_driver()} cannot capture images"})
    cancel = Gio.Cancellable()
    timer = threading.Timer(a.timeout, cancel.cancel)
    try:
        dev.open_sync(None)
    except GLib.Error as exc:
        return _emit({"error": "fault", "detail": f"cannot open {dev.get_driver()}: {exc.message}"})
    try:
        timer.start()
        img = dev.capture_sync(True, cancel)
    except GLib.Error as exc:
        if cancel.is_cancelled():
            return _emit({"error": "no_finger", "detail": f"no finger in {a.timeout:g} s"})
        return _emit({"error": "fault", "detail": f"capture failed: {exc.message}"})
    finally:
        timer.cancel()
        with contextlib.suppress(GLib.Error):
            dev.close_sync(None)
    data = bytes(img.get_data())
    header = {
        "width": img.get_width(),
        "height": img.get_height(),
        "ppmm": img.get_ppmm(),
        "driver": dev.get_driver(),
        "name": dev.get_name(),
    }
    return _emit(header, data)


if __name__ == "__main__":
    raise SystemExit(main())
