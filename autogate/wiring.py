"""Build the devices and the core's settings from a gate config (the composition root).

Each device section's ``type`` picks an implementation; ``sim`` types share one
``SimHall``. Real drivers register here as they land; the core never changes.
"""

from __future__ import annotations

import functools

from autogate.daemon import Devices
from drivers.interfaces import Watchlist
from drivers.stdout_bus import StdoutBus
from gate import machine, policy
from gate.config import GateConfig
from gate.policy_config import Policy, policy_for
from sim.devices import SimBarrier, SimCamera, SimChip, SimFace, SimHall, SimLists, SimScanner


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
    return machine.Settings(
        timeouts=timeouts,
        decide_document=functools.partial(_decide_document, site_policy),
        decide_face=functools.partial(_decide_face, site_policy),
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
        lists=_lists(cfg, hall),
    )
    return devices, hall


def _decide_document(site_policy: Policy, doc, chip, lists, today):  # type: ignore[no-untyped-def]
    return policy.decide_document(doc.mrz, doc, chip, lists, site_policy, today)


def _decide_face(site_policy: Policy, face):  # type: ignore[no-untyped-def]
    return policy.decide_face(face, site_policy)


def _lists(cfg: GateConfig, hall: SimHall) -> Watchlist:
    d = cfg.devices.lists
    if d.type == "sim":
        return SimLists(hall, d.stolen_documents)
    from drivers import watchlist

    return watchlist.build(d, cfg)
