"""Start-up times: the CLI's and the daemon's (issue 23, part 1).

    .venv/bin/python bench/startup.py [--runs 5] [--root DIR ...] [--no-daemon]

Medians of ``--runs`` fresh processes each:
- ``autogate --help``                       (target < 0.3 s)
- ``autogate mrz parse LINE LINE``          (target < 0.5 s)
- daemon spawn to IDLE on the virtual gate  (target < 2 s; the rig's own cold start:
  broker, private pcscd, controller and camera already up, a fresh daemon process)

``--root DIR`` measures another checkout of the code as well (for example a
``git worktree add /tmp/old <commit>`` or ``git archive``), run with that folder first on
``sys.path`` and the same interpreter, so two versions are compared in one run on one
machine. The daemons of the checkouts take turns in one rig (this one, the other, this
one, ...), so a load that comes and goes on a shared machine hits both alike. The rig's
state folder is fresh, so each checkout's first start (not counted) fills any cache.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

L1 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
L2 = "L898902C36UTO7408122F1204159ZE184226B<<<<<10"
CLI = {
    "autogate --help": ["--help"],
    "autogate mrz parse": ["mrz", "parse", L1, L2],
}


def time_cli(root: Path, args: list[str], runs: int) -> float:
    code = "import sys; from autogate.cli import main; sys.exit(main())"
    env = {**os.environ, "PYTHONPATH": str(root)}
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", code, *args],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            check=False,
        )
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


async def daemon_cold_start(roots: list[Path], runs: int) -> list[float]:
    """Median spawn-to-IDLE seconds per checkout, their daemons interleaved in one rig."""
    from sim.rig import Rig

    times: dict[Path, list[float]] = {r: [] for r in roots}
    saved = os.environ.get("PYTHONPATH")
    with tempfile.TemporaryDirectory(prefix="autogate-startup-") as tmp:
        rig = Rig(Path(tmp), door_travel_s=0.0, walk_s=0.0)
        await rig.start()
        try:
            for n in range(runs + 1):  # round 0 warms each checkout up, not counted
                for root in roots:
                    os.environ["PYTHONPATH"] = str(root)  # the rig spawns with os.environ
                    await rig.reset()
                    if n:
                        times[root].append(rig.cold_starts[-1])
        finally:
            if saved is None:
                os.environ.pop("PYTHONPATH", None)
            else:
                os.environ["PYTHONPATH"] = saved
            await rig.stop()
    return [statistics.median(times[r]) for r in roots]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--root", type=Path, action="append", default=[], help="another checkout")
    ap.add_argument("--no-daemon", action="store_true")
    args = ap.parse_args()
    roots = [ROOT, *args.root]
    header = f"{'median of ' + str(args.runs):28}" + "".join(f"{r.name[:18]:>20}" for r in roots)
    print(header)
    for name, argv in CLI.items():
        cells = "".join(f"{time_cli(r, argv, args.runs):19.3f}s" for r in roots)
        print(f"{name:28}{cells}")
    if not args.no_daemon:
        cells = "".join(f"{t:19.3f}s" for t in asyncio.run(daemon_cold_start(roots, args.runs)))
        print(f"{'daemon spawn to IDLE':28}{cells}")
    print(f"(load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
