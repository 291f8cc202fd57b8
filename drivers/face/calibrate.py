"""Calibrate a matcher on a labelled pair set (ISO/IEC 19795-1 terms).

Each image is embedded once (cached in a ``.npz`` per backend and weights, each entry
keyed by the image's content hash), then every pair is scored. A pair's side may be a
folder of frames, a live burst, which is fused as the verifier fuses one (``fusion.py``):
calibrate a fused score on bursts, never on stills. The threshold for a target FMR is the lowest score that at most
``target * impostors`` impostor pairs reach; FNMR is read off at that threshold. Groups
come from ``manifest.csv`` (gender, ethnicity) where the set has them: a genuine pair
belongs to its person's group, an impostor pair to a group when both people are in it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from drivers.face.detect import Detector, decode_image
from drivers.face.fusion import embed_burst
from drivers.face.match import Matcher
from drivers.face.quality import QualityLimits, assess


@dataclass
class PairSet:
    root: Path
    a: list[str]
    b: list[str]
    same: np.ndarray  # bool

    @property
    def images(self) -> list[str]:
        return sorted(set(self.a) | set(self.b))


def read_pairs(path: str | Path) -> PairSet:
    path = Path(path)
    a, b, same = [], [], []
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            a.append(row["a"])
            b.append(row["b"])
            same.append(row["same"].strip() == "1")
    return PairSet(path.parent, a, b, np.array(same, dtype=bool))


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def content_key(path: Path) -> str:
    """SHA-256 of an image's bytes, or of a burst folder's frames in name order.

    The embedding cache is keyed by this, never by the path: two pair sets that use the
    same file names for different people must not share embeddings.
    """
    if path.is_dir():
        h = hashlib.sha256(b"burst")
        for f in burst_files(path):
            h.update(hashlib.sha256(f.read_bytes()).digest())
        return h.hexdigest()
    return hashlib.sha256(path.read_bytes()).hexdigest()


def burst_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".jp2", ".ppm", ".webp"}


def _embed_one(
    path: Path, matcher: Matcher, detector: Detector, frames: int, limits: QualityLimits
) -> tuple[np.ndarray | None, bool]:
    """(embedding, passes the live quality gate) of a still, or of a burst folder fused
    over its best ``frames`` passing frames exactly as the verifier fuses a live burst."""
    if path.is_dir():
        imgs = [
            i for i in (decode_image(f.read_bytes()) for f in burst_files(path)) if i is not None
        ]
        if not imgs:
            return None, False
        vec, qualities = embed_burst(matcher, detector, imgs, frames, limits)
        return vec, vec is not None
    img = decode_image(path.read_bytes())
    faces = detector.detect(img) if img is not None else []
    if not faces or img is None:
        return None, False
    return matcher.embed(img, faces[0]), assess(img, faces, limits).passed


def embed_images(
    root: Path,
    names: list[str],
    matcher: Matcher,
    detector: Detector,
    cache: Path | None = None,
    tag: str = "",
    progress: Callable[[int], None] | None = None,
    passed: dict[str, bool] | None = None,
    frames: int = 1,
) -> dict[str, np.ndarray | None]:
    """Embedding of the largest face of each image (None: unreadable or no face).

    A name that is a folder is a live burst: its frames are fused (``frames`` at most).
    ``passed``, when given, is filled with whether each image passes the live-frame
    quality gate (default limits), so FNMR can also be read on gate-quality pairs. The
    cache holds embeddings by content (``content_key``) under ``tag``.
    """
    stored: dict[str, tuple[np.ndarray | None, bool]] = {}
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if "keys" in z.files and str(z["tag"]) == tag:
                for key, vec, ok in zip(z["keys"], z["vecs"], z["passed"], strict=True):
                    stored[str(key)] = (None if np.isnan(vec).any() else vec, bool(ok))
    done: dict[str, np.ndarray | None] = {}
    qpass: dict[str, bool] = {}
    limits = QualityLimits()
    fresh = False
    for name in names:
        key = content_key(root / name)
        if (root / name).is_dir():
            key = f"{key}:fused{frames}"  # the same burst fused over fewer frames differs
        if key not in stored:
            stored[key] = _embed_one(root / name, matcher, detector, frames, limits)
            fresh = True
        done[name], qpass[name] = stored[key]
        if progress:
            progress(1)
    dims = {len(v) for v, _ in stored.values() if v is not None}
    if cache is not None and fresh and len(dims) == 1:
        dim = dims.pop()
        keys = sorted(stored)
        vecs = np.stack(
            [v if (v := stored[k][0]) is not None else np.full(dim, np.nan) for k in keys]
        )
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            cache,
            keys=np.array(keys),
            vecs=vecs.astype(np.float32),
            passed=np.array([stored[k][1] for k in keys]),
            tag=np.array(tag),
        )
    if passed is not None:
        passed.update(qpass)
    return done


def pair_scores(pairs: PairSet, vecs: dict[str, np.ndarray | None], matcher: Matcher) -> np.ndarray:
    """Score per pair; NaN where either image had no face (failure to acquire)."""
    out = np.full(len(pairs.a), np.nan, dtype=np.float64)
    for i, (a, b) in enumerate(zip(pairs.a, pairs.b, strict=True)):
        va, vb = vecs.get(a), vecs.get(b)
        if va is not None and vb is not None:
            out[i] = matcher.score(va, vb)
    return out


def threshold_at_fmr(impostor: np.ndarray, target: float) -> float:
    """Lowest threshold where the share of impostor scores >= it is at most ``target``."""
    imp = np.sort(impostor[~np.isnan(impostor)])[::-1]
    k = int(np.floor(target * len(imp)))
    if k >= len(imp):
        return float(imp[-1])
    return float(np.nextafter(imp[k], np.inf))


def rates(genuine: np.ndarray, impostor: np.ndarray, threshold: float) -> tuple[float, float]:
    """(FMR, FNMR) at ``threshold``; a genuine pair without a score counts as a non-match."""
    imp = impostor[~np.isnan(impostor)]
    fmr = float(np.mean(imp >= threshold)) if len(imp) else float("nan")
    fnmr = (
        float(np.mean(~(np.nan_to_num(genuine, nan=-np.inf) >= threshold)))
        if len(genuine)
        else float("nan")
    )
    return fmr, fnmr


def det_curve(genuine: np.ndarray, impostor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FMR and FNMR at every distinct score (the DET curve's points)."""
    g = np.nan_to_num(genuine, nan=-np.inf)
    imp = impostor[~np.isnan(impostor)]
    ts = np.unique(np.concatenate([g[np.isfinite(g)], imp]))
    gs, is_ = np.sort(g), np.sort(imp)
    fnmr = np.searchsorted(gs, ts, side="left") / len(gs)
    fmr = 1.0 - np.searchsorted(is_, ts, side="left") / len(is_)
    return fmr, fnmr


def plot_det(
    curves: dict[str, tuple[np.ndarray, np.ndarray]],
    out: Path,
    marks: Iterable[tuple[str, float, float]] = (),
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5), dpi=100)
    for label, (fmr, fnmr) in curves.items():
        ok = (fmr > 0) & (fnmr > 0)
        ax.plot(fmr[ok], fnmr[ok], label=label)
    for label, at_fmr, at_fnmr in marks:
        ax.plot([max(at_fmr, 1e-5)], [max(at_fnmr, 1e-5)], "o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(1e-5, 1)
    ax.set_ylim(1e-3, 1)
    ax.set_xlabel("FMR (false match rate)")
    ax.set_ylabel("FNMR (false non-match rate)")
    ax.set_title("DET curve")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)


@dataclass
class GroupRow:
    attribute: str
    group: str
    genuine: int
    impostor: int
    fmr: float
    fnmr: float


def read_manifest(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as f:
        return {row["path"]: row for row in csv.DictReader(f)}


def per_group(
    pairs: PairSet,
    scores: np.ndarray,
    manifest: dict[str, dict[str, str]],
    threshold: float,
    attributes: tuple[str, ...] = ("gender", "ethnicity"),
) -> list[GroupRow]:
    rows: list[GroupRow] = []
    for attr in attributes:
        ga = np.array([manifest.get(p, {}).get(attr, "") for p in pairs.a])
        gb = np.array([manifest.get(p, {}).get(attr, "") for p in pairs.b])
        for group in sorted(set(ga) | set(gb)):
            if not group:
                continue
            both = (ga == group) & (gb == group)
            gen, imp = scores[both & pairs.same], scores[both & ~pairs.same]
            fmr, fnmr = rates(gen, imp, threshold)
            rows.append(GroupRow(attr, group, len(gen), len(imp), fmr, fnmr))
    return rows


@dataclass
class Calibration:
    genuine: np.ndarray
    impostor: np.ndarray
    threshold: float
    target_fmr: float
    fmr: float
    fnmr: float
    failures: int
    groups: list[GroupRow] = field(default_factory=list)

    def summary(self, pairs_path: Path) -> dict[str, object]:
        return {
            "set": str(pairs_path),
            "pairs_sha256": file_sha256(pairs_path),
            "genuine_pairs": int(len(self.genuine)),
            "impostor_pairs": int(len(self.impostor)),
            "images_without_face": self.failures,
            "target_fmr": self.target_fmr,
            "fmr_at_threshold": round(self.fmr, 6),
            "fnmr_at_threshold": round(self.fnmr, 6),
            "date": dt.date.today().isoformat(),
        }


def calibrate(
    pairs: PairSet,
    scores: np.ndarray,
    target_fmr: float,
    failures: int,
    manifest: dict[str, dict[str, str]],
) -> Calibration:
    gen, imp = scores[pairs.same], scores[~pairs.same]
    thr = threshold_at_fmr(imp, target_fmr)
    fmr, fnmr = rates(gen, imp, thr)
    groups = per_group(pairs, scores, manifest, thr)
    return Calibration(gen, imp, thr, target_fmr, fmr, fnmr, failures, groups)
