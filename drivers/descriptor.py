"""A matcher's descriptor: the JSON beside a model naming its backend and the threshold
calibrated for it. Faces and thumbs share the shape, so one calibration tool
(``drivers/face/calibrate.py``) reads and writes both."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from drivers.errors import DeviceError


@dataclass
class ModelDescriptor:
    """Loaded and checked at start; a broken one is the device's fault with its path."""

    DEVICE: ClassVar[str] = "model"  # the device a broken descriptor is a fault of
    REQUIRED: ClassVar[tuple[str, ...]] = ("backend", "threshold")

    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def backend(self) -> str:
        return str(self.data["backend"])

    @property
    def threshold(self) -> float:
        return float(self.data["threshold"])

    @classmethod
    def load(cls, path: str | Path) -> Self:
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DeviceError(cls.DEVICE, f"model descriptor {path}: {exc}") from None
        if not isinstance(data, dict):
            raise DeviceError(cls.DEVICE, f"model descriptor {path}: not a JSON object")
        for key in cls.REQUIRED:
            if key not in data:
                raise DeviceError(cls.DEVICE, f"model descriptor {path}: no {key!r}")
        cls.check(path, data)
        return cls(path, data)

    @classmethod
    def check(cls, path: Path, data: dict[str, Any]) -> None:
        """What a subclass demands beyond the required keys (raise ``DeviceError``)."""

    def save(self) -> None:
        self.path.write_text(json.dumps(self.data, indent=2) + "\n", encoding="utf-8")

    def save_calibrated(self, out: Path, src: Path, replace: bool) -> Path:
        """Write a calibration: a new descriptor at ``out`` (derived from ``src``) unless
        told to replace the one it was read from; where it went."""
        if not replace:
            self.data["derived_from"] = str(src)
            self.path = out
        self.save()
        return self.path
