"""Run traveller scenarios against the virtual hardware and judge what the gate did.

Each scenario plays its steps on a fresh daemon (``Rig.reset``), then compares what an
operator could observe (MQTT events with reason codes, door commands at the
controller, the final state) with what the scenario expects. The first difference is
reported; a scenario whose parts have not landed is pending, never passed.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sim.rig import Rig, StepFailed, missing_parts, step_call
from sim.scenario import Expect, Scenario, load_scenario


@dataclass(frozen=True)
class Outcome:
    name: str
    status: str  # passed | failed | pending
    detail: str = ""
    seconds: float = 0.0


def judge(expect: Expect, events: list[dict[str, Any]], doors: list[str], state: str | None) -> str:
    """The first difference between what was expected and what was observed, or ""."""
    types = [str(e.get("type")) for e in events]
    for want in expect.events:
        found = [e for e in events if e.get("type") == want.type]
        if not found:
            return f"no {want.type} event (saw {', '.join(t for t in types if t != 'gate.status')})"
        if want.reasons is not None and not any(
            sorted(e.get("reasons", [])) == sorted(want.reasons) for e in found
        ):
            return f"{want.type} reasons {[e.get('reasons') for e in found]} != {want.reasons}"
        if want.includes and not any(
            set(want.includes) <= set(e.get("reasons", [])) for e in found
        ):
            return f"{want.type} reasons {[e.get('reasons') for e in found]} lack {want.includes}"
        if want.fields and not any(_carries(e, want.fields) for e in found):
            return f"{want.type} carries no {want.fields}"
    for absent in expect.absent:
        if absent in types:
            return f"unexpected {absent} event"
    if expect.doors is not None and doors != expect.doors:
        return f"door commands {doors} != {expect.doors}"
    if expect.final_state is not None and state != expect.final_state:
        return f"final state {state} != {expect.final_state}"
    ids = [e.get("event_id") for e in events]
    if len(ids) != len(set(ids)):
        return "duplicate event_id delivered twice"  # the monitor de-duplicates; a bug if not
    return ""


def _carries(event: Any, fields: dict[str, Any]) -> bool:
    """Every key of ``fields`` is in ``event`` with that value (mappings: recursively)."""
    if not isinstance(event, dict):
        return False
    for key, want in fields.items():
        if key not in event:
            return False
        got = event[key]
        if isinstance(want, dict):
            if not _carries(got, want):
                return False
        elif got != want:
            return False
    return True


async def run_one(rig: Rig, s: Scenario) -> Outcome:
    missing = missing_parts(s, rig.parts)
    if s.pending or missing:
        return Outcome(s.name, "pending", s.pending or "; ".join(missing))
    t0 = time.monotonic()
    await rig.reset(direction=s.direction, gate=s.gate)
    rig.mark()
    try:
        async with asyncio.timeout(s.timeout_s):
            for step in s.steps:
                await step_call(rig, step, s.traveller)
        await asyncio.sleep(1.0)  # late events (acks, status) settle
    except StepFailed as exc:
        return Outcome(s.name, "failed", f"step: {exc}", time.monotonic() - t0)
    except TimeoutError:
        return Outcome(
            s.name, "failed", f"timed out after {s.timeout_s:.0f} s", time.monotonic() - t0
        )
    except Exception as exc:  # a broken rig step is a failure with its reason, not a crash
        return Outcome(s.name, "failed", f"{type(exc).__name__}: {exc}", time.monotonic() - t0)
    events, doors = rig.observed()
    diff = judge(s.expect, events, doors, rig.monitor.state)
    return Outcome(s.name, "failed" if diff else "passed", diff, time.monotonic() - t0)


async def run_all(
    paths: list[Path], run_dir: Path, progress: Any = None, remove_run_dir: bool = False
) -> list[Outcome]:
    scenarios = [load_scenario(p) for p in paths]
    rig = Rig(run_dir, remove_run_dir=remove_run_dir)
    runnable = [s for s in scenarios if not (s.pending or missing_parts(s, rig.parts))]
    outcomes: list[Outcome] = []
    try:
        if runnable:
            await rig.start()
        for s in scenarios:
            if progress is not None:
                progress(s.name)
            outcomes.append(await run_one(rig, s))
    finally:
        if runnable:
            await rig.stop()
    return outcomes
