"""MRZ reading benchmark: autogate's reader against PassportEye on the same inputs.

    /work/main/.venv/bin/python bench/mrz.py [--per-level 80] [--lines 0] [--no-passporteye]

(``--per-level 0 --no-passporteye``: the line crops alone, in seconds, with the breakdown
of autogate's errors.)

Inputs: ``--per-level`` rendered data pages (``sim/page.py``; every 4th a TD1 card) per
degradation level, written once as PNG so both readers decode the same file; and the real
MRZ line crops in ``../shared/data/mrz/real_lines`` (``--lines`` limits them, 0 = all).
PassportEye gets its best setup: Tesseract with the MRZ-trained model of the tesseractMRZ
project (``../shared/data/mrz/tessdata``), installed as ``eng.traineddata`` in a temp
folder that ``TESSDATA_PREFIX`` points at. On line crops PassportEye's own Tesseract call
(``passporteye.util.ocr.ocr``, MRZ mode) reads each crop; autogate's ``read_line`` reads
it without being told the length, then ``repair_line`` applies the field-type repair the
page reader applies (which line of which format it is, guessed from length and content),
leaning to digits in mixed fields where the recogniser's probabilities allow it. Prints a Markdown table; "valid but wrong" counts
reads the reader accepted (valid check digits; for autogate also no low-confidence flag
and no uncertain field, ``gate.mrz.certainty``) that differ from the truth: the errors a
gate would not notice.

The recognisers are trained on the real crops too, so crops are scored by 5-fold cross
validation: each with the models of its fold of ``models/mrz/folds.json`` that did not
see it (``models/mrz/cv.py`` writes them to ``var/mrz-cv/``), photographed documents and
the set's rendered lines apart, first opinion alone and with the second.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from drivers.mrz_ctc import LineModel, load_line_model  # noqa: E402
from drivers.mrz_ocr import LineRead, Mlp, load_model, read_line  # noqa: E402
from drivers.mrz_recog import SecondOpinion, load_second  # noqa: E402
from drivers.scanner import LOW_CONFIDENCE, read_image  # noqa: E402
from gate.mrz.certainty import unsure  # noqa: E402
from gate.mrz.layout import TD1, TD2, TD3, Layout, Span  # noqa: E402
from gate.mrz.repair import _line_checks, repair_line  # noqa: E402
from models.mrz.folds import is_rendered, load_folds  # noqa: E402
from sim.page import LEVELS, render_page  # noqa: E402

DATA = ROOT / "../shared/data/mrz"
TODAY = dt.date(2026, 11, 25)
CV_DIR = ROOT / "var" / "mrz-cv"
ERRATA = ROOT / "models" / "mrz" / "label_errata.json"


def levenshtein(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def char_acc(got: str, truth: str) -> float:
    return max(0.0, 1 - levenshtein(got, truth) / len(truth))


class Stats:
    def __init__(self) -> None:
        self.exact: list[bool] = []
        self.chars: list[float] = []
        self.times: list[float] = []
        self.silent: list[bool] = []  # accepted as valid, yet wrong

    def add(self, got: str, truth: str, seconds: float, accepted: bool = False) -> None:
        self.silent.append(accepted and got != truth)
        self.exact.append(got == truth)
        self.chars.append(char_acc(got, truth))
        self.times.append(seconds)

    def row(self) -> tuple[str, str, str, str, str]:
        t = sorted(self.times)
        p95 = t[min(len(t) - 1, int(0.95 * len(t)))]
        return (
            f"{100 * np.mean(self.exact):.1f} %",
            f"{sum(self.silent)}",
            f"{100 * np.mean(self.chars):.2f} %",
            f"{1000 * statistics.median(t):.0f}",
            f"{1000 * p95:.0f}",
        )


def passporteye_setup() -> (
    tuple[Callable[[str], tuple[str, bool]], Callable[[np.ndarray], str]] | str
):
    """PassportEye's page and line readers, or why they cannot run."""
    warnings.filterwarnings("ignore", category=FutureWarning)  # skimage deprecations
    try:
        from passporteye import read_mrz
        from passporteye.mrz.text import MRZOCRCleaner
        from passporteye.util.ocr import ocr
    except ImportError as exc:
        return f"passporteye not installed ({exc})"
    tess = Path(tempfile.mkdtemp(prefix="mrz-tessdata-"))
    shutil.copy(DATA / "tessdata" / "mrz.traineddata", tess / "eng.traineddata")
    os.environ["TESSDATA_PREFIX"] = str(tess)

    def page(path: str) -> tuple[str, bool]:
        mrz = read_mrz(path)
        if mrz is None:
            return "", False
        # the lines PassportEye itself parsed, after its own OCR clean-up
        return "\n".join(MRZOCRCleaner.apply(mrz.aux["raw_text"])), bool(mrz.valid)

    def line(gray: np.ndarray) -> str:
        return ocr(gray, mrz_mode=True).replace(" ", "").strip()

    return page, line


class Errors:
    """What went wrong on the line crops: substitutions (truth -> read) and length errors."""

    def __init__(self) -> None:
        self.subs: Counter[str] = Counter()
        self.lengths: Counter[int] = Counter()
        self.length_chars = 0  # edit distance of the lines read at a wrong length

    def add(self, got: str, truth: str) -> None:
        if len(got) != len(truth):
            self.lengths[len(got) - len(truth)] += 1
            self.length_chars += levenshtein(got, truth)
        else:
            self.subs.update(f"{t}>{g}" for g, t in zip(got, truth, strict=True) if g != t)

    def report(self) -> str:
        top = ", ".join(f"{k} {v}" for k, v in self.subs.most_common(12))
        return (
            f"substituted characters {sum(self.subs.values())} ({top}); lines of a wrong "
            f"length {sum(self.lengths.values())} ({self.length_chars} edits)"
        )


def _line_guess(text: str) -> tuple[Layout, int] | None:
    """Which line of which format a line is, from its length and how its characters fit
    the fields' kinds (digits where only digits go, letters or fillers where letters)."""
    best: tuple[float, Layout, int] | None = None
    for lay in (TD1, TD2, TD3):
        if len(text) != lay.width:
            continue
        for li in range(lay.lines):
            spans = [sp for sp in lay.spans() if sp.line == li and sp.kind != "alnum"]
            ok = sum(
                (c.isdigit() if sp.kind == "digit" else not c.isdigit())
                for sp in spans
                for c in text[sp.start : sp.end]
            )
            score = ok / max(1, sum(sp.end - sp.start for sp in spans))
            if best is None or score > best[0]:
                best = (score, lay, li)
    return None if best is None else (best[1], best[2])


def _fields(lay: Layout, li: int) -> dict[str, Span]:
    return {
        f.name: getattr(lay, f.name)
        for f in dataclasses.fields(lay)
        if isinstance(getattr(lay, f.name), Span) and getattr(lay, f.name).line == li
    }


def accepted_line(text: str, confidence: float, probs: np.ndarray | None = None) -> bool:
    """Whether a gate would take this line as read: every check digit on it holds (a
    name line has none), no character is under the scanner's low-confidence mark and,
    given the recogniser's ``probs``, no field of the line is uncertain
    (``gate.mrz.certainty``: the policy refers those unless the chip confirms them)."""
    guess = _line_guess(text)
    if guess is None or confidence < LOW_CONFIDENCE:
        return False
    lay, li = guess
    if probs is not None and len(probs) == len(text):
        rows = [probs.tolist()] * lay.lines
        if any(line == li for _, line, _, _ in unsure([text] * lay.lines, rows, lay)):
            return False
    return _line_checks(text, lay, li) is not False


def wrong_fields(got: str, truth: str) -> list[str]:
    guess = _line_guess(truth)
    if guess is None or len(got) != len(truth):
        return ["length"]
    return [
        name
        for name, sp in _fields(*guess).items()
        if got[sp.start : sp.end] != truth[sp.start : sp.end]
    ]


def _fold_models(cv_dir: Path) -> list[tuple[Mlp, SecondOpinion, LineModel | None]] | None:
    """Each fold's three recognisers; a fold without a line model (``models/mrz/ctc.py``
    not run for it) reads with the glyph opinions alone."""
    try:
        ids = load_folds()
        return [
            (
                load_model(cv_dir / f"fold-{k}"),
                load_second(cv_dir / f"fold-{k}"),
                load_line_model(cv_dir / f"fold-{k}"),
            )
            for k in range(len(ids))
        ]
    except (OSError, KeyError, ValueError):
        return None


def label_errata(path: Path = ERRATA) -> dict[str, str]:
    """Crop id -> corrected ground truth (``models/mrz/label_errata.json``, with reasons)."""
    return {k: v["corrected"] for k, v in json.loads(path.read_text())["errata"].items()}


def _confidence(read: LineRead) -> float:
    return float(read.probs.max(axis=1).min()) if len(read.text) else 0.0


def crop_rows(
    max_lines: int,
    pe: tuple | str,
    cv_dir: Path,
    errors: Errors,
    wrong: Counter[str],
) -> list[tuple[str, ...]]:
    """The real line crops, each read only by the fold model that did not see it (the
    shipped model was trained on all of them), first opinion alone and with the second."""
    folds = load_folds()
    fold_of = {i: k for k, f in enumerate(folds) for i in f}
    models = _fold_models(cv_dir)
    files = sorted((DATA / "real_lines").glob("*.tif"))
    if max_lines:
        files = files[:max_lines]
    parts = {"all": "", "documents": " photographed", "rendered": " rendered by the set's makers"}
    ours = {p: Stats() for p in parts}
    line_opt = {p: Stats() for p in parts}
    first = {p: Stats() for p in parts}
    theirs = {p: Stats() for p in parts}
    corrected = {"all": Stats(), "documents": Stats()}
    corrected_line = {"all": Stats(), "documents": Stats()}
    errors_line, wrong_line = Errors(), Counter[str]()
    errata = label_errata()
    asked = asked_line = 0
    for f in files:
        gray = cv2.imread(str(f), cv2.IMREAD_GRAYSCALE)
        truth = f.with_name(f.stem + ".gt.txt").read_text().strip()
        if gray is None or not truth:
            continue
        part = "rendered" if is_rendered(f.stem) else "documents"
        mlp, second, lines = models[fold_of[f.stem]] if models else (None, None, None)
        t0 = time.perf_counter()
        alone = read_line(gray, model=mlp, unsure=0.0, whole_line=False)
        t_alone = time.perf_counter() - t0
        t0 = time.perf_counter()
        read = read_line(gray, model=mlp, second=second, whole_line=False)  # glyph opinions
        got = repair_line(read.text, read.probs)[0]
        seconds = time.perf_counter() - t0
        t0 = time.perf_counter()
        # the default, with the whole-line reader: its own fold's model only
        withl = read_line(gray, model=mlp, second=second, line_model=lines, whole_line=bool(lines))
        t_line = time.perf_counter() - t0
        got_line = repair_line(withl.text, withl.probs)[0]
        asked += not np.array_equal(read.probs, alone.probs)
        asked_line += not np.array_equal(read.probs, withl.probs)
        ok = accepted_line(got, _confidence(read), read.probs)
        ok_line = accepted_line(got_line, _confidence(withl), withl.probs)
        got_alone = repair_line(alone.text, alone.probs)[0]
        ok_alone = accepted_line(got_alone, _confidence(alone), alone.probs)
        for p in ("all", part):
            ours[p].add(got, truth, seconds, ok)
            line_opt[p].add(got_line, truth, t_line, ok_line)
            first[p].add(got_alone, truth, t_alone, ok_alone)
            if p in corrected:
                corrected[p].add(got, errata.get(f.stem, truth), seconds, ok)
                corrected_line[p].add(got_line, errata.get(f.stem, truth), t_line, ok_line)
        errors.add(got, truth)
        errors_line.add(got_line, truth)
        if ok and got != truth:
            wrong.update(wrong_fields(got, truth))
        if ok_line and got_line != truth:
            wrong_line.update(wrong_fields(got_line, truth))
        if not isinstance(pe, str):
            t0 = time.perf_counter()
            pe_got = pe[1](gray)
            dt_pe = time.perf_counter() - t0
            for p in ("all", part):
                theirs[p].add(pe_got, truth, dt_pe, accepted_line(pe_got, 1.0))
    how = "cross-validated" if models else "shipped model, trained on them"
    rows: list[tuple[str, ...]] = []
    for p, label in parts.items():
        if not ours[p].times:
            continue
        n = f"real line crops{label} ({len(ours[p].times)}), {how}"
        rows.append((n, "autogate (with the whole-line reader)", *line_opt[p].row()))
        rows.append((n, "autogate, glyph opinions only", *ours[p].row()))
        rows.append((n, "autogate, first opinion alone", *first[p].row()))
        if p in corrected:
            n2 = f"{n}, {len(errata)} labels corrected (models/mrz/label_errata.json)"
            rows.append((n2, "autogate (with the whole-line reader)", *corrected_line[p].row()))
            rows.append((n2, "autogate, glyph opinions only", *corrected[p].row()))
        if theirs[p].times:
            rows.append((n, "PassportEye", *theirs[p].row()))
    total = len(ours["all"].times)
    rows.append((f"second opinion asked on {asked} of {total} lines",))
    rows.append((f"the whole-line reader was asked and pooled on {asked_line} of {total} lines",))
    rows.append((f"with the whole-line reader, errors: {errors_line.report()}",))
    fields = ", ".join(f"{k} {v}" for k, v in wrong_line.most_common()) or "none"
    rows.append((f"with the whole-line reader, valid-but-wrong by field: {fields}",))
    if not models:
        rows.append((f"no fold models in {cv_dir}: run models/mrz/cv.py for the CV figure",))
    return rows


def run(per_level: int, max_lines: int, with_pe: bool, cv_dir: Path) -> str:
    pe = passporteye_setup() if with_pe else "not run (--no-passporteye)"
    pe_note = pe if isinstance(pe, str) else ""
    load_model()
    rows: list[tuple[str, ...]] = []
    tmp = Path(tempfile.mkdtemp(prefix="mrz-bench-"))
    for li, level in enumerate(LEVELS if per_level else ()):
        ours, theirs = Stats(), Stats()
        for i in range(per_level):
            seed = 100_000 + 1000 * li + i
            img, _, lines = render_page(seed, level, "TD1" if i % 4 == 3 else "TD3")
            path = tmp / f"{level}-{i}.png"
            cv2.imwrite(str(path), img)
            truth = "\n".join(lines)
            t0 = time.perf_counter()
            res = read_image(path, today=TODAY)
            dt_ours = time.perf_counter() - t0
            accepted = res.mrz is not None and res.mrz.valid and not res.reasons
            ours.add("\n".join(res.mrz.lines) if res.mrz else "", truth, dt_ours, accepted)
            if not isinstance(pe, str):
                t0 = time.perf_counter()
                try:
                    got, valid = pe[0](str(path))
                except Exception as exc:  # PassportEye raises on some pages: a failed read
                    got, valid = f"error {type(exc).__name__}", False
                theirs.add(got, truth, time.perf_counter() - t0, valid)
        n = f"{level} pages ({per_level})"
        rows.append((n, "autogate", *ours.row()))
        if theirs.times:
            rows.append((n, "PassportEye", *theirs.row()))
        print(f"  {level}: done", file=sys.stderr, flush=True)
    shutil.rmtree(tmp, ignore_errors=True)

    rows += crop_rows(max_lines, pe, cv_dir, errors := Errors(), wrong := Counter())
    head = "| input | reader | exact | valid but wrong | per-character | median ms | p95 ms |"
    out = [head, "|" + " --- |" * 7]
    out += ["| " + " | ".join(r) + " |" for r in rows if len(r) > 1]
    out += ["\n" + r[0] for r in rows if len(r) == 1]
    out.append(f"\nglyph opinions only, errors on the line crops: {errors.report()}")
    fields = ", ".join(f"{k} {v}" for k, v in wrong.most_common()) or "none"
    out.append(f"\nglyph opinions only, valid-but-wrong line reads by field: {fields}")
    if pe_note:
        out.append(f"\nPassportEye: {pe_note}")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--per-level", type=int, default=80, help="pages per level, 0 = none")
    ap.add_argument("--lines", type=int, default=0, help="real line crops to use, 0 = all")
    ap.add_argument("--no-passporteye", action="store_true")
    ap.add_argument(
        "--no-whole-line",
        action="store_true",
        help="pages read without the whole-line reader (drivers.mrz_ocr.WHOLE_LINE off)",
    )
    ap.add_argument(
        "--cv-dir",
        type=Path,
        default=CV_DIR,
        help="fold models (models/mrz/cv.py); crops are scored only by the model that did "
        "not see them",
    )
    args = ap.parse_args()
    if args.no_whole_line:
        import drivers.mrz_ocr

        drivers.mrz_ocr.WHOLE_LINE = False
    print(run(args.per_level, args.lines, not args.no_passporteye, args.cv_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
