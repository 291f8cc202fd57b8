"""The thumb channel's configuration: which reader (``type`` picks it, as for every
device), which matcher and threshold descriptor, which finger the gate asks for.

```yaml
finger:
  reader: {type: libfprint}            # or {type: sim, finger: 3, impression: 1}
  matcher: nbis_bozorth3
  descriptor: models/finger/nbis_bozorth3.json   # the calibrated threshold
  finger: right_thumb                  # the one the gate's screen asks for
  fallback: [left_thumb]               # compared when DG3 lacks the first
```
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field

from gate.config import Strict

# ISO/IEC 19794-4 finger positions (0 is "unknown")
POSITIONS: dict[str, int] = {
    "unknown": 0,
    "right_thumb": 1,
    "right_index": 2,
    "right_middle": 3,
    "right_ring": 4,
    "right_little": 5,
    "left_thumb": 6,
    "left_index": 7,
    "left_middle": 8,
    "left_ring": 9,
    "left_little": 10,
}
POSITION_NAMES = {v: k for k, v in POSITIONS.items()}
FingerName = Literal[
    "right_thumb", "right_index", "right_middle", "right_ring", "right_little",
    "left_thumb", "left_index", "left_middle", "left_ring", "left_little",
]  # fmt: skip


class LibfprintReaderConfig(Strict):
    """A reader libfprint drives (capture only), through Debian's GObject bindings."""

    type: Literal["libfprint"] = "libfprint"
    device: str | None = Field(None, description="libfprint driver id; None: the first device")
    python: Path = Field(
        Path("/usr/bin/python3"), description="interpreter with python3-gi (the helper's)"
    )
    resolution_ppi: float = Field(
        500.0, gt=0, description="assumed when the device states no resolution"
    )
    environment: dict[str, str] = Field(
        default_factory=dict, description="extra variables for libfprint (FP_VIRTUAL_IMAGE)"
    )


class SimReaderConfig(Strict):
    """The simulator's reader: a synthetic impression (``sim/thumb_reader.py``)."""

    type: Literal["sim"] = "sim"
    finger: int = Field(0, ge=0, description="synthetic finger presented")
    impression: int = Field(1, ge=0, description="its impression (0 is the chip's)")
    mode: Literal["finger", "none", "garbage", "truncated", "fault"] = "finger"


ReaderConfig = Annotated[LibfprintReaderConfig | SimReaderConfig, Field(discriminator="type")]


class FingerConfig(Strict):
    reader: ReaderConfig = Field(default_factory=SimReaderConfig)
    matcher: Literal["nbis_bozorth3"] = "nbis_bozorth3"
    descriptor: Path | None = Field(None, description="threshold descriptor; None: shipped")
    finger: FingerName = "right_thumb"
    fallback: tuple[FingerName, ...] = ("left_thumb",)
    min_ridge_area: float = Field(
        0.25, ge=0, le=1, description="share of the capture that must show ridges"
    )
