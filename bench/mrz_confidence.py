"""Calibrate the reader's doubt on real print, cross-validated, so a threshold means something.

    .venv/bin/python bench/mrz_confidence.py [--folds 5] [--recall 0.8]

Every real line crop of ``../shared/data/mrz/real_lines`` is read alone; each character
gets its margin (top probability minus the runner-up's) and is right or wrong against
the ground truth. Crops are split into ``--folds`` folds by source document (seeded,
fixed: ``SPLIT_SEED``); for each fold the margin threshold is chosen on the other folds
as the smallest that flags ``--recall`` of their wrong characters, and then scored on the
held-out fold only. Reported: wrong characters that pass the threshold and correct ones
it flags, and per line: correct lines that carry a flag, wrong lines that carry none (the
"valid but wrong" risk when no check digit covers the error). The same for the line
confidence (lowest top probability; ``DOC_LOW_CONFIDENCE`` at 0.55 today), and for a
line-confidence threshold chosen per fold the same way.

The recogniser here is whichever model ``models/mrz`` holds, unless ``--cv-dir DIR``
names the per-fold models of ``models/mrz/cv.py`` (``DIR/fold-K``): the shipped model is
trained on these crops, so it must be scored with its own cross-validation folds, or these
figures flatter it. With ``--cv-dir`` each crop is read by the models of the fold that
held it out, and the folds are those of ``models/mrz/folds.json``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivers.mrz_ctc import load_line_model  # noqa: E402
from drivers.mrz_ocr import load_model, read_line  # noqa: E402
from drivers.mrz_recog import load_second  # noqa: E402
from sim.real_pages import load_crops  # noqa: E402

SPLIT_SEED = 21
GRID = np.round(np.arange(0.05, 1.0001, 0.01), 2)


def _doc(name: str) -> str:
    m = re.match(r"(.*)-\d+$", name)
    return m.group(1) if m else name


def trained_folds() -> dict[str, int]:
    """Crop name -> the fold of ``models/mrz/folds.json`` that holds it out."""
    import json

    path = Path(__file__).resolve().parents[1] / "models" / "mrz" / "folds.json"
    folds = json.loads(path.read_text())["folds"]
    return {name: k for k, names in enumerate(folds) for name in names}


def measure(
    cv_dir: Path | None = None,
) -> tuple[list[np.ndarray], list[np.ndarray], list[float], list[str], int, list[int]]:
    margins, right, low, docs, held = [], [], [], [], []
    skipped = 0
    fold_of = trained_folds() if cv_dir else {}
    models = (
        {
            k: (load_model(d), load_second(d), load_line_model(d))
            for k in set(fold_of.values())
            if (d := cv_dir / f"fold-{k}").is_dir()
        }
        if cv_dir
        else {}
    )
    for c in load_crops():
        kw = {}
        if cv_dir:
            k = fold_of[c.name]
            # a fold without a line model reads without one: never the shipped one,
            # which saw every crop
            kw = {
                "model": models[k][0],
                "second": models[k][1],
                "line_model": models[k][2],
                "whole_line": models[k][2] is not None,
            }
        r = read_line(c.image, allowed=(30, 36, 44), **kw)
        if len(r.text) != len(c.text):
            skipped += 1  # a wrong length is refused by the format check, never accepted
            continue
        p = np.sort(r.probs, axis=1)
        margins.append(p[:, -1] - p[:, -2])
        right.append(np.array([a == b for a, b in zip(r.text, c.text, strict=True)]))
        low.append(float(p[:, -1].min()))
        docs.append(_doc(c.name))
        held.append(fold_of.get(c.name, -1))
    return margins, right, low, docs, skipped, held


def folds_of(docs: list[str], k: int) -> np.ndarray:
    names = sorted(set(docs))
    order = np.random.default_rng(SPLIT_SEED).permutation(len(names))
    fold_of = {names[i]: j % k for j, i in enumerate(order)}
    return np.array([fold_of[d] for d in docs])


def choose(margins: list[np.ndarray], right: list[np.ndarray], recall: float) -> float:
    wrong = np.concatenate([m[~r] for m, r in zip(margins, right, strict=True)])
    if len(wrong) == 0:
        return float(GRID[0])
    for t in GRID:
        if np.mean(wrong < t) >= recall:
            return float(t)
    return float(GRID[-1])


def at_margins(
    margins: list[np.ndarray], right: list[np.ndarray], fixed: list[float]
) -> list[tuple[float, int, int, int, int]]:
    """At each fixed margin: (margin, wrong lines unflagged, wrong lines, right lines
    flagged, right lines) over every crop (held-out reads when ``--cv-dir`` is given)."""
    out = []
    for t in fixed:
        bad = [not r.all() for r in right]
        flagged = [bool((m < t).any()) for m in margins]
        out.append(
            (
                t,
                sum(b and not f for b, f in zip(bad, flagged, strict=True)),
                sum(bad),
                sum(f and not b for b, f in zip(bad, flagged, strict=True)),
                len(bad) - sum(bad),
            )
        )
    return out


def rendered_pages(n: int, fixed: list[float]) -> list[tuple[str, float, int, int, int]]:
    """Rendered data pages (``sim.page``, every 4th a TD1 card, seeds 100000+) read by the
    shipped model, which never saw them: per level and margin, (level, margin, exact pages
    with an uncertain field, exact pages, pages)."""
    import datetime as dt

    from drivers.scanner import read_image
    from sim.page import render_page

    out = []
    for level in ("clean", "mild", "moderate"):
        pages = [render_page(100000 + i, level, "TD1" if i % 4 == 3 else "TD3") for i in range(n)]
        for t in fixed:
            doubted = exact = 0
            for img, _, lines in pages:
                res = read_image(img, today=dt.date(2026, 12, 7), min_margin=t)
                ok = res.mrz is not None and tuple(res.mrz.lines) == tuple(lines)
                exact += ok
                doubted += ok and bool(res.uncertain)
            out.append((level, t, doubted, exact, n))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--margins", default="0.5,0.6,0.7,0.8", help="fixed margins to report (comma-separated)"
    )
    ap.add_argument("--pages", type=int, default=0, help="rendered pages per level to read")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--recall", type=float, default=0.8, help="wrong characters to flag")
    ap.add_argument("--cv-dir", type=Path, default=None, help="per-fold models (cv.py)")
    args = ap.parse_args()
    margins, right, low, docs, skipped, held = measure(args.cv_dir)
    fold = np.array(held) if args.cv_dir else folds_of(docs, args.folds)
    args.folds = int(fold.max()) + 1 if args.cv_dir else args.folds
    chars = {"wrong": 0, "wrong passed": 0, "right": 0, "right flagged": 0}
    lines = {"wrong": 0, "wrong unflagged": 0, "right": 0, "right flagged": 0}
    old = {"wrong passed": 0, "right under": 0}
    conf = {"wrong passed": 0, "right under": 0}
    chosen, chosen_conf = [], []
    for f in range(args.folds):
        train = [i for i in range(len(docs)) if fold[i] != f]
        t = choose([margins[i] for i in train], [right[i] for i in train], args.recall)
        chosen.append(t)
        # the line confidence (lowest top probability), chosen the same way per line
        wrong_low = np.array([low[i] for i in train if not right[i].all()])
        tc = next(
            (float(c) for c in GRID if len(wrong_low) and np.mean(wrong_low < c) >= args.recall),
            1.0,
        )
        chosen_conf.append(tc)
        for i in np.flatnonzero(fold == f):
            m, r = margins[i], right[i]
            chars["wrong"] += int((~r).sum())
            chars["wrong passed"] += int((m[~r] >= t).sum())
            chars["right"] += int(r.sum())
            chars["right flagged"] += int((m[r] < t).sum())
            bad = not r.all()
            lines["wrong" if bad else "right"] += 1
            flagged = bool((m < t).any())
            if bad and not flagged:
                lines["wrong unflagged"] += 1
            if not bad and flagged:
                lines["right flagged"] += 1
            old["wrong passed"] += int(bad and low[i] >= 0.55)
            old["right under"] += int(not bad and low[i] < 0.55)
            conf["wrong passed"] += int(bad and low[i] >= tc)
            conf["right under"] += int(not bad and low[i] < tc)
    print(f"real line crops read: {len(docs)} ({skipped} of a wrong length, refused)")
    print(f"margin threshold per fold (chosen on the other folds): {chosen}")
    print(f"line confidence threshold per fold, chosen alike: {chosen_conf}")
    print("| measure (held-out folds only) | count | of | rate |")
    print("| --- | --- | --- | --- |")

    def row(label: str, n: int, of: int) -> None:
        print(f"| {label} | {n} | {of} | {100 * n / max(of, 1):.2f} % |")

    row("wrong characters passing the margin", chars["wrong passed"], chars["wrong"])
    row("right characters flagged", chars["right flagged"], chars["right"])
    row("wrong lines with no flagged character", lines["wrong unflagged"], lines["wrong"])
    row("right lines with a flagged character", lines["right flagged"], lines["right"])
    row("old confidence 0.55: wrong lines above it", old["wrong passed"], lines["wrong"])
    row("old confidence 0.55: right lines under it", old["right under"], lines["right"])
    row("confidence per fold: wrong lines above it", conf["wrong passed"], lines["wrong"])
    row("confidence per fold: right lines under it", conf["right under"], lines["right"])
    fixed = [float(v) for v in args.margins.split(",")]
    print()
    print("| fixed margin | wrong lines unflagged | right lines flagged |")
    print("| --- | --- | --- |")
    for t, wu, w, rf, r in at_margins(margins, right, fixed):
        print(f"| {t:.2f} | {wu} of {w} | {rf} of {r} ({100 * rf / max(r, 1):.1f} %) |")
    if args.pages:
        print()
        print("| rendered pages (shipped model) | margin | exact pages with an uncertain field |")
        print("| --- | --- | --- |")
        for level, t, d, e, n in rendered_pages(args.pages, fixed):
            print(f"| {level} ({n}) | {t:.2f} | {d} of {e} exact |")


if __name__ == "__main__":
    main()
