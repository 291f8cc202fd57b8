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

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from gate.mrz.certainty import MIN_MARGIN
from gate.yamlfile import ConfigError, parse_mapping
from gate.yamlfile import read_text as read_text

__all__ = ["ConfigError", "GateConfig", "load_config", "parse_config", "read_text"]


def rebase(value: Any, base: Path) -> Any:
    """``value`` with every relative ``Path`` in it made relative to ``base``."""
    if isinstance(value, Path):
        return value if value.is_absolute() else base / value
    if isinstance(value, list | tuple):
        return type(value)(rebase(v, base) for v in value)
    return value


class Strict(BaseModel):
    """Unknown keys are errors; a relative path written in a file is relative to that
    file's folder (``context={"base": folder}``), so a config works from any working
    directory. Defaults are not rebased: they name files shipped with the code."""

    # allow_inf_nan: YAML's .inf / .nan are floats, and "forever" or "never" where a
    # period or a limit is meant silently disables it (photos never deleted, a state
    # that never times out)
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _relative_to_file(cls, value: Any, info: ValidationInfo) -> Any:
        base = (info.context or {}).get("base")
        return value if base is None else rebase(value, base)


# --- identity and timing -----------------------------------------------------------


class GateIdentity(Strict):
    site: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="site id in topics")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$", description="gate id in topics")
    direction: Literal["arrival", "departure"] = "arrival"


class Timeouts(Strict):
    """Seconds each state may last before its timeout rule fires (DESIGN.md). Bounded: a
    step of one traveller that may last for hours holds the lane as long as a fault."""

    idle: float = Field(30.0, gt=0, le=3600, description="status heartbeat period while idle")
    doc_check: float = Field(15.0, gt=0, le=600)
    entry_open: float = Field(20.0, gt=0, le=600)
    in_mantrap: float = Field(15.0, gt=0, le=600)
    exit_open: float = Field(20.0, gt=0, le=600)
    referred: float = Field(300.0, gt=0, le=3600, description="unattended referral escalates")
    alarm: float = Field(60.0, gt=0, le=3600, description="alarm re-announced at this period")
    out_of_service: float = Field(60.0, gt=0, le=3600, description="status re-announced")
    emergency: float = Field(30.0, gt=0, le=3600, description="release re-asserted")
    thumb: float = Field(
        10.0,
        gt=0,
        le=120,
        description="the thumb step in the mantrap: a finger on the reader and its match"
        " (the mantrap's own timeout waits meanwhile)",
    )


# --- devices: each a union discriminated on `type` ---------------------------------


class SimScannerConfig(Strict):
    type: Literal["sim"] = "sim"


class OcrScannerConfig(Strict):
    """The OCR document reader (``drivers/scanner.py``): reads the data-page image its
    camera writes to ``image_path`` (in the simulator, ``sim/page.py`` writes it)."""

    type: Literal["ocr"] = "ocr"
    image_path: Path = Field(description="page image file the reader's camera writes")
    poll_s: float = Field(0.2, gt=0, le=5, description="how often to look for a new page")
    min_confidence: float = Field(
        0.55,
        ge=0,
        le=1,
        description="a read whose least sure character is below this"
        " also carries DOC_LOW_CONFIDENCE (names have no check digit)",
    )
    min_margin: float = Field(
        MIN_MARGIN,
        ge=0,
        le=1,
        description="a character of a field no check digit covers (names, codes, sex)"
        " read with less margin over its runner-up makes the field uncertain, and the"
        " policy refers unless the chip's DG1 confirms it (gate/mrz/certainty.py)",
    )


class SerialMrzScannerConfig(Strict):
    """A document reader that does its own OCR and sends the MRZ as text over a serial
    line (``drivers/serial_mrz.py``: CR/LF lines ended by a blank line or a pause, or
    STX ... ETX frames); in the simulator ``sim/serial_mrz.py`` plays it on a pty."""

    type: Literal["serial_mrz"]
    port: str = Field(description="serial device or pyserial URL, e.g. /dev/ttyUSB0")
    baudrate: int = Field(9600, gt=0, le=4_000_000)
    idle_s: float = Field(
        0.3, gt=0, le=10, description="a pause this long after a line ends the document"
    )
    reopen_s: float = Field(1.0, gt=0, le=60, description="wait before reopening a lost port")


class PageCameraScannerConfig(Strict):
    """A full-page reader that is a camera over the glass (``drivers/page_camera.py``):
    a V4L2 device, an RTSP/HTTP stream or a video file. A document is placed when the
    view departs from the empty glass and then holds still; removed when it is back."""

    type: Literal["page_camera"] = "page_camera"
    source: int | str = Field(description="device index or path, RTSP/HTTP URL, video file")
    width: int | None = Field(None, ge=16, le=8192, description="capture width asked of it")
    height: int | None = Field(None, ge=16, le=8192)
    timeout_s: float = Field(2.0, gt=0, le=60, description="open/read timeout per frame")
    poll_s: float = Field(0.1, gt=0, le=5, description="how often to look at the glass")
    change: float = Field(
        12.0, gt=0, le=255, description="mean grey difference from the empty glass: a page"
    )
    still: float = Field(
        4.0, gt=0, le=255, description="mean grey difference between frames: not moving"
    )
    settle_frames: int = Field(3, ge=1, le=100, description="still frames before a read")
    min_confidence: float = Field(0.55, ge=0, le=1, description="as for the ocr reader")


class SimChipConfig(Strict):
    type: Literal["sim"] = "sim"


class PcscChipConfig(Strict):
    """A contactless reader over PC/SC (pcscd); see docs/chip.md."""

    type: Literal["pcsc"]
    reader: str = Field("Virtual PCD 00 00", description="reader name, or a unique prefix of it")
    csca_dir: Path | None = Field(None, description="trusted CSCA certificates (DER/PEM, .ml)")
    master_list: Path | None = Field(None, description="an ICAO CSCA master list file")
    crl_dir: Path | None = Field(None, description="CRLs (*.crl, DER or PEM) of the CSCAs")
    eac_dir: Path | None = Field(
        None,
        description="EAC terminal authentication: a folder per issuing state (UTO/, D/...) "
        "with its CVCA, link, DV and IS certificates (*.cvcert) and terminal.pem; "
        "none: fingerprints are not read",
    )
    card_wait_s: float = Field(1.0, ge=0, le=30, description="wait for a card in the field")
    apdu_timeout_s: float = Field(3.0, gt=0, le=60, description="one APDU; lost tags hang")
    read_timeout_s: float = Field(10.0, gt=0, le=120, description="the whole read")
    pace: Literal["prefer", "never"] = Field("prefer", description="PACE if offered, else BAC")
    extended_length: Literal["auto", "on", "off"] = Field("auto", description="auto: ATR")
    max_extended_read: int = Field(0xFF00, ge=256, le=0xFF00)


class SimCameraConfig(Strict):
    type: Literal["sim"] = "sim"


class SimFaceConfig(Strict):
    type: Literal["sim"] = "sim"
    threshold: float = Field(0.5, ge=0, le=1)


class SimThumbConfig(Strict):
    """The in-process thumb reader of ``sim/devices.py`` (scripted scores)."""

    type: Literal["sim"] = "sim"
    threshold: float = Field(40.0, ge=0, description="match score the sim calls a match")


class NbisThumbConfig(BaseModel):
    """The thumb reader and NBIS matcher of ``drivers/finger`` (its ``FingerConfig``:
    ``reader``, ``descriptor``, ``finger``, ``fallback`` ...). The core imports nothing
    of drivers/, so those keys are checked when the config is loaded by the CLI
    (``autogate.thumb.finger_config``), with the same one-line errors."""

    model_config = ConfigDict(extra="allow", frozen=True, allow_inf_nan=False)

    type: Literal["nbis"] = "nbis"
    scene: Path | None = Field(
        None,
        description="simulator only: the reader is sim/thumb_reader.py presenting what this"
        " file names (the rig writes it per traveller); absent: the reader the keys name",
    )
    _base: Path | None = PrivateAttr(None)  # the config file's folder, for relative paths

    @model_validator(mode="after")
    def _keep_base(self, info: ValidationInfo) -> NbisThumbConfig:
        self._base = (info.context or {}).get("base")
        return self

    @property
    def base(self) -> Path | None:
        return self._base


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


class ModbusBarrierConfig(Strict):
    """Gate controller over Modbus RTU on a serial line (drivers/barrier.py, docs/barrier.md)."""

    type: Literal["modbus_rtu"] = "modbus_rtu"
    port: str = Field(min_length=1, description="serial device, e.g. /dev/ttyUSB0")
    baudrate: int = Field(115200, gt=0, le=4_000_000)
    parity: Literal["N", "E", "O"] = Field("E", description="Modbus serial default: even")
    stopbits: Literal[1, 2] = 1
    slave_id: int = Field(1, ge=1, le=247, description="controller's Modbus address")
    model: str = Field(
        "generic-2door",
        pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$",
        description="register map: config/barrier-models/<model>.yaml",
    )
    model_file: Path | None = Field(None, description="register map file; overrides model")
    poll_s: float = Field(0.05, gt=0, le=5, description="input poll period")
    confirm_poll_s: float = Field(0.01, gt=0, le=1, description="poll period while confirming")
    confirm_timeout_s: float = Field(3.0, gt=0, le=60, description="door must reach position")
    heartbeat_s: float = Field(0.5, gt=0, le=60, description="heartbeat register write period")
    watchdog_s: float = Field(
        2.0, ge=0, le=6553, description="controller closes and locks after this heartbeat silence"
    )
    timeout_s: float = Field(0.2, gt=0, le=10, description="reply timeout per request")
    retries: int = Field(2, ge=0, le=10, description="retries per request before a fault")
    backoff_min_s: float = Field(0.1, gt=0, le=60, description="first reconnect delay")
    backoff_max_s: float = Field(5.0, gt=0, le=600, description="reconnect delay cap")

    @model_validator(mode="after")
    def _verify(self) -> ModbusBarrierConfig:
        if self.backoff_min_s > self.backoff_max_s:
            raise ValueError("backoff_min_s must not exceed backoff_max_s")
        if self.watchdog_s and self.watchdog_s <= self.heartbeat_s:
            raise ValueError("watchdog_s must exceed heartbeat_s (or be 0 to disable)")
        return self


class StdoutBusConfig(Strict):
    """Print every event as one JSON line (the foundation's bus, and for debugging)."""

    type: Literal["stdout"] = "stdout"


class MqttTLSConfig(Strict):
    """TLS to the broker; a client certificate is optional (the broker may require one)."""

    ca_file: Path = Field(description="CA bundle that signed the broker's certificate")
    cert_file: Path | None = Field(None, description="client certificate (PEM)")
    key_file: Path | None = Field(None, description="client private key (PEM)")

    @model_validator(mode="after")
    def _pair(self) -> MqttTLSConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        return self


class CommandKeyConfig(Strict):
    """An Ed25519 public key trusted to sign officer commands (the console's)."""

    id: str = Field(pattern=r"^[A-Za-z0-9._-]{1,64}$", description="key_id in commands")
    public_key: str | None = Field(None, description="base64 of the 32 raw bytes")
    public_key_file: Path | None = Field(None, description="PEM or base64 file")

    @model_validator(mode="after")
    def _one_source(self) -> CommandKeyConfig:
        if (self.public_key is None) == (self.public_key_file is None):
            raise ValueError("give exactly one of public_key and public_key_file")
        return self


class MqttBusConfig(Strict):
    """Events to an MQTT broker through the on-disk outbox; signed commands back (drivers/bus.py)."""

    type: Literal["mqtt"] = "mqtt"
    host: str = "localhost"
    port: int = Field(8883, ge=1, le=65535)
    client_id: str | None = Field(None, description="default autogate-{site}-{gate}")
    username: str | None = None
    password_file: Path | None = Field(None, description="file holding the broker password")
    tls: MqttTLSConfig | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)
    reconnect_max_s: float = Field(10.0, gt=0, le=600, description="cap of the reconnect backoff")
    outbox: Path | None = Field(None, description="default {storage.data_dir}/outbox.sqlite")
    outbox_max_rows: int = Field(100_000, ge=10)
    outbox_sync: Literal["full", "normal"] = Field(
        "full", description="full: fsync per event (power-loss safe); normal: crash safe"
    )
    inflight: int = Field(100, ge=1, le=65000, description="publishes awaiting PUBACK at once")
    command_keys: list[CommandKeyConfig] = Field(default_factory=list)
    clock_skew_s: float = Field(30.0, gt=0, le=600, description="accepted command ts window")
    heartbeat_s: float = Field(30.0, gt=0, le=3600, description="status heartbeat period (daemon)")
    document_key_file: Path | None = Field(
        None, description="secret for the keyed hash of document numbers on crossing events"
    )
    image_key: str | None = Field(
        None,
        description="the console's X25519 public key (base64 of 32 bytes, or PEM): referral "
        "photos are sealed to it end to end; without it no photo leaves the gate",
    )

    @model_validator(mode="after")
    def _keys_unique(self) -> MqttBusConfig:
        ids = [k.id for k in self.command_keys]
        if len(ids) != len(set(ids)):
            raise ValueError("command_keys: duplicate id")
        if self.password_file is not None and self.username is None:
            raise ValueError("password_file needs a username")
        if self.image_key is not None:
            from gate.referral_image import load_public_key

            load_public_key(self.image_key)  # ValueError names the field
        return self


class SimListsConfig(Strict):
    type: Literal["sim"] = "sim"
    stolen_documents: list[str] = Field(default_factory=list)


class LocalListsConfig(Strict):
    """A hashed list file built by ``autogate lists build`` (drivers/watchlist.py)."""

    type: Literal["local"] = "local"
    name: str = Field("local", min_length=1, description="adapter name in reasons and logs")
    path: Path = Field(description="hashed list JSON; re-read when its mtime changes")
    service: Literal["watchlist", "passes"] = Field(
        "watchlist", description="stolen/lost/person checks, or pass registry lookups"
    )
    required: bool = Field(
        True,
        description="watchlists: a failed check refers every traveller (a pass registry"
        " outage always refers just the travellers who need a pass)",
    )


class HttpListsConfig(Strict):
    """A national watchlist or pass registry service over HTTP(S)."""

    type: Literal["http"] = "http"
    name: str = Field("national", min_length=1)
    url: str = Field(pattern=r"^https?://[^\s]+$", description="service base URL")
    service: Literal["watchlist", "passes", "entries"] = Field(
        "watchlist", description="entries: the central record's last entry (overstay)"
    )
    required: bool = Field(True, description="as for type local")
    timeout_s: float = Field(1.5, gt=0, le=30, description="per request, connect + read")
    failure_threshold: int = Field(3, ge=1, description="failures in a row that open the breaker")
    reset_after_s: float = Field(
        30.0, gt=0, le=3600, description="open breaker tries again after this"
    )
    ca_file: Path | None = Field(None, description="CA bundle for the service's TLS certificate")
    cert_file: Path | None = Field(
        None, description="the gate's client certificate (PEM): the service knows who asks"
    )
    key_file: Path | None = Field(None, description="its private key (PEM)")

    @model_validator(mode="after")
    def _safe_transport(self) -> HttpListsConfig:
        """Every request names a traveller: plain HTTP only to this very machine."""
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file go together")
        if self.url.startswith("http://") and not _loopback_url(self.url):
            raise ValueError(
                "url: plain http:// carries travellers' names in clear; use https:// "
                "(http:// only to 127.0.0.1, ::1 or localhost)"
            )
        return self


def _loopback_url(url: str) -> bool:
    import ipaddress
    from urllib.parse import urlsplit

    try:
        host = urlsplit(url).hostname or ""
    except ValueError:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


AdapterConfig = Annotated[LocalListsConfig | HttpListsConfig, Field(discriminator="type")]


class CompositeListsConfig(Strict):
    """Several adapters asked concurrently; their answers merge into one ListsResult."""

    type: Literal["composite"] = "composite"
    adapters: list[AdapterConfig] = Field(min_length=1)
    timeout_s: float = Field(
        3.0, gt=0, le=60, description="whole check; late adapters count as unavailable"
    )

    @model_validator(mode="after")
    def _verify(self) -> CompositeListsConfig:
        names = [a.name for a in self.adapters]
        if len(set(names)) != len(names):
            raise ValueError(f"adapters: each needs its own name, got {names}")
        return self


ScannerConfig = Annotated[
    SimScannerConfig | OcrScannerConfig | PageCameraScannerConfig | SerialMrzScannerConfig,
    Field(discriminator="type"),
]
ChipConfig = Annotated[SimChipConfig | PcscChipConfig, Field(discriminator="type")]
CameraConfig = Annotated[SimCameraConfig | OpenCVCameraConfig, Field(discriminator="type")]
FaceConfig = Annotated[SimFaceConfig | DlibFaceConfig, Field(discriminator="type")]
BarrierConfig = Annotated[SimBarrierConfig | ModbusBarrierConfig, Field(discriminator="type")]
BusConfig = Annotated[StdoutBusConfig | MqttBusConfig, Field(discriminator="type")]
ThumbConfig = Annotated[SimThumbConfig | NbisThumbConfig, Field(discriminator="type")]
ListsConfig = Annotated[
    SimListsConfig | LocalListsConfig | HttpListsConfig | CompositeListsConfig,
    Field(discriminator="type"),
]


class Devices(Strict):
    scanner: ScannerConfig = Field(default_factory=SimScannerConfig)
    chip: ChipConfig = Field(default_factory=SimChipConfig)
    camera: CameraConfig = Field(default_factory=SimCameraConfig)
    face: FaceConfig = Field(default_factory=SimFaceConfig)
    barrier: BarrierConfig = Field(default_factory=SimBarrierConfig)
    bus: BusConfig = Field(default_factory=StdoutBusConfig)
    lists: ListsConfig = Field(default_factory=SimListsConfig)
    thumb: ThumbConfig | None = Field(
        None,
        description="the thumb reader and matcher (issue 19); absent: no thumb channel, the"
        " face decides for every category",
    )


# --- the decision: rules live in a policy file (gate/policy_config.py) ---------------


class PolicyConfig(Strict):
    """Where the site's decision rules are; ``gate.policy_config.policy_for`` loads them.

    ``file`` is a policy YAML (a relative path is relative to the gate config's folder);
    without it the built-in default policy of ``gate.policy_config.Policy`` applies.
    """

    file: Path | None = Field(None, description="policy YAML (config/policy.example.yaml)")


class Storage(Strict):
    data_dir: Path = Field(Path("var"), description="outbox, journal and referral vault")
    journal: Path = Field(Path("var/journal.jsonl"))


# --- operations: metrics, audit checkpoints, privacy (optional, safe defaults) --------


def _loopback(host: str) -> str:
    import ipaddress

    if host == "localhost":
        return host
    try:
        ok = ipaddress.ip_address(host).is_loopback
    except ValueError:
        ok = False
    if not ok:
        raise ValueError(f"metrics must listen on loopback only, not {host!r}")
    return host


class MetricsConfig(Strict):
    """Prometheus endpoint; scraped locally (node agent) so it listens on loopback only."""

    enabled: bool = False
    host: str = Field("127.0.0.1", description="loopback address to listen on")
    port: int = Field(9464, ge=1, le=65535)

    @model_validator(mode="after")
    def _host(self) -> MetricsConfig:
        _loopback(self.host)
        return self


class AuditConfig(Strict):
    """Signed checkpoints of the journal head and journal rotation."""

    signing_key: str | None = Field(
        None,
        description="Ed25519 private key (PEM): a systemd credential name or a file path; "
        "unset disables checkpoints",
    )
    checkpoints: Path = Field(Path("var/checkpoints.jsonl"), description="local copy")
    checkpoint_interval_s: float = Field(300.0, gt=0, le=86400)
    rotate_bytes: int | None = Field(
        None, ge=4096, description="start a new journal file past this size (chain kept)"
    )


class PrivacyConfig(Strict):
    """Referral biometrics at rest: encrypted, deleted after resolution + retention."""

    referral_key: str | None = Field(
        None,
        description="32-byte AES-256-GCM key (raw, hex or base64): a systemd credential "
        "name or a file path; unset keeps referral biometrics in memory only",
    )
    retention_s: float = Field(
        0.0,
        ge=0,
        description="kept this long after the officer resolved the referral; 0 (the "
        "default): deleted at resolution, as a data-protection officer expects",
    )
    max_hold_s: float = Field(
        7 * 86400.0, gt=0, description="deleted after this long even if never resolved"
    )


class OpsConfig(Strict):
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    audit: AuditConfig = Field(default_factory=AuditConfig)
    privacy: PrivacyConfig = Field(default_factory=PrivacyConfig)
    watchdog_stale_s: float = Field(
        5.0, gt=0, description="core loop silent this long: stop the systemd watchdog pings"
    )


class GateConfig(Strict):
    gate: GateIdentity
    timeouts: Timeouts = Field(default_factory=Timeouts)
    devices: Devices = Field(default_factory=Devices)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    storage: Storage = Field(default_factory=Storage)
    face_burst: int = Field(5, ge=1, le=60, description="frames per capture burst")
    tick_s: float = Field(0.1, gt=0, le=5, description="period of timer ticks into the core")
    ops: OpsConfig = Field(default_factory=OpsConfig)

    @model_validator(mode="after")
    def _verify(self) -> GateConfig:
        verify_timeouts(self)
        return self


def verify_timeouts(cfg: GateConfig) -> None:
    """Ticks must be finer than the shortest timeout, or timeouts fire late."""
    shortest = min(cfg.timeouts.model_dump().values())
    if cfg.tick_s >= shortest:
        raise ValueError(f"tick_s ({cfg.tick_s}) must be shorter than every timeout ({shortest})")


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


def load_yaml_mapping(text: str, path: str | Path) -> dict[str, Any]:
    """Parse YAML whose top level must be a mapping (the shared safe loader)."""
    return parse_mapping(text, path)


def validation_error(path: str | Path, exc: ValidationError) -> ConfigError:
    """The first error of ``exc`` as one line: file, field path, message (+N more)."""
    err = exc.errors()[0]
    more = f" (+{exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    field = _field_path(tuple(err["loc"]))
    prefix = "" if field == "(root)" else f"{field}: "
    return ConfigError(f"{path}: {prefix}{msg}{more}")


def load_config(path: str | Path) -> GateConfig:
    """Load and validate a gate config; any problem becomes a one-line ``ConfigError``.

    Relative paths in the file are relative to the file's folder."""
    return parse_config(read_text(path), Path(path), base=Path(path).absolute().parent)


def parse_config(text: str, path: str | Path = "<config>", base: Path | None = None) -> GateConfig:
    """``base``: the folder relative paths are resolved against (None: left as written)."""
    data = load_yaml_mapping(text, path)
    try:
        return GateConfig.model_validate(data, context={"base": base} if base else None)
    except ValidationError as exc:
        raise validation_error(path, exc) from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply") from None
