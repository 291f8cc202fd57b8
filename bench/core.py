"""Time the pure core alone: one whole accepted crossing through ``gate.machine.step``.

Run: ``.venv/bin/python bench/core.py``. Prints a Markdown table. The core must cost
nothing next to the devices (microseconds per input), so a slow decision never hides
behind a slow chip.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gate import inputs as i  # noqa: E402
from gate import machine  # noqa: E402
from gate.inputs import Door  # noqa: E402
from gate.results import ListsResult  # noqa: E402
from tests.core.helpers import T0, chip, doc, face, settings  # noqa: E402


def crossing(gate: machine.Gate, now: float) -> tuple[machine.Gate, int]:
    n = 0

    def feed(ev: i.Input) -> None:
        nonlocal gate, n
        gate, _ = machine.step(gate, ev, now)
        n += 1

    feed(i.DocumentPlaced())
    assert gate.txn is not None
    txn = gate.txn.id
    for ev in (
        i.DocumentRead(txn, doc()),
        i.ChipRead(txn, chip()),
        i.ListsChecked(txn, ListsResult()),
        i.DoorChanged(Door.ENTRY, False),
        i.PresenceChanged(1),
        i.DoorChanged(Door.ENTRY, True),
        i.FaceVerified(txn, face()),
        i.DoorChanged(Door.EXIT, False),
        i.PresenceChanged(0),
        i.DoorChanged(Door.EXIT, True),
    ):
        feed(ev)
    assert gate.state is machine.State.IDLE
    return gate, n


def main(rounds: int = 2000) -> None:
    gate = machine.initial(settings(), T0, boot="bench")
    gate, _ = machine.step(gate, i.Started(), T0)
    per_crossing: list[float] = []
    inputs = 0
    for _ in range(rounds):
        t0 = time.perf_counter()
        gate, n = crossing(gate, T0)
        per_crossing.append(time.perf_counter() - t0)
        inputs += n
    per_crossing.sort()
    med = statistics.median(per_crossing)
    p95 = per_crossing[int(0.95 * len(per_crossing))]
    print("| measure | value |")
    print("| --- | --- |")
    print(f"| crossings | {rounds} ({inputs // rounds} inputs each) |")
    print(f"| core time per crossing, median | {med * 1e6:.0f} µs |")
    print(f"| core time per crossing, p95 | {p95 * 1e6:.0f} µs |")
    print(f"| core time per input, median | {med / (inputs // rounds) * 1e6:.1f} µs |")


if __name__ == "__main__":
    main()
