"""Build the devices and the core's settings from a gate config (the composition root).

Each device section's ``type`` picks an implementation: ``sim`` types are the in-process
simulated devices sharing one ``SimHall``; any other type names a real driver module,
imported only when chosen (OpenCV, dlib and pyscard are heavy and a gate loads only what
it uses). The core never changes when a device does.
"""

from __future__ import annotations

import datetime as dt
import functools
import importlib
from typing import Any

from autogate.daemon import Devices
from autogate.thumb import finger_config
from drivers.stdout_bus import StdoutBus
from gate import machine, policy
from gate.config import GateConfig, SimThumbConfig
from gate.policy_config import Policy, policy_for
from gate.results import ChipResult, DocumentResult, FaceResult, ListsResult, ThumbResult
from sim.devices import (
    SceneThumbReader,
    SimBarrier,
    SimCamera,
    SimChip,
    SimFace,
    SimHall,
    SimLists,
    SimScanner,
    SimThumb,
)

# (device section, config type) -> driver module with ``build(cfg, gate_cfg)``
DRIVERS: dict[tuple[str, str], str] = {
    ("scanner", "ocr"): "drivers.scanner",
    ("scanner", "page_camera"): "drivers.page_camera",
    ("scanner", "serial_mrz"): "drivers.serial_mrz",
    ("chip", "pcsc"): "drivers.chip",
    ("camera", "opencv"): "drivers.camera",
    ("face", "dlib"): "drivers.face.verifier",
    ("barrier", "modbus_rtu"): "drivers.barrier",
    ("bus", "mqtt"): "drivers.bus",
    ("lists", "local"): "drivers.watchlist",
    ("lists", "http"): "drivers.watchlist",
    ("lists", "composite"): "drivers.watchlist",
}


def settings_from(cfg: GateConfig, site_policy: Policy | None = None) -> machine.Settings:
    """Core settings: timeouts per state and the site's decision (``gate/policy.py``)."""
    site_policy = site_policy or policy_for(cfg)
    t = cfg.timeouts
    S = machine.State
    timeouts = {
        S.IDLE: t.idle,
        S.DOC_CHECK: t.doc_check,
        S.ENTRY_OPEN: t.entry_open,
        S.IN_MANTRAP: t.in_mantrap,
        S.EXIT_OPEN: t.exit_open,
        S.REFERRED: t.referred,
        S.ALARM: t.alarm,
        S.OUT_OF_SERVICE: t.out_of_service,
        S.EMERGENCY: t.emergency,
    }
    thumb_reader = cfg.devices.thumb is not None
    return machine.Settings(
        timeouts=timeouts,
        decide_document=functools.partial(_decide_document, site_policy),
        decide_face=functools.partial(_decide_face, site_policy),
        plan_biometrics=functools.partial(_plan, site_policy, thumb_reader),
        decide_thumb=functools.partial(_decide_thumb, site_policy),
        thumb_timeout_s=t.thumb,
    )


def _plan(
    site_policy: Policy, thumb_reader: bool, category: str, chip: ChipResult | None
) -> policy.Plan:
    return policy.biometric_plan(category, chip, site_policy, thumb_reader)


def _decide_thumb(site_policy: Policy, thumb: ThumbResult) -> policy.Decision:
    return policy.decide_thumb(thumb, site_policy)


def _decide_document(
    site_policy: Policy,
    doc: DocumentResult,
    chip: ChipResult | None,
    lists: ListsResult | None,
    today: dt.date,
) -> policy.Decision:
    return policy.decide_document(doc.mrz, doc, chip, lists, site_policy, today)


def _decide_face(site_policy: Policy, face: FaceResult) -> policy.Decision:
    return policy.decide_face(face, site_policy)


def _real(section: str, dev_cfg: Any, cfg: GateConfig) -> Any:
    module = importlib.import_module(DRIVERS[(section, dev_cfg.type)])
    return module.build(dev_cfg, cfg)


def build_devices(cfg: GateConfig, hall: SimHall | None = None) -> tuple[Devices, SimHall]:
    """Devices for ``cfg``; a ``SimHall`` is always returned (idle if nothing is simulated)."""
    d = cfg.devices
    hall = hall or SimHall(door_travel_s=getattr(d.barrier, "door_travel_s", 0.05))
    sim: dict[str, Any] = {
        "scanner": lambda: SimScanner(hall),
        "chip": lambda: SimChip(hall),
        "camera": lambda: SimCamera(hall),
        "face": lambda: SimFace(hall, getattr(d.face, "threshold", 0.5)),
        "barrier": lambda: SimBarrier(hall),
        "bus": StdoutBus,
        "lists": lambda: SimLists(hall, getattr(d.lists, "stolen_documents", ())),
    }
    built: dict[str, Any] = {}
    for section in ("scanner", "chip", "camera", "face", "barrier", "bus", "lists"):
        dev_cfg = getattr(d, section)
        if dev_cfg.type in ("sim", "stdout"):
            built[section] = sim[section]()
        else:
            built[section] = _real(section, dev_cfg, cfg)
    thumb = d.thumb
    if isinstance(thumb, SimThumbConfig):
        built["thumb"] = SimThumb(hall, thumb.threshold)
    elif thumb is not None:  # NBIS: the reader and matcher of drivers/finger
        from drivers.finger.verifier import build_verifier

        reader = SceneThumbReader(thumb.scene) if thumb.scene is not None else None
        built["thumb"] = build_verifier(finger_config(cfg), reader=reader)
    return Devices(**built), hall
