"""A converted model kept on disk between starts, trusted only when its hash is pinned.

Why: turning dlib's ``.dat`` into an ONNX graph (``drivers/face/dlib_onnx.py``) costs the
daemon's start about 0.7 s, most of it ``import onnx``; the graph is the same every time.
So the bytes are written once under the gate's state folder (``storage.data_dir``, the
one folder a read-only install may write) and read back on the next start.

The file is named after the SHA-256 of the source model it was converted from, and it is
used only when its own SHA-256 equals the one pinned in the model descriptor (a shipped,
read-only file): a damaged, truncated or tampered cache file is logged, rebuilt from the
checked source and replaced, never loaded. A conversion that does not reproduce the pin
(another ``onnx`` version serialising differently) is used for this run, logged, and not
cached. No folder, or one that cannot be written: the conversion runs in memory as before.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger("autogate.face")


def cache_path(folder: Path, stem: str, source_sha256: str) -> Path:
    """Where the conversion of a source with this hash lives."""
    return folder / f"{stem}-{source_sha256[:16]}.onnx"


def _write_atomic(path: Path, data: bytes) -> None:
    """Write whole or not at all: a crash mid-write leaves no half file under the name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_or_build(
    path: Path | None,
    pinned_sha256: str | None,
    build: Callable[[], bytes],
) -> bytes:
    """The cached bytes at ``path`` when they hash to ``pinned_sha256``, else ``build()``'s
    (cached when they hash to the pin). ``path=None`` or no pin: ``build()``, no cache."""
    if path is None or not pinned_sha256:
        return build()
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = None
    except OSError as exc:
        log.warning("face model cache %s unreadable (%s): converting again", path, exc)
        data = None
    if data is not None:
        if hashlib.sha256(data).hexdigest() == pinned_sha256:
            return data
        log.warning(
            "face model cache %s does not match the descriptor's onnx_sha256 (damaged or "
            "altered): not used, converting again",
            path,
        )
    data = build()
    got = hashlib.sha256(data).hexdigest()
    if got != pinned_sha256:
        log.warning(
            "converted face model hashes to %s, the descriptor pins %s (another onnx "
            "version?): used for this run, not cached",
            got[:16],
            pinned_sha256[:16],
        )
        return data
    try:
        _write_atomic(path, data)
    except OSError as exc:
        log.info("face model cache not written (%s): the next start converts again", exc)
    return data
