"""The gate's configuration: one strict pydantic tree loaded from YAML.

Unknown keys are errors (a typo must not silently fall back to a default at a border).
Each device section is a union discriminated on ``type`` (Frigate's pattern): ``sim``
picks the in-process simulated device, other values pick real drivers; every driver
adds its own config class here and to its union. Loading errors become one
``ConfigError`` line that names the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConfigError(Exception):
    """A config file that cannot be used; ``str()`` is one line naming file and field."""


# --- identity and timing -----------------------------------------------------------


class GateIdentity(Strict):
    site: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="site id in topics")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="gate id in topics")
    direction: Literal["arrival", "departure"] = "arrival"


class Timeouts(Strict):
    """Seconds each state may last before its timeout rule fires (DESIGN.md)."""

    idle: float = Field(30.0, gt=0, description="status heartbeat period while idle")
    doc_check: float = Field(15.0, gt=0)
    entry_open: float = Field(20.0, gt=0)
    in_mantrap: float = Field(15.0, gt=0)
    exit_open: float = Field(20.0, gt=0)
    referred: float = Field(300.0, gt=0, description="unattended referral escalates")
    alarm: float = Field(60.0, gt=0, description="alarm re-announced at this period")
    out_of_service: float = Field(60.0, gt=0, description="status re-announced")
    emergency: float = Field(30.0, gt=0, description="release re-asserted")


# --- devices: each a union discriminated on `type` ---------------------------------


class SimScannerConfig(Strict):
    type: Literal["sim"] = "sim"


class SimChipConfig(Strict):
    type: Literal["sim"] = "sim"


class SimCameraConfig(Strict):
    type: Literal["sim"] = "sim"


class SimFaceConfig(Strict):
    type: Literal["sim"] = "sim"
    threshold: float = Field(0.5, ge=0, le=1)


class OpenCVCameraConfig(Strict):
    """A camera read through OpenCV (``drivers/camera.py``)."""

    type: Literal["opencv"]
    source: int | str = Field(
        description="device index, RTSP/HTTP URL, video file, or folder of frame images"
    )
    width: int | None = Field(None, ge=16, le=8192)
    height: int | None = Field(None, ge=16, le=8192)
    fps: float | None = Field(None, gt=0, le=240)
    loop: bool = Field(True, description="a video file or folder starts again at its end")
    timeout_s: float = Field(2.0, gt=0, le=60, description="open/read timeout per frame")
    frozen_tolerance: float = Field(
        0.0, ge=0, le=10, description="mean grey difference at or below which frames are equal"
    )


class FaceQualityConfig(Strict):
    """Limits of the live-frame quality gate (``drivers/face/quality.py``)."""

    min_eye_distance: float = Field(30.0, gt=0, description="pixels between eye centres")
    max_yaw: float = Field(25.0, gt=0, le=90, description="degrees")
    max_pitch: float = Field(25.0, gt=0, le=90, description="degrees")
    max_roll: float = Field(20.0, gt=0, le=90, description="degrees")
    min_sharpness: float = Field(10.0, ge=0, description="Laplacian variance, 64 px eyes")
    min_brightness: float = Field(40.0, ge=0, le=255)
    max_brightness: float = Field(215.0, ge=0, le=255)
    max_clipped: float = Field(0.25, ge=0, le=1)
    min_eye_open: float = Field(0.12, ge=0, le=1, description="eye aspect ratio")
    multi_face_ratio: float = Field(0.5, gt=0, le=1)


class FacePadConfig(Strict):
    """Presentation-attack detection (``drivers/face/pad.py``)."""

    enabled: bool = True
    model: Path = Field(Path("models/face/pad_texture.json"), description="PAD model + threshold")


class DlibFaceConfig(Strict):
    """The real face verifier (``drivers/face/verifier.py``)."""

    type: Literal["dlib"]
    descriptor: Path = Field(
        Path("models/face/dlib_resnet_v1.json"), description="matcher model descriptor"
    )
    onnx_model: Path | None = Field(None, description="ArcFace ONNX file for an onnx descriptor")
    quality: FaceQualityConfig = Field(default_factory=FaceQualityConfig)
    pad: FacePadConfig = Field(default_factory=FacePadConfig)
    max_side: int = Field(640, ge=160, le=4096, description="detection image size")
    max_pixels: int = Field(50_000_000, gt=0, description="larger portraits are refused")


class SimBarrierConfig(Strict):
    type: Literal["sim"] = "sim"
    door_travel_s: float = Field(0.05, ge=0, description="simulated door travel time")


class StdoutBusConfig(Strict):
    """Print every event as one JSON line (the foundation's bus, and for debugging)."""

    type: Literal["stdout"] = "stdout"


class SimListsConfig(Strict):
    type: Literal["sim"] = "sim"
    stolen_documents: list[str] = Field(default_factory=list)


ScannerConfig = Annotated[SimScannerConfig, Field(discriminator="type")]
ChipConfig = Annotated[SimChipConfig, Field(discriminator="type")]
CameraConfig = Annotated[SimCameraConfig | OpenCVCameraConfig, Field(discriminator="type")]
FaceConfig = Annotated[SimFaceConfig | DlibFaceConfig, Field(discriminator="type")]
BarrierConfig = Annotated[SimBarrierConfig, Field(discriminator="type")]
BusConfig = Annotated[StdoutBusConfig, Field(discriminator="type")]
ListsConfig = Annotated[SimListsConfig, Field(discriminator="type")]


class Devices(Strict):
    scanner: ScannerConfig = Field(default_factory=SimScannerConfig)
    chip: ChipConfig = Field(default_factory=SimChipConfig)
    camera: CameraConfig = Field(default_factory=SimCameraConfig)
    face: FaceConfig = Field(default_factory=SimFaceConfig)
    barrier: BarrierConfig = Field(default_factory=SimBarrierConfig)
    bus: BusConfig = Field(default_factory=StdoutBusConfig)
    lists: ListsConfig = Field(default_factory=SimListsConfig)


# --- the decision (a minimal policy; the policy issue extends it) -------------------


class PolicyConfig(Strict):
    issuing_state: str = Field("MYS", pattern=r"^[A-Z<]{3}$")
    eligible_nationalities: list[str] = Field(default_factory=list)
    document_codes: list[str] = Field(default_factory=lambda: ["P", "PP", "PS", "PD", "PO"])
    min_age: int = Field(12, ge=0, le=150)
    min_validity_days: int = Field(1, ge=0)
    chip_required: bool = True


class Storage(Strict):
    data_dir: Path = Field(Path("var"), description="outbox, journal and referral vault")
    journal: Path = Field(Path("var/journal.jsonl"))


class GateConfig(Strict):
    gate: GateIdentity
    timeouts: Timeouts = Field(default_factory=Timeouts)
    devices: Devices = Field(default_factory=Devices)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    storage: Storage = Field(default_factory=Storage)
    face_burst: int = Field(5, ge=1, le=60, description="frames per capture burst")
    tick_s: float = Field(0.1, gt=0, le=5, description="period of timer ticks into the core")

    @model_validator(mode="after")
    def _verify(self) -> GateConfig:
        verify_policy_codes(self.policy)
        return self


def verify_policy_codes(policy: PolicyConfig) -> None:
    for code in policy.eligible_nationalities:
        if len(code) != 3 or not code.replace("<", "").isalpha() or not code.isupper():
            raise ValueError(f"eligible_nationalities: {code!r} is not a 3-letter code")


def _union_tags() -> set[str]:
    """The ``type`` values of device configs: pydantic puts them in error locations."""
    tags: set[str] = set()
    todo: list[type[BaseModel]] = [Strict]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if "type" in cls.model_fields and isinstance(cls.model_fields["type"].default, str):
            tags.add(cls.model_fields["type"].default)
    return tags


def _field_path(loc: tuple[Any, ...]) -> str:
    tags = _union_tags()
    return ".".join(str(p) for p in loc if not (isinstance(p, str) and p in tags)) or "(root)"


def load_config(path: str | Path) -> GateConfig:
    """Load and validate a gate config; any problem becomes a one-line ``ConfigError``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_config(text, path)


def parse_config(text: str, path: str | Path = "<config>") -> GateConfig:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: invalid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(data).__name__}")
    try:
        return GateConfig.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        raise ConfigError(f"{path}: {_field_path(tuple(err['loc']))}: {msg}{more}") from None
