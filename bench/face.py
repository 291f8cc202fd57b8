"""Face benchmark: speed per burst, FNMR at fixed FMR, PAD APCER/BPCER, model memory.

    /work/main/.venv/bin/python bench/face.py [--bursts 20] [--skip-pad]

Prints Markdown tables (copied into docs/bench-face.md). Uses the embedding cache of
``autogate face calibrate`` (bench/cache/) when present, else embeds all pair images
once (several minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

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


def bench_pad() -> list[str]:
    from drivers.face.pad import PAD, PadModel
    from sim import attacks
    from sim.train_pad import MODEL, stills, video_frames

    det = Detector()
    pad = PAD(PadModel.load(MODEL))
    rng = np.random.default_rng(11)
    s = attacks.HELDOUT

    def score(frames: list[np.ndarray]) -> float | None:
        found = det.detect_burst(frames)
        usable = [(f, fs[0]) for f, fs in zip(frames, found, strict=True) if len(fs) == 1]
        if not usable:
            return None
        return pad.assess([f for f, _ in usable], [x for _, x in usable]).score

    res: dict[str, list[float | None]] = {
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
    for src in stills("heldout", det):
        res["bona fide still (as is)"].append(score([src.image]))
        res["bona fide still (camera)"].append(
            score([attacks.bona_fide_frame(src.image, src.face_w, s, rng)])
        )
        res["print photo burst"].append(
            score(attacks.attack_burst("print", [src.image] * 5, src.face_w, s, rng))
        )
        res["screen photo burst"].append(
            score(attacks.attack_burst("screen", [src.image] * 5, src.face_w, s, rng))
        )
    for run in video_frames("heldout", det, step=1):
        for k in range(0, len(run) - 10, 6):
            win = run[k : k + 10 : 2]
            imgs = [x.image for x in win]
            fw = win[0].face_w
            res["bona fide video burst"].append(score(attacks.bona_fide_burst(imgs, fw, s, rng)))
            res["screen video replay"].append(
                score(attacks.attack_burst("screen", imgs, fw, s, rng))
            )
            res["print video frame"].append(
                score(attacks.attack_burst("print", [imgs[0]] * 5, fw, s, rng))
            )
    thr = pad.model.threshold
    bona = [x for k, v in res.items() if k.startswith("bona") for x in v if x is not None]
    thr5 = float(np.percentile(bona, 95)) if bona else thr
    rows = [
        f"Model threshold {thr:.3f} (set at 2 % BPCER on training data); "
        f"held-back threshold for BPCER 5 %: {thr5:.3f}",
        "",
        "| presentation | n | no face found | error rate at model threshold | "
        "error rate at BPCER 5 % |",
        "| --- | --- | --- | --- | --- |",
    ]
    for k, v in res.items():
        got = [x for x in v if x is not None]
        attack = not k.startswith("bona")
        if attack:  # APCER: attacks accepted as bona fide (no face found = rejected)
            e1 = np.mean([x < thr for x in got]) * len(got) / max(len(v), 1)
            e2 = np.mean([x < thr5 for x in got]) * len(got) / max(len(v), 1)
            name = "APCER"
        else:  # BPCER: bona fide rejected
            e1 = np.mean([x >= thr for x in got]) if got else float("nan")
            e2 = np.mean([x >= thr5 for x in got]) if got else float("nan")
            name = "BPCER"
        rows.append(f"| {k} | {len(v)} | {len(v) - len(got)} | {name} {e1:.1%} | {name} {e2:.1%} |")
    bona_all = [x for k, v in res.items() if k.startswith("bona") for x in v if x is not None]
    attack_all = [x for k, v in res.items() if not k.startswith("bona") for x in v]
    for label, t in (("model threshold", thr), ("BPCER 5 % threshold", thr5)):
        rejected = sum(x >= t for x in bona_all)
        accepted = sum(x is not None and x < t for x in attack_all)  # no face = rejected
        rows.append(
            f"\nPooled at the {label}: BPCER {rejected / len(bona_all):.1%} "
            f"({rejected} of {len(bona_all)}), APCER {accepted / len(attack_all):.1%} "
            f"({accepted} of {len(attack_all)})."
        )
    return rows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bursts", type=int, default=20)
    ap.add_argument("--skip-pad", action="store_true")
    ap.add_argument("--skip-fnmr", action="store_true")
    ap.add_argument("--onnx-descriptor", type=Path, default=REPO / "models/face/arcface_mbf.json")
    ap.add_argument("--onnx-model", type=Path, default=None)
    ap.add_argument("--det", type=Path, default=REPO / "docs" / "face-det.png")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

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
        print("\n".join(bench_pad()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
