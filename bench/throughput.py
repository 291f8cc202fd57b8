"""Throughput of one gate on the whole virtual hardware, with zero walking time.

Run (it uses the rig's pcscd + vpcd: hold the machine-wide lock)::

    flock /tmp/autogate-rig.lock .venv/bin/python bench/throughput.py [--travellers 200]

Every traveller is a citizen with a valid ePassport crossing through the real paths: OCR
of a rendered data page, the chip over pcscd + vpcd (PACE, PA, AA), the watchlist
service over HTTP, face quality + PAD + fused match with dlib, the barrier over Modbus
RTU on a pty (doors that move instantly), and every event over MQTT through the outbox.
Prints Markdown tables: the totals, referrals by stage and reason (a referral at the
document or in the mantrap is sent back as an officer would, an alarm or a stuck step is
counted and the gate reset; the run always goes on), and a per-crossing waterfall of
where the machine time of an accepted crossing goes (the gate's clock: status events'
timestamps; the controller's coils; the bench's own marks).

Per-step times come from the ``timings`` of each ``crossing.accepted`` event (what the
daemon measured); publish latency is event timestamp to receipt by an MQTT subscriber.

``--thumb-fallback`` (issue 19) runs the same genuine travellers twice, each with an EAC
chip holding their (synthetic) thumbs in DG3 and their own right thumb on the reader:
once under the face rule alone, once with the citizens' policy at face_then_thumb, and
reports the genuine referral rate of each, and what the thumb step costs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys
import tempfile
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gate.events import parse_ts  # noqa: E402
from sim.fleet import _cpu_s  # noqa: E402
from sim.rig import Rig, StepFailed  # noqa: E402
from sim.scenario import FaceSetup, GateSetup, Identity, ThumbSetup, Traveller  # noqa: E402


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def traveller(i: int, thumbs: bool = False) -> Traveller:
    """A genuine citizen; with ``thumbs`` their chip holds their synthetic thumbs (DG3,
    behind EAC) and they put their own right thumb on the reader."""
    who = f"london_{(i % 60) + 1:03d}"
    if not (Path(__file__).resolve().parents[2] / "shared/data/faces" / who).exists():
        who = "london_009"
    thumb = ThumbSetup(dg3=True, live="genuine", finger=i % 100) if thumbs else ThumbSetup()
    return Traveller(
        identity=Identity(surname="TAN", given_names="AH KOW", document_number=f"K{i:08d}"),
        face=FaceSetup(portrait=who, live="genuine"),
        thumb=thumb,
    )


async def wait_any(rig: Rig, states: tuple[str, ...], timeout: float = 20.0) -> str:
    """The first of ``states`` the gate reaches (from the rig's state mark on)."""
    start = rig.states_mark

    def hit() -> str | None:
        return next((s for s in rig.monitor.states[start:] if s in states), None)

    if not await asyncio.to_thread(rig.monitor.wait, lambda: hit() is not None, timeout):
        raise RuntimeError(f"none of {states} in {timeout:.0f} s")
    found = hit()
    assert found is not None
    rig.states_mark = start + rig.monitor.states[start:].index(found) + 1
    return found


async def film_traveller(rig: Rig, t: Traveller) -> None:
    """Put the traveller's frames in front of the camera before the crossing starts.

    Rendering them (``sim.attacks``: resize, blur, noise, JPEG for 8 frames) is the
    simulator's work, not the gate's; done inside ``walk_in`` it used to sit between the
    entry opening and the traveller stepping in, inside the gate's clock. The frames are
    the same ones ``walk_in`` would render (same seed as ``place_document`` uses).
    """
    rig.rng = np.random.default_rng(zlib.crc32(t.model_dump_json().encode()))
    frames = await asyncio.to_thread(rig._live_frames, t)
    await asyncio.to_thread(rig._write_scene, frames)


async def step_in(rig: Rig, t: Traveller) -> None:
    """``walk_in`` without rendering the scene (already filmed): take the passport and
    step in as soon as the entry is walkable (the controller's physics decide that).

    Stepping in the moment the door allows used to make the gate raise a false
    ``gate_door_forced`` in 1-2 % of crossings (the counter was read before the door
    sensor; the core judged the entry's late "opened" report after commanding it
    closed). The bench once waited a poll to hide it; it no longer does, and counts the
    alarms instead.
    """
    await rig.remove_document(t)
    await rig.host.arun(rig.controller.walk_in())


@dataclass
class Crossing:
    """One traveller's marks on the bench's clock and what the gate published."""

    n: int
    marks: dict[str, float] = field(default_factory=dict)
    outcome: str = ""
    stage: str = ""
    reasons: tuple[str, ...] = ()
    txn: str | None = None

    def mark(self, name: str) -> None:
        self.marks[name] = time.time()


async def cross(rig: Rig, t: Traveller, c: Crossing) -> None:
    """One traveller through the gate; a referral at either stage is resolved as an officer
    would (sent back) and counted, never the end of the run."""
    await film_traveller(rig, t)
    await asyncio.to_thread(rig._write_thumb_scene, t)  # what the thumb reader will see
    c.mark("placed")
    await rig.place_document(t)
    c.mark("page")
    if await wait_any(rig, ("ENTRY_OPEN", "REFERRED", "ALARM")) != "ENTRY_OPEN":
        c.mark("referred")
        await rig.officer(t, "send_back")
        await rig.remove_document(t)
        await rig.wait_state(t, "IDLE")
        return
    c.mark("entry_seen")
    await step_in(rig, t)
    c.mark("inside")
    state = await wait_any(rig, ("EXIT_OPEN", "REFERRED", "ALARM"))
    if state == "ALARM":
        raise StepFailed("alarm in the mantrap")
    if state == "EXIT_OPEN":
        c.mark("exit_seen")
        await rig.host.arun(rig.controller.walk_out())  # rig.walk_out, marked in between
        c.mark("outside")
        await rig._scene(None)
    else:  # referred in the mantrap (face): the officer sends them back
        c.mark("referred")
        await rig.officer(t, "send_back")
        await rig.walk_back(t)
    await rig.wait_state(t, "IDLE")


def attach_events(crossings: list[Crossing], events: list[dict[str, Any]]) -> None:
    """Give each crossing its transaction's outcome event (in order of transactions)."""
    outcomes = [
        e for e in events
        if e.get("type") in ("crossing.accepted", "referral.opened", "crossing.aborted")
    ]  # fmt: skip
    for c, e in zip(crossings, outcomes, strict=False):
        c.txn = e.get("txn_id")
        c.outcome = {"crossing.accepted": "accepted", "referral.opened": "referred"}.get(
            e["type"], "aborted"
        )
        c.stage = e.get("stage", "")
        c.reasons = tuple(e.get("reasons", []))


def status_times(events: list[dict[str, Any]], txn: str | None) -> dict[str, float]:
    """When the gate entered each state during ``txn`` (its own clock, the status ts)."""
    out: dict[str, float] = {}
    for e in events:
        if e.get("type") == "gate.status" and e.get("txn_id") == txn:
            out.setdefault(e["state"], parse_ts(e["ts"]).timestamp())
            out.setdefault("rx:" + e["state"], e["_rx"])
    return out


def waterfall(
    c: Crossing, events: list[dict[str, Any]], coils: list[tuple[float, str]]
) -> dict[str, float] | None:
    """Where the time of one accepted crossing went, in seconds, in the order it passes.

    Gate segments are what the gate spends on its own; ``traveller`` segments are the
    simulated traveller's reaction (the bench sees a state over MQTT, then acts), which
    a real traveller replaces with walking.
    """
    st = status_times(events, c.txn)
    acc = next(
        (e for e in events if e.get("type") == "crossing.accepted" and e.get("txn_id") == c.txn),
        None,
    )
    need = ("DOC_CHECK", "ENTRY_OPEN", "IN_MANTRAP", "EXIT_OPEN")
    if acc is None or any(k not in st for k in need) or "outside" not in c.marks:
        return None
    st["IDLE"] = parse_ts(acc["ts"]).timestamp()  # the crossing ends as the gate idles
    tm = acc.get("timings", {})

    def coil(name: str, after: float) -> float:
        return next((t for t, d in coils if d == name and t >= after - 0.002), float("nan"))

    m = c.marks
    doc = st["ENTRY_OPEN"] - st["DOC_CHECK"]
    steps = tm.get("mrz", 0) + tm.get("chip", 0) + tm.get("lists", 0)
    face_s = st["EXIT_OPEN"] - st["IN_MANTRAP"]
    face = tm.get("face", 0) + tm.get("face_first", 0)
    return {
        "page written -> document seen (scanner poll)": st["DOC_CHECK"] - m["page"],
        "MRZ + chip + lists (device steps)": steps,
        "document check: hops between steps": doc - steps,
        "entry open -> coil (door command)": coil("entry:open", st["ENTRY_OPEN"])
        - st["ENTRY_OPEN"],
        "entry open -> traveller inside (traveller)": m["inside"] - st["ENTRY_OPEN"],
        "inside -> entry closed (beam poll, door close, confirm; the burst runs)": st["IN_MANTRAP"]
        - m["inside"],
        "face quality + PAD + match (verifier, from the traveller inside)": face,
        "entry closed -> exit open (the rest of the face step)": face_s,
        "exit open -> coil (door command)": coil("exit:open", st["EXIT_OPEN"]) - st["EXIT_OPEN"],
        "exit open -> traveller out (traveller)": m["outside"] - st["EXIT_OPEN"],
        "traveller out -> crossing ended (beam poll)": st["IDLE"] - m["outside"],
        "machine time (published total)": tm.get("total", float("nan")),
        "gate's own time (total less the traveller's)": tm.get("total", float("nan"))
        - (m["inside"] - st["ENTRY_OPEN"])
        - (m["outside"] - st["EXIT_OPEN"]),
    }


async def bench(
    n: int, run_dir: Path, gate: GateSetup | None = None, thumbs: bool = False
) -> tuple[str, dict[str, Any]]:
    gate = gate or GateSetup()
    rig = Rig(run_dir, door_travel_s=0.0, walk_s=0.0)
    await rig.start()
    walls: list[float] = []
    crossings: list[Crossing] = []
    failed: list[str] = []
    try:
        for _ in range(3):  # cold starts: each reset spawns a fresh daemon
            await rig.reset(gate=gate)
        assert rig.daemon is not None
        pid = rig.daemon.pid
        cpu0, cpu_done = _cpu_s(pid), 0.0
        rig.mark()
        t_start = time.monotonic()
        for k in range(n):
            t = traveller(k, thumbs)
            c = Crossing(k)
            t0 = time.monotonic()
            try:
                await cross(rig, t, c)
            except (RuntimeError, StepFailed) as exc:  # counted; a fresh gate goes on
                failed.append(f"traveller {k}: {exc}")
                with contextlib.suppress(OSError):  # a daemon that died took its count
                    cpu_done += _cpu_s(pid) - cpu0
                await rig.reset(gate=gate)
                assert rig.daemon is not None
                pid, cpu0 = rig.daemon.pid, _cpu_s(rig.daemon.pid)
                rig.states_mark = len(rig.monitor.states)
            crossings.append(c)
            walls.append(time.monotonic() - t0)
        elapsed = time.monotonic() - t_start
        cpu = cpu_done + _cpu_s(pid) - cpu0
        rss = peak_rss_mb(rig.daemon.pid) if rig.daemon is not None else float("nan")
        await asyncio.sleep(1.0)
        events, _ = rig.observed()
    finally:
        await rig.stop()
    attach_events(crossings, events)
    accepted = [e for e in events if e.get("type") == "crossing.accepted"]
    referred = [e for e in events if e.get("type") == "referral.opened"]
    steps: dict[str, list[float]] = {}
    for e in accepted:
        for key, v in e.get("timings", {}).items():
            steps.setdefault(key, []).append(v)
    publish = [e["_rx"] - parse_ts(e["ts"]).timestamp() for e in events if "_rx" in e]
    coils = list(zip(rig.door_times[rig.doors_mark :], rig.doors[rig.doors_mark :], strict=False))
    falls = [w for c in crossings if (w := waterfall(c, events, coils)) is not None]
    by_reason = Counter(
        f"{e.get('stage', '?')}: {', '.join(e.get('reasons', [])) or '-'}" for e in referred
    )
    retried = [e for e in events if "face_first" in e.get("timings", {})]
    alarms = Counter(
        r for e in events if e.get("type") == "alarm.raised" for r in e.get("reasons", [])
    )
    ms = 1000.0
    rows = [
        ("travellers (accepted / referred / failed)",
         f"{n} ({len(accepted)} / {len(referred)} / {len(failed)})"),
        ("referrals by stage and reasons",
         "; ".join(f"{k} x{v}" for k, v in sorted(by_reason.items())) or "-"),
        ("alarms raised (gate_door_forced / all)",
         f"{alarms['gate_door_forced']} / {sum(alarms.values())}"
         + (f" ({', '.join(f'{k} x{v}' for k, v in sorted(alarms.items()))})" if alarms else "")),
        ("one more face burst (then accepted / referred)",
         f"{len(retried)} ({sum(e['type'] == 'crossing.accepted' for e in retried)} / "
         f"{sum(e['type'] == 'referral.opened' for e in retried)})"),
        ("wall time per traveller, p50 / p95", f"{pct(walls, 0.5):.2f} / {pct(walls, 0.95):.2f} s"),
        ("travellers per hour (one gate, no walking)", f"{3600 * n / elapsed:.0f}"),
    ]  # fmt: skip
    names = {"mrz": "MRZ read (OCR)", "chip": "chip read + PA + AA", "lists": "watchlists",
             "face": "face quality + PAD + match", "total": "machine time per crossing",
             "thumb": "thumb capture + match (crossings it decided)"}  # fmt: skip
    thumbed = [e for e in accepted if (e.get("biometric") or {}).get("decided_by") == "thumb"]
    keys = ("mrz", "chip", "lists", "face", "thumb", "total") if thumbs else names
    for key in keys:
        if key == "thumb" and not thumbs:
            continue
        v = steps.get(key, [])
        rows.append(
            (f"{names[key]}, p50 / p95", f"{pct(v, 0.5) * ms:.0f} / {pct(v, 0.95) * ms:.0f} ms")
        )
    rows += [
        ("event publish to receive, p50 / p95", f"{pct(publish, .5) * ms:.0f} / {pct(publish, .95) * ms:.0f} ms"),
        ("daemon CPU per crossing", f"{cpu / n * ms:.0f} ms"),
        ("daemon peak RSS", f"{rss:.0f} MB"),
        ("cold start to ready (spawn to IDLE), median", f"{statistics.median(rig.cold_starts):.2f} s"),
    ]  # fmt: skip
    out = ["| measure | value |", "| --- | --- |"] + [f"| {a} | {b} |" for a, b in rows]
    out += ["", f"Waterfall of {len(falls)} accepted crossings (ms):", ""]
    out += ["| segment | p50 | p95 |", "| --- | --- | --- |"]
    for key in falls[0] if falls else []:
        v = [f[key] for f in falls if f[key] == f[key]]
        out.append(f"| {key} | {pct(v, 0.5) * ms:.0f} | {pct(v, 0.95) * ms:.0f} |")
    faces = [
        f"{e['face']['score']:.3f}/{e['face']['pad_score']:.3f}"
        for e in referred
        if isinstance(e.get("face"), dict)
    ]
    out += ["", "face referrals, match score / PAD score: " + (", ".join(faces) or "-")]
    out += [f"\nfailed: {f}" for f in failed]
    stats = {
        "travellers": n,
        "accepted": len(accepted),
        "referred": len(referred),
        "failed": len(failed),
        "by_thumb": len(thumbed),
        "thumb_ms": [v * ms for v in steps.get("thumb", [])],
    }
    return "\n".join(out), stats


def fallback_line(mode: str, st: dict[str, Any]) -> str:
    n = st["travellers"]
    rate = 100.0 * st["referred"] / n if n else float("nan")
    return (
        f"| {mode} | {n} | {st['accepted']} | {st['referred']} ({rate:.1f} %) | "
        f"{st['by_thumb']} | {st['failed']} |"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--travellers", type=int, default=200)
    ap.add_argument("--keep", type=Path, default=None, help="run folder to keep (daemon log)")
    ap.add_argument(
        "--thumb-fallback",
        action="store_true",
        help="genuine referral rate under the face alone and under face_then_thumb",
    )
    ap.add_argument(
        "--overturns-pad",
        action="store_true",
        help="with --thumb-fallback: the policy lets a matching thumb overturn a PAD flag",
    )
    ap.add_argument(
        "--modes", nargs="+", default=["face", "face_then_thumb"], help="policies to run"
    )
    args = ap.parse_args()
    if args.thumb_fallback:
        print(thumb_fallback(args.travellers, args.keep, args.modes, args.overturns_pad))
        return
    if args.keep:
        print(asyncio.run(bench(args.travellers, args.keep))[0])
        return
    with tempfile.TemporaryDirectory(prefix="autogate-bench-") as tmp:
        print(asyncio.run(bench(args.travellers, Path(tmp)))[0])


def thumb_fallback(n: int, keep: Path | None, modes: list[str], overturns_pad: bool = False) -> str:
    """The same genuine travellers (EAC chips with their synthetic thumbs) under the face
    rule alone, then under face_then_thumb."""
    out: list[str] = []
    lines: list[str] = []
    thumb_ms: list[float] = []
    for mode in modes:
        gate = GateSetup(biometric=mode, thumb_overturns_pad=overturns_pad)  # type: ignore[arg-type]
        label = mode + (" (thumb overturns PAD)" if overturns_pad and mode != "face" else "")
        with tempfile.TemporaryDirectory(prefix="autogate-bench-") as tmp:
            run_dir = keep / mode if keep else Path(tmp)
            text, st = asyncio.run(bench(n, run_dir, gate, thumbs=True))
        out += [f"### citizens' channel: {label}", "", text, ""]
        lines.append(fallback_line(label, st))
        thumb_ms += st["thumb_ms"]
    out += [
        "### genuine referrals with and without the thumb fallback (synthetic thumbs)",
        "",
        "| policy | travellers | accepted | referred | decided by the thumb | failed |",
        "| --- | --- | --- | --- | --- | --- |",
        *lines,
        "",
        f"thumb step (capture + NBIS match) p50 / p95: {pct(thumb_ms, 0.5):.0f} / "
        f"{pct(thumb_ms, 0.95):.0f} ms over {len(thumb_ms)} thumbs",
    ]
    return "\n".join(out)


if __name__ == "__main__":
    main()
