"""Calibrate a matcher on a labelled pair set (ISO/IEC 19795-1 terms).

Each image is embedded once (cached in a ``.npz`` keyed by backend and weights), then
every pair is scored. The threshold for a target FMR is the lowest score that at most
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


def embed_images(
    root: Path,
    names: list[str],
    matcher: Matcher,
    detector: Detector,
    cache: Path | None = None,
    tag: str = "",
    progress: Callable[[int], None] | None = None,
    passed: dict[str, bool] | None = None,
) -> dict[str, np.ndarray | None]:
    """Embedding of the largest face of each image (None: unreadable or no face).

    ``passed``, when given, is filled with whether each image passes the live-frame
    quality gate (default limits), so FNMR can also be read on gate-quality pairs.
    """
    done: dict[str, np.ndarray | None] = {}
    qpass: dict[str, bool] = {}
    if cache is not None and cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["tag"]) == tag:
                qs = z["passed"] if "passed" in z.files else None
                for i, (name, vec) in enumerate(zip(z["names"], z["vecs"], strict=True)):
                    done[str(name)] = None if np.isnan(vec).any() else vec
                    if qs is not None:
                        qpass[str(name)] = bool(qs[i])
    dim = None
    limits = QualityLimits()
    for name in names:
        if name not in done:
            img = decode_image((root / name).read_bytes())
            faces = detector.detect(img) if img is not None else []
            done[name] = matcher.embed(img, faces[0]) if faces else None
            qpass[name] = bool(faces) and assess(img, faces, limits).passed
        if done[name] is not None:
            dim = len(done[name])
        if progress:
            progress(1)
    if cache is not None and dim:
        cache.parent.mkdir(parents=True, exist_ok=True)
        keys = sorted(done)
        vecs = np.stack([done[k] if done[k] is not None else np.full(dim, np.nan) for k in keys])
        extra = {"passed": np.array([qpass[k] for k in keys])} if set(keys) <= set(qpass) else {}
        np.savez(
            cache, names=np.array(keys), vecs=vecs.astype(np.float32), tag=np.array(tag), **extra
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
    for label, fmr, fnmr in marks:
        ax.plot([max(fmr, 1e-5)], [max(fnmr, 1e-5)], "o", label=label)
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
