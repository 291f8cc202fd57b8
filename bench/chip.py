"""Chip read benchmark over real pcscd + vpcd: APDUs, bytes and time per step, split into
host CPU (our crypto, parsing, verification) and waiting for the card.

The virtual chip runs in its own process (``python -m sim.chip``) so its work is card
time, as a real chip's would be. Run: ``/work/main/.venv/bin/python bench/chip.py``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from drivers.chip import PcscTransport, list_readers, read_once  # noqa: E402
from drivers.icao.pa import TrustStore  # noqa: E402
from gate.config import PcscChipConfig  # noqa: E402
from sim.chip import Holder  # noqa: E402

VARIANTS = [
    ("BAC, extended length", ["--no-pace"], "never"),
    ("BAC, short reads", ["--no-pace", "--short"], "never"),
    ("PACE-GM, extended length", [], "prefer"),
    ("PACE-GM, short reads", ["--short"], "prefer"),
]
# EAC: the same reads plus terminal authentication and DG3 (two JPEG 2000 thumbs)
EAC_VARIANTS = [
    ("EAC after PACE-GM, extended length", ["--eac"], "prefer"),
    ("EAC after PACE-GM, short reads", ["--eac", "--short"], "prefer"),
]


def ensure_pcscd() -> subprocess.Popen | None:
    if Path("/run/pcscd/pcscd.comm").exists():
        return None
    proc = subprocess.Popen(
        [shutil.which("pcscd") or "/usr/sbin/pcscd", "--foreground"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(50):
        try:
            if "Virtual PCD 00 00" in list_readers():
                return proc
        except Exception:
            pass
        time.sleep(0.1)
    raise SystemExit("pcscd did not come up")


def run_variant(args: list[str], pace: str, runs: int, tmp: Path) -> list[dict]:
    csca = tmp / f"csca{len(args)}{pace}"
    eac = "--eac" in args
    if eac:  # sim.chip_eac writes the CSCA and the EAC trust folder
        out = csca
        csca, eac_dir = out / "csca", out / "eac"
        cmd = ["-m", "sim.chip_eac", "--trust-out", str(out), *(x for x in args if x != "--eac")]
    else:
        cmd = ["-m", "sim.chip", "--csca-out", str(csca), *args]
    card = subprocess.Popen(
        [sys.executable, *cmd],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        card.stdout.readline()  # the card is on vpcd
        tr = PcscTransport("Virtual PCD 00 00")
        tr.connect(10.0)
        tr.close()
        cfg = PcscChipConfig(
            type="pcsc",
            pace=pace,  # type: ignore[arg-type]
            card_wait_s=5.0,
            eac_dir=eac_dir if eac else None,
        )
        trust = TrustStore.load(csca)
        mrz = Holder().mrz_record()
        reports = []
        for i in range(runs + 1):
            cpu = time.process_time()
            rep, _ = read_once(cfg, trust, mrz)
            cpu = time.process_time() - cpu
            if rep.reasons or (eac and not rep.fingers):
                raise SystemExit(f"read failed: {rep.errors} {rep.terminal_auth}")
            if i:  # the first read is the warm-up (imports, caches)
                reports.append({**rep.to_json(), "cpu_ms": cpu * 1000})
        return reports
    finally:
        card.terminate()
        card.wait(10)
        time.sleep(1.2)  # pcscd must see the slot empty before the next card


def med(values: list[float]) -> float:
    return round(statistics.median(values), 1)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--eac-only", action="store_true", help="only the EAC variants")
    a = ap.parse_args()
    pcscd = ensure_pcscd()
    rows, detail = [], None
    eac_rows: list[str] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for name, args, pace in [] if a.eac_only else VARIANTS:
                reps = run_variant(args, pace, a.runs, Path(tmp))
                r0 = reps[0]
                st = [r["steps"] for r in reps]
                card = [sum(s["card_ms"] for s in x.values()) for x in st]
                host = [sum(s["host_ms"] for s in x.values()) for x in st]
                access = "pace" if pace == "prefer" else "bac"
                rows.append(
                    f"| {name} | {r0['apdus']} | {r0['bytes']} | {r0['steps']['DG2']['apdus']} "
                    f"| {med([r['elapsed_ms'] for r in reps])} | {med(card)} | {med(host)} "
                    f"| {med([r['cpu_ms'] for r in reps])} "
                    f"| {med([x[access]['total_ms'] for x in st])} "
                    f"| {med([x['DG2']['total_ms'] for x in st])} "
                    f"| {med([x['PA']['total_ms'] for x in st])} "
                    f"| {med([x['AA']['total_ms'] for x in st])} "
                    f"| {med([x['CA']['total_ms'] for x in st])} |"
                )
                if detail is None and pace == "prefer":
                    detail = (name, reps)
            for name, args, pace in EAC_VARIANTS:
                reps = run_variant(args, pace, a.runs, Path(tmp))
                st = [r["steps"] for r in reps]
                eac_rows.append(
                    f"| {name} | {reps[0]['apdus']} | {st[0]['TA']['apdus']} "
                    f"| {st[0]['DG3']['apdus']} | {reps[0]['files']['DG3']} "
                    f"| {med([x['TA']['total_ms'] for x in st])} "
                    f"| {med([x['TA']['card_ms'] for x in st])} "
                    f"| {med([x['DG3']['total_ms'] for x in st])} "
                    f"| {st[0]['TA']['apdus'] + st[0]['DG3']['apdus']} "
                    f"| {med([x['TA']['total_ms'] + x['DG3']['total_ms'] for x in st])} "
                    f"| {med([r['elapsed_ms'] for r in reps])} |"
                )
    finally:
        if pcscd is not None:
            pcscd.terminate()
            pcscd.wait(10)
    if eac_rows:
        print(
            "EAC: terminal authentication (EF.CVCA, DV and IS certificates, challenge, "
            "signature) and DG3 after chip authentication; median ms.\n"
        )
        print("| variant | APDUs in all | TA APDUs | DG3 APDUs | DG3 bytes | TA | TA card wait "
              "| DG3 | TA + DG3 APDUs | TA + DG3 | whole read |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        print("\n".join(eac_rows) + "\n")
        if not rows:
            return 0
    dg2 = rows and reps[0]["files"]["DG2"]
    print(
        f"Chip read over pcscd + vpcd, virtual chip in its own process; DG2 = {dg2} bytes "
        f"(JPEG portrait); median of {a.runs} reads after one warm-up; times in ms.\n"
    )
    print(
        "| variant | APDUs | bytes | DG2 APDUs | total | card wait | host (total - wait) "
        "| host CPU time | access control | DG2 | PA | AA | CA |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if detail is not None:
        name, reps = detail
        print(f"\nPer step, {name} (median ms):\n")
        print("| step | APDUs | bytes in | total | card wait | host CPU |")
        print("|---|---|---|---|---|---|")
        for step in reps[0]["steps"]:
            xs = [r["steps"][step] for r in reps]
            print(
                f"| {step} | {xs[0]['apdus']} | {xs[0]['bytes_in']} | "
                f"{med([x['total_ms'] for x in xs])} | {med([x['card_ms'] for x in xs])} | "
                f"{med([x['host_ms'] for x in xs])} |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
