"""Face benchmark: speed per burst, FNMR at fixed FMR, PAD APCER/BPCER, model memory.

    /work/main/.venv/bin/python bench/face.py [--bursts 20] [--skip-pad]

Prints Markdown tables (copied into docs/bench-face.md). Uses the embedding cache of
``autogate face calibrate`` (bench/cache/) when present, else embeds all pair images
once (several minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from drivers.face import calibrate as cal  # noqa: E402
from drivers.face.detect import Detector  # noqa: E402
from drivers.face.match import DEFAULT_DESCRIPTOR, Descriptor, build_matcher  # noqa: E402

FACES = REPO / ".." / "shared" / "data" / "faces"


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def video(name: str, n: int | None = None, step: int = 1) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(FACES / "video" / name))
    out, i = [], 0
    while n is None or len(out) < n:
        ok, f = cap.read()
        if not ok:
            break
        if i % step == 0:
            out.append(f)
        i += 1
    cap.release()
    return out


def pct(xs: list[float], q: float) -> float:
    return float(np.percentile(xs, q)) if xs else float("nan")


def bench_speed(verifier, bursts: int) -> list[str]:
    frames = video("single_face.mp4") + video("WolfgangLanger_Pexels.mp4", 200, 2)
    ok, jpg = cv2.imencode(".jpg", frames[0], [cv2.IMWRITE_JPEG_QUALITY, 90])
    portrait = jpg.tobytes()
    steps: dict[str, list[float]] = {}
    outcomes = []
    verifier.check(portrait, frames[:1])  # warm-up; also embeds the portrait once, as
    # DlibFaceVerifier.prepare() does after the chip read, before the traveller walks in
    rng = np.random.default_rng(3)
    for _ in range(bursts):
        start = int(rng.integers(0, len(frames) - 5))
        rep = verifier.check(portrait, frames[start : start + 5])
        outcomes.append(rep.result.reasons)
        for k, v in rep.timings_ms.items():
            steps.setdefault(k, []).append(v)
        steps.setdefault("all", []).append(rep.result.elapsed_s * 1000)
    rows = ["| step (5-frame burst, 640x360) | median ms | p95 ms |", "| --- | --- | --- |"]
    for k in ("detect", "quality", "pad", "portrait", "match", "all"):
        if k in steps:
            rows.append(f"| {k} | {pct(steps[k], 50):.1f} | {pct(steps[k], 95):.1f} |")
    qpm = [
        a + b + c + d
        for a, b, c, d in zip(
            steps.get("quality", []),
            steps.get("pad", []),
            steps.get("match", []),
            steps.get("detect", []),
            strict=False,
        )
    ]
    rows.append(f"| detect+quality+PAD+match | {pct(qpm, 50):.1f} | {pct(qpm, 95):.1f} |")
    rejected = sum(1 for r in outcomes if r)
    rows.append(
        f"\n{bursts} bursts, {rejected} not accepted (reasons: "
        f"{sorted({str(c) for r in outcomes for c in r}) or 'none'})"
    )
    return rows


def bench_fnmr(descriptors: list[tuple[Path, Path | None]]) -> tuple[list[str], dict]:
    pairs = cal.read_pairs(FACES / "pairs.csv")
    det = Detector()
    rows = [
        "| backend | calibrated threshold (score) | FNMR @ FMR 0.1 % | FNMR @ FMR 1 % | "
        "customary threshold: FMR / FNMR | FNMR @ FMR 0.1 %, gate-quality pairs |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    curves = {}
    passed: dict[str, bool] = {}
    runs = []
    for dpath, onnx in descriptors:
        desc = Descriptor.load(dpath)
        try:
            matcher = build_matcher(desc, onnx)
        except Exception as exc:  # noqa: BLE001 - a missing optional model is reported
            rows.append(f"| {desc.data.get('name')} | not measured: {exc} | | | | |")
            continue
        sha = desc.data["weights"].get("sha256", "")
        cache = REPO / "bench" / "cache" / f"face-{desc.backend}-{sha[:12]}.npz"
        tag = f"{desc.backend}:{sha}:{desc.data.get('alignment', '')}"
        vecs = cal.embed_images(pairs.root, pairs.images, matcher, det, cache, tag, passed=passed)
        runs.append((desc, cal.pair_scores(pairs, vecs, matcher)))
    # the quality gate a live frame must pass (same detector and limits for every backend)
    both = np.array(
        [passed.get(a, True) and passed.get(b, True) for a, b in zip(pairs.a, pairs.b, strict=True)]
    )
    for desc, scores in runs:
        gen, imp = scores[pairs.same], scores[~pairs.same]
        out = [cal.rates(gen, imp, cal.threshold_at_fmr(imp, t))[1] for t in (0.001, 0.01)]
        cust = desc.data.get("customary_threshold")
        cust_s = "-"
        if cust is not None:
            f, n = cal.rates(gen, imp, float(cust))
            cust_s = f"{f:.3%} / {n:.2%} (score {cust})"
        q_s = "-"
        if passed:
            gq, iq = scores[pairs.same & both], scores[~pairs.same & both]
            fq = cal.rates(gq, iq, cal.threshold_at_fmr(iq, 0.001))[1]
            q_s = f"{fq:.2%} ({len(gq)} of {len(gen)} genuine pairs)"
        thr = f"{desc.threshold:.4f}" if desc.data.get("threshold") is not None else "-"
        rows.append(
            f"| {desc.data.get('name')} | {thr} | {out[0]:.2%} | {out[1]:.2%} | {cust_s} | {q_s} |"
        )
        curves[desc.data.get("name", desc.backend)] = cal.det_curve(gen, imp)
    if passed:
        rate = 1 - np.mean([passed.get(n, True) for n in pairs.images])
        rows.append(
            f"\n{rate:.1%} of the {len(pairs.images)} images fail the live-frame "
            "quality gate (default limits); a gate would capture again instead."
        )
    return rows, curves


# face width in the shared set's images (README: dlib box 90-130 px in LFW, 220-320 in
# the London studio images, 185-390 in webmorphr_lisa)
FACE_W = {"london": 270.0, "webmorphr": 280.0}


def make_bursts(out: Path, seed: int, only: set[str] | None = None, frames: int = 5) -> Path:
    """A burst pair set from ``pairs.csv``: ``a`` stays the still (the DG2 stand-in), ``b``
    becomes a folder of ``frames`` frames of that image filmed by the simulated gate camera
    (``sim.attacks``, training settings, as the rig films a genuine traveller). Written
    once per seed; ``only`` limits the live images filmed (the rest keep earlier folders).
    """
    from sim import attacks

    pairs = cal.read_pairs(FACES / "pairs.csv")
    stills = out / "stills"
    out.mkdir(parents=True, exist_ok=True)
    if not stills.exists():
        stills.symlink_to(FACES.resolve())
    for name in sorted(set(pairs.b) if only is None else only):
        folder = out / f"bursts{seed}" / Path(name).with_suffix("")
        if folder.is_dir() and len(list(folder.iterdir())) == frames:
            continue
        img = cv2.imread(str(FACES / name))
        face_w = FACE_W.get(name.split("_")[0], 110.0)
        rng = np.random.default_rng([seed, *name.encode()])
        burst = attacks.bona_fide_burst([img] * frames, face_w, attacks.TRAIN, rng)
        folder.mkdir(parents=True, exist_ok=True)
        for n, f in enumerate(burst):
            cv2.imwrite(str(folder / f"{n:02d}.jpg"), f, [cv2.IMWRITE_JPEG_QUALITY, 95])
    csv = out / f"pairs{seed}.csv"
    rows = ["a,b,same"] + [
        f"stills/{a},bursts{seed}/{Path(b).with_suffix('')},{int(same)}"
        for a, b, same in zip(pairs.a, pairs.b, pairs.same, strict=True)
    ]
    csv.write_text("\n".join(rows) + "\n")
    return csv


def bench_bursts(out: Path, fuse: int, margin: float, target: float = 0.001) -> list[str]:
    """FNMR at FMR 0.1 % on bursts: best frame alone against the fused score, and the
    effect of one more burst for borderline rejects on both error rates."""
    desc = Descriptor.load(DEFAULT_DESCRIPTOR)
    matcher, det = build_matcher(desc), Detector()
    sha = desc.data["weights"].get("sha256", "")
    cache = REPO / "bench" / "cache" / f"face-{desc.backend}-{sha[:12]}.npz"
    tag = f"{desc.backend}:{sha}:{desc.data.get('alignment', '')}"
    first = cal.read_pairs(make_bursts(out, 1))
    rows = [
        "| score | threshold at FMR 0.1 % | FMR | FNMR | FNMR, bursts acquired | no frame "
        "passed quality (genuine) | one more burst: FMR | FNMR | FNMR, acquired |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for k in (1, fuse):
        vecs = cal.embed_images(first.root, first.images, matcher, det, cache, tag, frames=k)
        s1 = cal.pair_scores(first, vecs, matcher)
        thr = cal.threshold_at_fmr(s1[~first.same], target)
        fmr, fnmr = cal.rates(s1[first.same], s1[~first.same], thr)
        # the borderline band gets a second burst: the same image filmed again
        band = np.nan_to_num(s1, nan=-1.0)
        band = (band < thr) & (band >= thr - margin)
        live = {b for b, hit in zip(first.b, band, strict=True) if hit}
        orig = {
            f"bursts1/{Path(n).with_suffix('')}": n for n in cal.read_pairs(FACES / "pairs.csv").b
        }
        second = cal.read_pairs(make_bursts(out, 2, {orig[b] for b in live}))
        names = sorted({n for n, b in zip(second.b, band, strict=True) if b} | set(second.a))
        vecs2 = cal.embed_images(second.root, names, matcher, det, cache, tag, frames=k)
        s2 = np.full(len(s1), np.nan)
        for i in np.flatnonzero(band):
            va, vb = vecs2.get(second.a[i]), vecs2.get(second.b[i])
            if va is not None and vb is not None:
                s2[i] = matcher.score(va, vb)
        passed = (np.nan_to_num(s1, nan=-1) >= thr) | (band & (np.nan_to_num(s2, nan=-1) >= thr))
        got = ~np.isnan(s1)  # both sides acquired (the burst had a frame passing quality)
        fmr2 = float(np.mean(passed[~first.same & got]))
        fnmr2 = 1 - float(np.mean(passed[first.same]))
        gen_got = first.same & got
        fnmr_q = 1 - float(np.mean(s1[gen_got] >= thr))
        fnmr_q2 = 1 - float(np.mean(passed[gen_got]))
        fta = 1 - float(np.mean(got[first.same]))
        label = "best frame" if k == 1 else f"fused, mean of {k} frames"
        rows.append(
            f"| {label} | {thr:.4f} | {fmr:.3%} | {fnmr:.2%} | {fnmr_q:.2%} | {fta:.1%} | "
            f"{fmr2:.3%} | {fnmr2:.2%} | {fnmr_q2:.2%} |"
        )
    rows.append(
        f"\n{int(first.same.sum())} genuine and {int((~first.same).sum())} impostor pairs: "
        f"still portrait against a {5}-frame burst of the other image filmed by the "
        f"simulated gate camera; one more burst when the score is within {margin} below "
        "the threshold (a second filming of the same image)."
    )
    return rows


def bench_pad(
    margin: float | None = None,
    dump: Path | None = None,
    below: float | None = None,
    load: Path | None = None,
) -> list[str]:
    """APCER / BPCER on held-back people, clips and settings; a presentation whose score
    is within ``margin`` above the threshold, or ``below`` under it, is filmed once more
    (a fresh draw of the same setting) and judged two ways: on that second burst alone (a
    second chance) and on both bursts pooled (``PAD.pool``, what the gate does). Both
    margins default to the PAD model's (``borderline_margin``, ``borderline_below``).
    ``load``: the scores a ``dump`` of an earlier run wrote, judged again without filming
    (its band must cover the margins asked for)."""
    from drivers.face.pad import PAD, PadModel, PadResult
    from sim import attacks
    from sim.train_pad import MODEL, stills, video_frames

    det = Detector()
    pad = PAD(PadModel.load(MODEL))
    thr = pad.model.threshold
    meta = pad.model.meta
    band = float(meta.get("borderline_margin", 0.0)) if margin is None else margin
    low = float(meta.get("borderline_below", 0.0)) if below is None else below
    rng = np.random.default_rng(11)
    s = attacks.HELDOUT

    def score(frames: list[np.ndarray]) -> PadResult | None:
        found = det.detect_burst(frames)
        usable = [(f, fs[0]) for f, fs in zip(frames, found, strict=True) if len(fs) == 1]
        if not usable:
            return None
        return pad.assess([f for f, _ in usable], [x for _, x in usable])

    Pres = tuple[PadResult | None, PadResult | None]
    res: dict[str, list[Pres]] = {
        k: []
        for k in (
            "bona fide video burst",
            "bona fide still (camera)",
            "bona fide still (as is)",
            "print photo burst",
            "screen photo burst",
            "screen video replay",
            "print video frame",
        )
    }

    again_rng = np.random.default_rng(12)  # second bursts: the first draws stay as before

    def present(key: str, film: Any) -> None:
        first = score(film(rng))
        again = first is not None and thr - low <= first.score < thr + band
        res[key].append((first, score(film(again_rng)) if again else None))

    if load is not None:
        saved = json.loads(load.read_text())
        covered = saved.get("below", 0.0) >= low and saved["band"] >= band
        if saved["threshold"] != thr or not covered:
            raise SystemExit(f"{load}: another threshold, or a band narrower than asked")
        for k, v in saved["presentations"].items():
            res[k] = [
                tuple(PadResult(r[0], r[0] >= thr, {}, r[1], r[2]) if r else None for r in p)
                for p in v
            ]
    for src in stills("heldout", det) if load is None else ():
        img, fw = src.image, src.face_w
        res["bona fide still (as is)"].append((score([img]), None))
        present(
            "bona fide still (camera)",
            lambda r, i=img, w=fw: [attacks.bona_fide_frame(i, w, s, r)],
        )
        present(
            "print photo burst",
            lambda r, i=img, w=fw: attacks.attack_burst("print", [i] * 5, w, s, r),
        )
        present(
            "screen photo burst",
            lambda r, i=img, w=fw: attacks.attack_burst("screen", [i] * 5, w, s, r),
        )
    for run in video_frames("heldout", det, step=1) if load is None else ():
        for k in range(0, len(run) - 10, 6):
            win = run[k : k + 10 : 2]
            imgs = [x.image for x in win]
            fw = win[0].face_w
            present(
                "bona fide video burst",
                lambda r, i=imgs, w=fw: attacks.bona_fide_burst(i, w, s, r),
            )
            present(
                "screen video replay",
                lambda r, i=imgs, w=fw: attacks.attack_burst("screen", i, w, s, r),
            )
            present(
                "print video frame",
                lambda r, i=imgs, w=fw: attacks.attack_burst("print", [i[0]] * 5, w, s, r),
            )

    if dump is not None:  # every presentation's scores, to weigh other margins offline
        raw = {
            k: [[(r.score, r.logit_sum, r.frames) if r else None for r in p] for p in v]
            for k, v in res.items()
        }
        saved = {"threshold": thr, "band": band, "below": low, "presentations": raw}
        dump.write_text(json.dumps(saved))

    def passes(p: Pres, t: float, retry: str) -> bool | None:
        """Judged bona fide? None: no face found (an attack then counts as rejected)."""
        first, second = p
        if first is None:
            return None
        borderline = thr - low <= first.score < thr + band
        if retry == "no" or second is None or not borderline:
            return first.score < t
        if retry == "second chance":
            return second.score < t
        return pad.pool(first, second).score < t

    bona = [p[0].score for k, v in res.items() if k.startswith("bona") for p in v if p[0]]
    thr5 = float(np.percentile(bona, 95)) if bona else thr
    modes = (("no", thr), ("no", thr5), ("second chance", thr), ("pooled", thr))
    rows = [
        f"Model threshold {thr:.3f} (set at 2 % BPCER on training data); "
        f"held-back threshold for BPCER 5 %: {thr5:.3f}; one more burst when the score is "
        f"in [{thr - low:.3f}, {thr + band:.3f})",
        "",
        "| presentation | n | no face found | error rate at model threshold | "
        "error rate at BPCER 5 % | one more burst: second chance | "
        "one more burst: both pooled (the gate) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    pooled: dict[tuple[str, str], list[int]] = {}
    for k, v in res.items():
        attack = not k.startswith("bona")
        name = "APCER" if attack else "BPCER"
        cells = []
        for retry, t in modes:
            judged = [passes(p, t, retry) for p in v]
            if attack:  # attacks accepted as bona fide, over all (no face = rejected)
                err = sum(j is True for j in judged)
                n = len(v)
            else:  # bona fide presentations rejected, over those with a face
                err = sum(j is False for j in judged)
                n = sum(j is not None for j in judged)
            if t == thr:
                tot = pooled.setdefault((name, retry), [0, 0])
                tot[0] += err
                tot[1] += n
            cells.append(f"{name} {err / n:.1%}" if n else "-")
        faceless = sum(p[0] is None for p in v)
        rows.append(f"| {k} | {len(v)} | {faceless} | {' | '.join(cells)} |")
    for retry, label in (
        ("no", "one burst"),
        ("second chance", "one more burst when borderline, judged alone"),
        ("pooled", "one more burst when borderline, both bursts pooled"),
    ):
        b, a = pooled[("BPCER", retry)], pooled[("APCER", retry)]
        rows.append(
            f"\nPooled at the model threshold, {label}: BPCER {b[0] / b[1]:.1%} "
            f"({b[0]} of {b[1]}), APCER {a[0] / a[1]:.1%} ({a[0]} of {a[1]})."
        )
    rows.append("\nAttacks accepted at the model threshold (index in their row above):\n")
    names = {"no": "one burst", "pooled": "pooled"}
    for k, v in res.items():
        if k.startswith("bona"):
            continue
        for i, p in enumerate(v):
            got = {r for r in ("no", "pooled") if passes(p, thr, r)}
            if got:
                first, second = p
                assert first is not None
                more = f", second {second.score:.3f}" if second is not None else ""
                pool = f", pooled {pad.pool(first, second).score:.3f}" if second else ""
                rows.append(
                    f"- {k} #{i}: first burst {first.score:.3f}{more}{pool}; accepted by "
                    f"{' and '.join(sorted(names[r] for r in got))}"
                )
    return rows


def bench_gate_genuine(travellers: int, pad_margin: float | None = None) -> list[str]:
    """Genuine travellers as ``bench/throughput.py`` makes them (London studio people,
    ``01.jpg`` the chip portrait, ``02.jpg`` filmed 8 times by ``sim.attacks``' gate
    camera under the training settings, as ``sim.rig`` does), through the verifier
    without the rig: the face stage's share of genuine referrals, in minutes instead of a
    rig run. A retryable reject gets one more burst as the core asks for it: the next 5
    frames of the same scene, as the rig's camera gives them (``same scene``), or a fresh
    filming (``new scene``: what a traveller who moves gives)."""
    from collections import Counter

    from drivers.face.verifier import DlibFaceVerifier
    from gate.config import DlibFaceConfig
    from sim import attacks

    verifier = DlibFaceVerifier(DlibFaceConfig(type="dlib"))
    if pad_margin is not None and verifier.pad is not None:
        verifier.pad.above = pad_margin
    rng = np.random.default_rng(7)  # the rig's seed
    outcome: dict[str, Counter[str]] = {k: Counter() for k in ("one", "same", "new")}
    pads: list[float] = []
    for i in range(travellers):
        who = f"london_{(i % 60) + 1:03d}"
        if not (FACES / who).exists():
            who = "london_009"
        portrait = (FACES / who / "01.jpg").read_bytes()
        live = cv2.imread(str(FACES / who / "02.jpg"))
        scene = attacks.bona_fide_burst([live] * 8, 270.0, attacks.TRAIN, rng)
        fresh = attacks.bona_fide_burst([live] * 8, 270.0, attacks.TRAIN, rng)
        for key, again in (("one", None), ("same", scene[5:] + scene[:2]), ("new", fresh[:5])):
            verifier._held_pad = None  # each way starts as a new traveller
            r = verifier.check(portrait, scene[:5]).result
            if key == "one":
                pads.append(r.pad_score)
            if not r.match and r.retryable and again is not None:
                r = verifier.check(portrait, again).result
            outcome[key]["accepted" if r.match else "+".join(map(str, r.reasons))] += 1
    rows = [
        f"{travellers} genuine travellers; PAD threshold "
        f"{verifier.pad.model.threshold if verifier.pad else float('nan'):.3f}, "
        f"borderline band {verifier.pad.below if verifier.pad else 0} under, "
        f"{verifier.pad.above if verifier.pad else 0} over; "
        f"match threshold {verifier.threshold:.4f}, margin {verifier.match_margin}",
        "",
        "| bursts | referred | share | reasons |",
        "| --- | --- | --- | --- |",
    ]
    for key, label in (
        ("one", "one"),
        ("same", "one more when borderline, same scene (the rig)"),
        ("new", "one more when borderline, new scene"),
    ):
        c = outcome[key]
        ref = travellers - c["accepted"]
        why = ", ".join(f"{k} {n}" for k, n in sorted(c.items()) if k != "accepted")
        rows.append(f"| {label} | {ref} | {ref / travellers:.1%} | {why or '-'} |")
    top = sorted(pads)[-5:]
    rows.append(f"\nHighest PAD scores of the first bursts: {', '.join(f'{x:.3f}' for x in top)}")
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bursts", type=int, default=20)
    ap.add_argument("--skip-pad", action="store_true")
    ap.add_argument("--skip-fnmr", action="store_true")
    ap.add_argument("--onnx-descriptor", type=Path, default=REPO / "models/face/arcface_mbf.json")
    ap.add_argument("--onnx-model", type=Path, default=None)
    ap.add_argument("--det", type=Path, default=REPO / "docs" / "face-det.png")
    ap.add_argument("--burst-dir", type=Path, default=REPO / "bench" / "cache" / "bursts")
    ap.add_argument("--only-bursts", action="store_true", help="only the burst calibration")
    ap.add_argument("--fuse", type=int, default=3)
    ap.add_argument("--pad-margin", type=float, default=None, help="default: the PAD model's")
    ap.add_argument("--only-pad", action="store_true", help="only the PAD section")
    ap.add_argument("--pad-dump", type=Path, default=None, help="write PAD scores (JSON)")
    ap.add_argument("--pad-below", type=float, default=None, help="default: the PAD model's")
    ap.add_argument("--pad-load", type=Path, default=None, help="judge a --pad-dump again")
    ap.add_argument(
        "--gate-genuine", type=int, default=0, help="N rig-like genuine travellers, no rig"
    )
    ap.add_argument("--margin", type=float, default=0.03, help="borderline band below thr")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if args.gate_genuine:
        print("\n".join(bench_gate_genuine(args.gate_genuine, args.pad_margin)))
        return 0
    if args.only_pad:
        print("\n".join(bench_pad(args.pad_margin, args.pad_dump, args.pad_below, args.pad_load)))
        return 0
    if args.only_bursts:
        print("## FNMR at FMR 0.1 % on bursts (shared pairs filmed by the gate camera)\n")
        print("\n".join(bench_bursts(args.burst_dir, args.fuse, args.margin)))
        return 0

    from drivers.face.verifier import DlibFaceVerifier
    from gate.config import DlibFaceConfig

    base = rss_mb()
    t = time.perf_counter()
    verifier = DlibFaceVerifier(DlibFaceConfig(type="dlib"))
    load_s = time.perf_counter() - t
    loaded = rss_mb()
    print(f"## Face pipeline on this machine ({os.cpu_count()} cores)\n")
    print("\n".join(bench_speed(verifier, args.bursts)))
    print(
        f"\nModels loaded in {load_s:.2f} s; process RSS {base:.0f} MB before, "
        f"{loaded:.0f} MB after loading (dlib 68-point landmarks + ResNet + PAD), "
        f"{rss_mb():.0f} MB after the bursts.\n"
    )

    if not args.skip_fnmr:
        print("## FNMR at fixed FMR on ../shared/data/faces/pairs.csv\n")
        descs = [(DEFAULT_DESCRIPTOR, None)]
        if args.onnx_descriptor.is_file():
            descs.append((args.onnx_descriptor, args.onnx_model))
        rows, curves = bench_fnmr(descs)
        print("\n".join(rows))
        if curves:
            cal.plot_det(curves, args.det)
            print(f"\nDET curve: {args.det.relative_to(REPO)}")
    if not args.skip_pad:
        print("\n## Presentation-attack detection on held-back people, clips and settings\n")
        print("\n".join(bench_pad(args.pad_margin, args.pad_dump, args.pad_below, args.pad_load)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
