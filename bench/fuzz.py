"""The long fuzz run: every registered parser, 100,000 mutated inputs each by default.

    .venv/bin/python bench/fuzz.py [--inputs N] [--only NAME ...] [--findings DIR]

Prints inputs, reasoned refusals, unexpected exceptions and the slowest input per parser;
exits 1 when any parser raised something unexpected or took 1 s or more on one input.
Each finding is written to DIR/<target>/<n>.bin so it can become a regression seed
(tests/fuzz/seeds/<target>/).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz import harness  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--inputs", type=int, default=100_000)
    ap.add_argument("--only", nargs="*", default=None, help="target names")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--findings", type=Path, default=Path("bench/out/fuzz"))
    args = ap.parse_args()

    targets = [t for t in harness.all_targets() if not args.only or t.name in args.only]
    reports = []
    bad = False
    t0 = time.perf_counter()
    for t in targets:
        r = harness.run(t, args.inputs, seed=args.seed, max_findings=50)
        reports.append(r)
        print(harness.describe([r]).splitlines()[1], flush=True)
        for i, f in enumerate(r.unexpected):
            out = args.findings / t.name
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{i}.bin").write_bytes(f.data)
            (out / f"{i}.txt").write_text(f.error)
        bad |= bool(r.unexpected) or r.slowest_s >= 1.0
    print()
    print(harness.describe(reports))
    print(
        f"\n{len(targets)} parsers, {sum(r.inputs for r in reports)} inputs, "
        f"{sum(len(r.unexpected) for r in reports)} unexpected, "
        f"{time.perf_counter() - t0:.0f} s"
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
