"""Build the devices and the core's settings from a gate config (the composition root).

Each device section's ``type`` picks an implementation; ``sim`` types share one
``SimHall``. Real drivers register here as they land; the core never changes.
"""

from __future__ import annotations

import functools

from autogate.daemon import Devices
from drivers.stdout_bus import StdoutBus
from gate import machine, policy_basic
from gate.config import GateConfig
from sim.devices import SimBarrier, SimCamera, SimChip, SimFace, SimHall, SimLists, SimScanner


def settings_from(cfg: GateConfig) -> machine.Settings:
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
    return machine.Settings(
        timeouts=timeouts,
        decide_document=functools.partial(policy_basic.decide_document, cfg.policy),
        decide_face=policy_basic.decide_face,
    )


def build_devices(cfg: GateConfig, hall: SimHall | None = None) -> tuple[Devices, SimHall]:
    """Devices for ``cfg``; a ``SimHall`` is always returned (empty if nothing is simulated)."""
    d = cfg.devices
    hall = hall or SimHall(door_travel_s=getattr(d.barrier, "door_travel_s", 0.05))
    devices = Devices(
        scanner=SimScanner(hall),
        chip=SimChip(hall),
        camera=SimCamera(hall),
        face=SimFace(hall, d.face.threshold),
        barrier=SimBarrier(hall),
        bus=StdoutBus(),
        lists=SimLists(hall, d.lists.stolen_documents),
    )
    return devices, hall
