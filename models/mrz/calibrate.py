"""Choose the whole-line reader's temperature and pooling weight out of fold.

    .venv/bin/python models/mrz/calibrate.py [--cv-dir var/mrz-cv] [--write] [--shipped]

The line reader (``drivers/mrz_ctc.py``) is trained with CTC, which makes its peak columns
nearly certain whether right or wrong; pooled as they are, its confident ``0`` beats the
glyph opinions' ``O``. ``LineModel`` divides its log-probabilities by a temperature
before they are pooled, at a weight; both are numbers of the model's descriptor
(``line_ctc.json``: ``temperature``, ``pool_weight``, ``ask_under``), chosen here without the crops
they will be scored on:

- the temperature minimises the negative log-likelihood of the true character at each
  character's peak column (lines the reader reads at their true length), on the
  out-of-fold reads of the *other* folds (each read by the fold model that did not see
  it): fold k's model gets the temperature that fits folds j != k;
- the weight and where else the reader is asked (``ask_under``: also on lines whose
  least certain glyph is under it; 0 = only where the glyph read fails its check digits
  or has no MRZ length) are then the pair (of ``--weights`` x ``--ask``) under which the
  other folds' crops, read as the gate reads them (``drivers.mrz_ocr.read_line``, each by
  its own fold's models, then ``gate.mrz.repair.repair_line``), come out exact most
  often; ties go to fewer accepted-but-wrong lines, then to asking less, then to the
  weight nearest 0.5.

The shipped model (``--shipped``) gets the values that fit all five folds' out-of-fold
reads. ``--write`` stores them in the descriptors; without it the tool only prints. The
held-out crops of fold k never take part in choosing fold k's numbers (its model's
training crops do, read by the other folds' models: the usual price of a calibration
inside cross validation, a scalar or two).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from bench.mrz import DATA, accepted_line  # noqa: E402
from drivers.mrz_ctc import DESCRIPTOR, LineModel, best_path, load_line_model  # noqa: E402
from drivers.mrz_ocr import ALPHABET, layout, load_model, read_line, text_row  # noqa: E402
from drivers.mrz_recog import load_second  # noqa: E402
from gate.mrz.repair import repair_line  # noqa: E402
from models.mrz.folds import load_folds  # noqa: E402

TEMPS = [round(float(t), 2) for t in np.arange(0.5, 4.01, 0.1)]
SHIPPED = Path(__file__).resolve().parent / DESCRIPTOR


def crops_of_fold(ids: list[str]) -> list[tuple[str, np.ndarray, str]]:
    out = []
    for crop_id in ids:
        gray = cv2.imread(str(DATA / "real_lines" / f"{crop_id}.tif"), cv2.IMREAD_GRAYSCALE)
        gt = DATA / "real_lines" / f"{crop_id}.gt.txt"
        if gray is None or not gt.is_file() or not gt.read_text().strip():
            continue
        out.append((crop_id, gray, gt.read_text().strip()))
    return out


def nll_by_temperature(model: LineModel, crops: list[tuple[str, np.ndarray, str]]) -> np.ndarray:
    """Summed negative log-likelihood of the true characters, one per ``TEMPS``, over the
    crops this model reads at their true length."""
    total = np.zeros(len(TEMPS))
    for _, gray, truth in crops:
        logp = model.logp(text_row(gray, layout(gray)))
        if len(best_path(logp).text) != len(truth):
            continue
        y = [ALPHABET.index(c) for c in truth]
        for i, t in enumerate(TEMPS):
            p = best_path(logp, t).probs
            total[i] -= float(np.log(p[np.arange(len(y)), y] + 1e-9).sum())
    return total


def line_scores(
    fold: Path,
    crops: list[tuple[str, np.ndarray, str]],
    temperature: float,
    weight: float,
    ask_under: float,
) -> tuple[int, int]:
    """(exact lines, accepted-but-wrong lines) of ``crops`` read by ``fold``'s models."""
    line = load_line_model(fold)
    assert line is not None
    line = LineModel(line.session, line.input_name, temperature, weight, ask_under)
    mlp, second = load_model(fold), load_second(fold)
    exact = silent = 0
    for _, gray, truth in crops:
        read = read_line(gray, model=mlp, second=second, line_model=line, whole_line=True)
        got = repair_line(read.text, read.probs)[0]  # type: ignore[arg-type]  # rows of floats
        conf = float(read.probs.max(axis=1).min()) if len(read.text) else 0.0
        exact += got == truth
        silent += got != truth and accepted_line(got, conf)
    return exact, silent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cv-dir", type=Path, default=ROOT / "var" / "mrz-cv")
    ap.add_argument("--weights", default="0.3,0.4,0.5,0.6,0.7")
    ap.add_argument("--ask", default="0,0.9", help="ask_under values to try")
    ap.add_argument("--write", action="store_true", help="into the fold models' descriptors")
    ap.add_argument("--shipped", action="store_true", help="also into models/mrz/line_ctc.json")
    args = ap.parse_args()
    folds = load_folds()
    dirs = [args.cv_dir / f"fold-{k}" for k in range(len(folds))]
    crops = [crops_of_fold(ids) for ids in folds]
    models = [load_line_model(d) for d in dirs]
    if any(m is None for m in models):
        print(f"{args.cv_dir}: a fold has no line model (models/mrz/cv.py --only line)")
        return 1
    nll = np.stack([nll_by_temperature(m, c) for m, c in zip(models, crops, strict=True)])  # type: ignore[arg-type]
    k_all = range(len(folds))
    temps = [float(TEMPS[int(np.argmin(nll.sum(0) - nll[k]))]) for k in k_all]
    t_all = float(TEMPS[int(np.argmin(nll.sum(0)))])
    for k in k_all:
        print(
            f"fold {k}: nll at T=1 {nll[k][TEMPS.index(1.0)]:.1f}, best own T "
            f"{TEMPS[int(np.argmin(nll[k]))]}, chosen on the other folds T={temps[k]}"
        )
    grid = [(float(w), float(a)) for a in args.ask.split(",") for w in args.weights.split(",")]
    # scores[k, i]: fold k's crops read by fold k's models at its own temperature, grid[i]
    scores = np.array(
        [[line_scores(dirs[k], crops[k], temps[k], w, a) for w, a in grid] for k in k_all]
    )  # (folds, grid, 2)
    for (w, a), col in zip(grid, scores.transpose(1, 0, 2), strict=True):
        print(
            f"weight {w} ask_under {a}: exact per fold {col[:, 0].tolist()} ({int(col[:, 0].sum())}), "
            f"accepted-but-wrong {col[:, 1].tolist()} ({int(col[:, 1].sum())})",
            flush=True,
        )

    def pick(rows: np.ndarray) -> tuple[float, float]:
        exact, silent = rows[:, :, 0].sum(0), rows[:, :, 1].sum(0)
        best = max(
            range(len(grid)),
            key=lambda i: (exact[i], -silent[i], -grid[i][1], -abs(grid[i][0] - 0.5)),
        )
        return grid[best]

    chosen = [pick(np.delete(scores, k, axis=0)) for k in k_all]
    chosen_all = pick(scores)
    held = [tuple(int(v) for v in scores[k, grid.index(chosen[k])]) for k in k_all]
    print(
        f"chosen per fold: T {temps}, (weight, ask_under) {chosen}; held out at the chosen "
        f"values, exact / accepted-but-wrong per fold {held} (sum "
        f"{sum(h[0] for h in held)} / {sum(h[1] for h in held)})"
    )
    print(f"for the shipped model (all folds): T={t_all}, (weight, ask_under)={chosen_all}")
    targets = list(zip(dirs, temps, chosen, strict=True)) if args.write else []
    if args.shipped:
        targets.append((SHIPPED.parent, t_all, chosen_all))
    for d, t, (w, a) in targets:
        path = d / DESCRIPTOR
        desc = json.loads(path.read_text())
        desc["temperature"], desc["pool_weight"], desc["ask_under"] = t, w, a
        desc["calibrated_with"] = (
            f"models/mrz/calibrate.py --cv-dir {args.cv_dir} --weights {args.weights} "
            f"--ask {args.ask}"
        )
        path.write_text(json.dumps(desc, indent=1) + "\n")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
