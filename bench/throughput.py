"""Throughput of one gate on the whole virtual hardware, with zero walking time.

Run: ``.venv/bin/python bench/throughput.py [--travellers 200]``. Every traveller is a
citizen with a valid ePassport crossing through the real paths: OCR of a rendered data
page, the chip over pcscd + vpcd (PACE, PA, AA), the watchlist service over HTTP, face
quality + PAD + match with dlib, the barrier over Modbus RTU on a pty (doors that move
instantly), and every event over MQTT through the outbox. Prints a Markdown table.

Per-step times come from the ``timings`` of each ``crossing.accepted`` event (what the
daemon measured); the barrier figure is the time from the core's decision (the status
event's timestamp) to the coil changing at the controller; publish latency is event
timestamp to receipt by an MQTT subscriber.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gate.events import parse_ts  # noqa: E402
from sim.fleet import _cpu_s  # noqa: E402
from sim.rig import Rig  # noqa: E402
from sim.scenario import FaceSetup, Identity, Traveller  # noqa: E402


def pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return v[min(len(v) - 1, int(q * len(v)))] if v else float("nan")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def traveller(i: int) -> Traveller:
    who = f"london_{(i % 60) + 1:03d}"
    if not (Path(__file__).resolve().parents[2] / "shared/data/faces" / who).exists():
        who = "london_009"
    return Traveller(
        identity=Identity(surname="TAN", given_names="AH KOW", document_number=f"K{i:08d}"),
        face=FaceSetup(portrait=who, live="genuine"),
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


async def bench(n: int, run_dir: Path) -> str:
    rig = Rig(run_dir, door_travel_s=0.0, walk_s=0.0)
    await rig.start()
    walls: list[float] = []
    try:
        for _ in range(3):  # cold starts: each reset spawns a fresh daemon
            await rig.reset()
        assert rig.daemon is not None
        pid = rig.daemon.pid
        cpu0 = _cpu_s(pid)
        rig.mark()
        t_start = time.monotonic()
        for i in range(n):
            t = traveller(i)
            t0 = time.monotonic()
            await rig.place_document(t)
            await rig.wait_state(t, "ENTRY_OPEN")
            await rig.walk_in(t)
            if await wait_any(rig, ("EXIT_OPEN", "REFERRED")) == "EXIT_OPEN":
                await rig.walk_out(t)
            else:  # referred in the mantrap (face): the officer sends them back
                await rig.officer(t, "send_back")
                await rig.walk_back(t)
            await rig.wait_state(t, "IDLE")
            walls.append(time.monotonic() - t0)
        elapsed = time.monotonic() - t_start
        cpu = _cpu_s(pid) - cpu0
        rss = peak_rss_mb(pid)
        await asyncio.sleep(1.0)
        events, _ = rig.observed()
    finally:
        await rig.stop()
    crossings = [e for e in events if e.get("type") == "crossing.accepted"]
    referred = [e for e in events if e.get("type") == "referral.opened"]
    steps: dict[str, list[float]] = {}
    for e in crossings:
        for k, v in e.get("timings", {}).items():
            steps.setdefault(k, []).append(v)
    publish = [e["_rx"] - parse_ts(e["ts"]).timestamp() for e in events if "_rx" in e]
    # decision -> coil: ENTRY_OPEN / EXIT_OPEN status timestamps against the coil changes
    opens = [
        parse_ts(e["ts"]).timestamp()
        for e in events
        if e.get("type") == "gate.status" and e.get("state") in ("ENTRY_OPEN", "EXIT_OPEN")
    ]
    coil = [
        t for t, d in zip(rig.door_times[rig.doors_mark :], rig.doors[rig.doors_mark :], strict=False)
        if d.endswith(":open")
    ]  # fmt: skip
    barrier = [c - o for o, c in zip(opens, coil, strict=False) if 0 <= c - o < 5]
    ms = 1000.0
    rows = [
        ("travellers (accepted / referred)", f"{n} ({len(crossings)} / {len(referred)})"),
        (
            "referral reasons",
            ", ".join(sorted({r for e in referred for r in e.get("reasons", [])})) or "-",
        ),
        ("wall time per traveller, p50 / p95", f"{pct(walls, 0.5):.2f} / {pct(walls, 0.95):.2f} s"),
        ("travellers per hour (one gate, no walking)", f"{3600 * n / elapsed:.0f}"),
    ]
    names = {"mrz": "MRZ read (OCR)", "chip": "chip read + PA + AA", "lists": "watchlists",
             "face": "face quality + PAD + match", "total": "machine time per crossing"}  # fmt: skip
    for key in ("mrz", "chip", "lists", "face", "total"):
        v = steps.get(key, [])
        rows.append(
            (f"{names[key]}, p50 / p95", f"{pct(v, 0.5) * ms:.0f} / {pct(v, 0.95) * ms:.0f} ms")
        )
    rows += [
        ("decision to door coil, p50 / p95", f"{pct(barrier, .5) * ms:.0f} / {pct(barrier, .95) * ms:.0f} ms"),
        ("event publish to receive, p50 / p95", f"{pct(publish, .5) * ms:.0f} / {pct(publish, .95) * ms:.0f} ms"),
        ("daemon CPU per crossing", f"{cpu / n * ms:.0f} ms"),
        ("daemon peak RSS", f"{rss:.0f} MB"),
        ("cold start to ready (spawn to IDLE), median", f"{statistics.median(rig.cold_starts):.2f} s"),
    ]  # fmt: skip
    return "\n".join(["| measure | value |", "| --- | --- |"] + [f"| {a} | {b} |" for a, b in rows])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--travellers", type=int, default=200)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="autogate-bench-") as tmp:
        print(asyncio.run(bench(args.travellers, Path(tmp))))


if __name__ == "__main__":
    main()
