"""What hearing the second opinion on more lines costs per page: the same rendered pages
read alternately with the old trigger and today's ``UNSURE``, in one process, so both
readings share the machine's load.

    .venv/bin/python bench/mrz_second_cost.py --pages 40 [--old 0.55]

Per level (``sim.page``, every 4th page a TD1 card, seeds 100000+): median and p95 ms per
page and exact pages, for each trigger.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import statistics
import sys
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import drivers.scanner as scanner  # noqa: E402
from drivers.mrz_ocr import read_line  # noqa: E402
from drivers.mrz_recog import UNSURE  # noqa: E402
from sim.page import LEVELS, render_page  # noqa: E402
from sim.real_pages import LEVELS as REAL_LEVELS  # noqa: E402
from sim.real_pages import build_page  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=40, help="pages per level")
    ap.add_argument("--old", type=float, default=0.55, help="the trigger to compare with")
    ap.add_argument(
        "--real", action="store_true", help="pages built from real crops (sim.real_pages)"
    )
    args = ap.parse_args()
    triggers = (args.old, UNSURE)
    print(f"| level ({args.pages} pages) | trigger | median ms | p95 ms | exact |")
    print("| --- | --- | --- | --- | --- |")
    for level in REAL_LEVELS if args.real else LEVELS:
        pages = [
            (*build_page(1000 + i, level)[:1], None, build_page(1000 + i, level)[1])
            if args.real
            else render_page(100000 + i, level, "TD1" if i % 4 == 3 else "TD3")
            for i in range(args.pages)
        ]
        times: dict[float, list[float]] = {u: [] for u in triggers}
        exact = dict.fromkeys(triggers, 0)
        for img, _, lines in pages:
            png = cv2.imencode(".png", img)[1].tobytes()
            for u in triggers:
                scanner.read_line = functools.partial(read_line, unsure=u)  # type: ignore[assignment]
                t0 = time.perf_counter()
                res = scanner.read_image(png, today=dt.date(2026, 12, 7))
                times[u].append(time.perf_counter() - t0)
                exact[u] += res.mrz is not None and tuple(res.mrz.lines) == tuple(lines)
        for u in triggers:
            t = sorted(times[u])
            print(
                f"| {level} | {u:.2f} | {1000 * statistics.median(t):.0f}"
                f" | {1000 * t[int(0.95 * (len(t) - 1))]:.0f} | {exact[u]} |"
            )


if __name__ == "__main__":
    main()
