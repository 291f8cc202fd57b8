"""Train the PAD texture classifier on generated attacks, reproducibly.

    /work/main/.venv/bin/python -m sim.train_pad            # writes models/face/pad_texture.json

Data: the real faces and videos of ``../shared/data/faces`` (test data, never shipped;
only the ~200 learnt numbers are). People and clips are split in two: the ``train``
people/clips with ``sim.attacks.TRAIN`` settings build the model; ``heldout``
people/clips with ``sim.attacks.HELDOUT`` settings (different print, screen, geometry
and camera ranges) are only for ``bench/face.py``'s APCER/BPCER. Seeds are fixed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from drivers.face.detect import Detector
from drivers.face.pad import PadModel, frame_features, sigmoid, train_logistic
from sim import attacks

REPO = Path(__file__).resolve().parents[1]
FACES = REPO / ".." / "shared" / "data" / "faces"
MODEL = REPO / "models" / "face" / "pad_texture.json"
# a first-burst PAD score this far over, or under, the threshold gets one more burst,
# pooled with the first (drivers/face/pad.py PAD.borderline, PAD.pool); chosen out of fold
# on training settings by sim/pad_rule.py (docs/bench-face.md)
BORDERLINE_MARGIN = 0.05
BORDERLINE_BELOW = 0.15

VIDEOS = {
    "train": [("WolfgangLanger_Pexels.mp4", 0.0, 20.0), ("short_hamilton_clip.mp4", 0.0, 10.0)],
    "heldout": [("single_face.mp4", 0.0, 2.4), ("face_noface.mov", 0.0, 2.3)],
}


def people(split: str) -> list[str]:
    """Identity folders of a split: London people halved, LFW by alternate name."""
    london = sorted(p.name for p in FACES.glob("london_*"))
    lfw = sorted(
        p.name
        for p in FACES.iterdir()
        if p.is_dir() and not p.name.startswith(("london_", "webmorphr_", "video"))
    )
    if split == "train":
        return london[: len(london) // 2] + lfw[0:160:4]
    return london[len(london) // 2 :] + lfw[1:160:8] + ["webmorphr_lisa"]


@dataclass
class Source:
    image: np.ndarray
    face_w: float
    label: str


def stills(split: str, det: Detector) -> Iterator[Source]:
    for person in people(split):
        for path in sorted((FACES / person).glob("*.jpg"))[:2]:
            img = cv2.imread(str(path))
            faces = det.detect(img) if img is not None else []
            if faces:
                yield Source(img, faces[0].width, f"{person}/{path.name}")


def video_frames(split: str, det: Detector, step: int = 3) -> Iterator[list[Source]]:
    """Runs of consecutive sampled frames that show one face (a run ends at a cut)."""
    for name, start, stop in VIDEOS[split]:
        cap = cv2.VideoCapture(str(FACES / "video" / name))
        fps = cap.get(cv2.CAP_PROP_FPS) or 25.0
        run: list[Source] = []
        i = 0
        while True:
            ok, frame = cap.read()
            if not ok or i / fps > stop:
                break
            if i / fps >= start and i % step == 0:
                faces = det.detect(frame)
                if len(faces) == 1:
                    run.append(Source(frame, faces[0].width, f"{name}#{i}"))
                elif run:
                    yield run
                    run = []
            i += 1
        if run:
            yield run
        cap.release()


def features_of(frames: list[np.ndarray], det: Detector) -> list[np.ndarray | None]:
    """Texture features of each frame's largest face; None when no face is found."""
    out: list[np.ndarray | None] = []
    for f in frames:
        faces = det.detect(f)
        out.append(frame_features(f, faces[0]) if faces else None)
    return out


def training_set(
    det: Detector, seed: int = 7, groups: list[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame features and labels (1 attack); ``groups`` gets each frame's source
    (a person, a clip), for folds that keep a source together (``sim/pad_rule.py``)."""
    rng = np.random.default_rng(seed)
    s = attacks.TRAIN
    xs, ys = [], []

    def add(frames: list[np.ndarray], label: int, group: str = "") -> None:
        for v in features_of(frames, det):
            if v is not None:
                xs.append(v)
                ys.append(label)
                if groups is not None:
                    groups.append(group)

    for src in stills("train", det):
        g = src.label.split("/")[0]
        add([src.image], 0, g)  # a live photo as it is
        add([attacks.bona_fide_frame(src.image, src.face_w, s, rng)], 0, g)
        add(attacks.attack_burst("print", [src.image], src.face_w, s, rng), 1, g)
        add(attacks.attack_burst("print", [src.image], src.face_w, s, rng), 1, g)
        add(attacks.attack_burst("screen", [src.image], src.face_w, s, rng), 1, g)
    for run in video_frames("train", det):
        for k in range(0, len(run), 2):
            src = run[k]
            g = src.label.split("#")[0]
            add([attacks.bona_fide_frame(src.image, src.face_w, s, rng)], 0, g)
            add([src.image], 0, g)
            kind = "screen" if k % 4 == 0 else "print"
            add(attacks.attack_burst(kind, [src.image], src.face_w, s, rng), 1, g)
    return np.stack(xs), np.array(ys, dtype=np.float64)


L2_GRID = (10.0, 20.0, 40.0, 80.0)


def apcer_at_bpcer(logits: np.ndarray, y: np.ndarray, bpcer: float = 0.05) -> float:
    thr = np.percentile(logits[y == 0], 100 * (1 - bpcer))
    return float(np.mean(logits[y == 1] < thr))


def choose_l2(x: np.ndarray, y: np.ndarray, folds: int = 5) -> tuple[float, dict[float, float]]:
    """The L2 penalty with the lowest out-of-fold APCER at 5 % BPCER, training data only.

    Folds are contiguous blocks of the training set, which is built source by source,
    so a person's presentations stay in one fold. The held-out settings are never seen.
    """
    fold = np.arange(len(y)) * folds // len(y)
    scores = {}
    for l2 in L2_GRID:
        oof = np.zeros(len(y))
        for f in range(folds):
            mean, std, w, b = train_logistic(x[fold != f], y[fold != f], l2=l2)
            oof[fold == f] = (x[fold == f] - mean) / std @ w + b
        scores[l2] = round(apcer_at_bpcer(oof, y), 4)
    return min(scores, key=lambda k: (scores[k], -k)), scores


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=MODEL)
    ap.add_argument("--bpcer", type=float, default=0.02, help="training BPCER at threshold")
    args = ap.parse_args(argv)
    det = Detector()
    x, y = training_set(det)
    l2, cv = choose_l2(x, y)
    print(f"cross-validated APCER at 5 % BPCER per L2 penalty: {cv}; using {l2}")
    mean, std, w, b = train_logistic(x, y, l2=l2)
    z = (x - mean) / std @ w + b
    bona = np.sort(sigmoid(z[y == 0]))
    thr = float(bona[int(np.ceil((1 - args.bpcer) * len(bona))) - 1]) + 1e-6
    apcer = float(np.mean(sigmoid(z[y == 1]) < thr))
    model = PadModel(
        mean,
        std,
        w,
        b,
        thr,
        meta={
            "what": "colour LBP + crop and full-resolution spectra + colour moments, "
            "logistic regression",
            "l2": l2,
            "cv_apcer_at_bpcer5": {str(k): v for k, v in cv.items()},
            "trained_by": "python -m sim.train_pad",
            "date": dt.date.today().isoformat(),
            "train_frames": {"bona_fide": int((y == 0).sum()), "attack": int((y == 1).sum())},
            "train_bpcer": args.bpcer,
            "train_apcer": round(apcer, 4),
            "settings": "sim.attacks.TRAIN",
            "motion": {"enabled": False},
            # a burst this far over or under the threshold is pooled with one more
            # burst (PAD.borderline); re-choose with sim/pad_rule.py
            "borderline_margin": BORDERLINE_MARGIN,
            "borderline_below": BORDERLINE_BELOW,
        },
    )
    model.save(args.out)
    print(
        f"{len(y)} frames ({int((y == 0).sum())} bona fide); threshold {thr:.4f}; "
        f"train APCER {apcer:.2%} at BPCER {args.bpcer:.0%}; wrote {args.out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
