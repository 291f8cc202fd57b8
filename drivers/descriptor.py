"""A matcher's descriptor: the JSON beside a model naming its backend and the threshold
calibrated for it. Faces and thumbs share the shape, so one calibration tool
(``drivers/face/calibrate.py``) reads and writes both."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

from drivers.errors import DeviceError


@dataclass
class ModelDescriptor:
    """Loaded and checked at start; a broken one is the device's fault with its path."""

    DEVICE: ClassVar[str] = "model"  # the device a broken descriptor is a fault of
    REQUIRED: ClassVar[tuple[str, ...]] = ("backend", "threshold")
    # (low, high]: where a calibrated threshold of this matcher's score can lie. A value
    # outside (a negative face threshold matches everyone, NaN matches no one) is a
    # damaged or hand-edited file, refused at start rather than applied.
    THRESHOLDS: ClassVar[tuple[float, float]] = (-math.inf, math.inf)

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
        threshold = data["threshold"]
        if threshold is not None:  # None: not calibrated yet (the calibration tool's input)
            lo, hi = cls.THRESHOLDS
            if not is_number(threshold) or not lo < threshold <= hi:
                raise DeviceError(
                    cls.DEVICE,
                    f"model descriptor {path}: threshold {threshold!r} is not a number "
                    f"in ({lo:g}, {hi:g}]",
                )
        cls.check(path, data)
        return cls(path, data)

    @classmethod
    def check(cls, path: Path, data: dict[str, Any]) -> None:
        """What a subclass demands beyond the required keys (raise ``DeviceError``)."""

    @classmethod
    def check_optional(
        cls, path: Path, data: dict[str, Any], key: str, kind: type, low: float = 0.0
    ) -> None:
        """``data[key]``, when present, is a finite ``kind`` (int or float) >= ``low``."""
        if key not in data:
            return
        value = data[key]
        ok = is_number(value) and value >= low and (kind is float or isinstance(value, int))
        if not ok:
            want = "a whole number" if kind is int else "a number"
            raise DeviceError(
                cls.DEVICE, f"model descriptor {path}: {key} {value!r} is not {want} >= {low:g}"
            )

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


def is_number(value: object) -> bool:
    """A finite JSON number (``true`` is no threshold, NaN and Infinity are damage)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
