"""Barrier benchmark: command-to-confirmed-door latency, input poll period, polling CPU.

Run: ``/work/main/.venv/bin/python bench/barrier.py`` (about a minute). Prints a Markdown
table. The simulated controller (``python -m sim.barrier``) runs in a child process with
door travel time 0, so the latency is the link's and the driver's alone (command frame,
confirmation polls, replies), and the CPU measured here is the driver's alone. The
simulator paces bytes at the baud rate (a pty has no line speed of its own).
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drivers.barrier import ModbusBarrier  # noqa: E402
from drivers.regmap import load_regmap  # noqa: E402
from gate.config import ModbusBarrierConfig  # noqa: E402
from gate.inputs import Door, DoorFault, Input  # noqa: E402

CYCLES = 40
IDLE_S = 5.0


def start_sim(baudrate: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "sim.barrier", "--travel", "0", "--baudrate", str(baudrate)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if not line or line[0] != "PORT":
        proc.kill()
        raise SystemExit("simulator did not start")
    return proc, line[1]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


async def measure(baudrate: int, poll_s: float) -> dict[str, float]:
    proc, port = start_sim(baudrate)
    events: list[Input] = []
    cfg = ModbusBarrierConfig(
        type="modbus_rtu", port=port, baudrate=baudrate, parity="N", poll_s=poll_s
    )
    b = ModbusBarrier(cfg, load_regmap("generic-2door"))
    try:
        await b.start(events.append)
        assert b.link_up, events
        # latency: open then close, each awaited until the sensors confirm it
        lat: list[float] = []
        for i in range(CYCLES):
            door = Door.ENTRY if i % 2 else Door.EXIT
            for cmd in (b.open, b.close_door):
                t = time.perf_counter()
                await cmd(door)
                lat.append((time.perf_counter() - t) * 1000)
            await asyncio.sleep(0.02)
        faults = [e for e in events if isinstance(e, DoorFault)]
        assert not faults, faults
        # idle polling: period and CPU of this process (the driver only)
        polls0, t0, cpu0 = b.polls, time.perf_counter(), time.process_time()
        await asyncio.sleep(IDLE_S)
        polls, wall, cpu = (
            b.polls - polls0,
            time.perf_counter() - t0,
            time.process_time() - cpu0,
        )
    finally:
        await b.close()
        proc.terminate()
        proc.wait(5)
    return {
        "lat_p50": statistics.median(lat),
        "lat_p95": pct(lat, 0.95),
        "lat_max": max(lat),
        "period_ms": wall / polls * 1000,
        "cpu_pct": cpu / wall * 100,
    }


async def main() -> None:
    rows = []
    for baud in (115200, 9600):
        for poll_s in (0.05, 0.001):
            r = await measure(baud, poll_s)
            rows.append((baud, poll_s, r))
    print(
        "| baud | poll_s set | confirm latency p50 / p95 / max (ms) | poll period (ms) "
        "| driver CPU while idle polling |"
    )
    print("| ---: | ---: | ---: | ---: | ---: |")
    for baud, poll_s, r in rows:
        print(
            f"| {baud} | {poll_s * 1000:g} ms | {r['lat_p50']:.1f} / {r['lat_p95']:.1f} / "
            f"{r['lat_max']:.1f} | {r['period_ms']:.1f} | {r['cpu_pct']:.1f} % |"
        )
    print(
        f"\n{CYCLES * 2} commands per row, door travel 0 (latency excludes travel); "
        f"poll period and CPU over {IDLE_S:g} s of idle polling (inputs + registers + "
        "heartbeat every 0.5 s); confirmation polls every 10 ms."
    )


if __name__ == "__main__":
    asyncio.run(main())
