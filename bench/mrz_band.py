"""How often the MRZ band is found, and the page read exactly, on pages built from real
line crops (``sim/real_pages.py``): one row per level.

    .venv/bin/python bench/mrz_band.py --pages 60

found: the reader returned as many lines as the band has, of the band's width; exact:
every line as printed; valid but wrong: every check passed on a wrong read, and how many
of those carried neither an uncertain field nor ``doc_low_confidence``; exact but
uncertain: right reads the policy refers unless the chip's DG1 confirms them. The crops' documents are mixed, so TD1 pages (whose composite
check digit spans lines 1-2) are seldom valid: exact compares the lines, not validity.

The shipped recognisers were trained on these crops. ``--cv-dir var/mrz-cv`` (the fold
models of ``models/mrz/cv.py``) builds page ``s`` from the crops of fold ``s mod k`` only
and reads it with that fold's models, which never saw them: pages of print the reader
has not seen, as an agency's own test pages are.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import drivers.mrz_ocr  # noqa: E402
from drivers.mrz_ctc import load_line_model  # noqa: E402
from drivers.mrz_ocr import load_model  # noqa: E402
from drivers.mrz_recog import load_second  # noqa: E402
from drivers.scanner import read_image  # noqa: E402
from gate.reasons import ReasonCode as R  # noqa: E402
from models.mrz.folds import load_folds  # noqa: E402
from sim.real_pages import LEVELS, Crop, build_page, load_crops  # noqa: E402

TODAY = dt.date(2026, 12, 7)


class HeldOut:
    """Each page's crops and recognisers from one fold: the crops of fold ``seed mod k``,
    read by the models trained without them (``models/mrz/cv.py``). The scanner asks
    ``drivers.mrz_ocr`` for its default models, so those are swapped for the fold's while
    its page is read (a benchmark's swap, not a setting)."""

    def __init__(self, cv_dir: Path) -> None:
        folds = load_folds()
        crops = load_crops()
        ids = [set(f) for f in folds]
        self.crops = [tuple(c for c in crops if c.name in fold) for fold in ids]
        self.models = [
            (
                load_model(cv_dir / f"fold-{k}"),
                load_second(cv_dir / f"fold-{k}"),
                load_line_model(cv_dir / f"fold-{k}"),
            )
            for k in range(len(folds))
        ]

    def use(self, seed: int) -> tuple[Crop, ...]:
        """Swap in the models of the seed's fold; the crops the page must be cut from."""
        k = seed % len(self.models)
        mlp, second, line = self.models[k]
        drivers.mrz_ocr.load_model = lambda *_: mlp  # type: ignore[assignment]
        drivers.mrz_ocr.load_second = lambda *_: second  # type: ignore[assignment]
        drivers.mrz_ocr.load_line_model = lambda *_: line  # type: ignore[assignment]
        return self.crops[k]


def run(
    pages: int, seed0: int, passporteye: bool = False, cv_dir: Path | None = None
) -> list[dict[str, float | str]]:
    pe = _passporteye() if passporteye else None
    held = HeldOut(cv_dir) if cv_dir is not None else None
    tmp = Path(tempfile.mkdtemp(prefix="mrz-band-"))
    rows: list[dict[str, float | str]] = []
    for level in LEVELS:
        found = exact = wrong = silent = doubted = pe_exact = 0
        times, pe_times = [], []
        for seed in range(seed0, seed0 + pages):
            img, truth = build_page(seed, level, crops=held.use(seed) if held else None)
            if pe is not None:  # the same page, from a file as PassportEye reads one
                path = tmp / f"{level}-{seed}.png"
                cv2.imwrite(str(path), img)
                t0 = time.perf_counter()
                try:
                    got, _valid = pe(str(path))
                except Exception:  # PassportEye raises on some pages: a failed read
                    got = ""
                pe_times.append(time.perf_counter() - t0)
                pe_exact += got.split("\n") == truth
            t0 = time.perf_counter()
            res = read_image(img, today=TODAY)
            times.append(time.perf_counter() - t0)
            lines = list(res.mrz.lines) if res.mrz else []
            if len(lines) == len(truth) and all(
                len(a) == len(b) for a, b in zip(lines, truth, strict=True)
            ):
                found += 1
            exact += lines == truth
            doubted += lines == truth and bool(res.uncertain)
            if res.mrz is not None and res.mrz.valid and lines != truth:
                wrong += 1  # valid but wrong: every check digit passed
                silent += not res.uncertain and R.DOC_LOW_CONFIDENCE not in res.reasons
        rows.append(
            {
                "level": level,
                "found %": 100 * found / pages,
                "exact %": 100 * exact / pages,
                "median ms": 1000 * statistics.median(times),
                "valid but wrong": wrong,
                "of them unflagged": silent,
                "exact but uncertain": doubted,
                "PassportEye exact %": 100 * pe_exact / pages if pe else float("nan"),
                "PassportEye median ms": 1000 * statistics.median(pe_times) if pe_times else 0,
            }
        )
    shutil.rmtree(tmp, ignore_errors=True)
    return rows


def _passporteye() -> Callable[[str], tuple[str, bool]]:
    """PassportEye's page reader (bench/mrz.py's setup: Tesseract with the MRZ model)."""
    from bench.mrz import passporteye_setup

    pe = passporteye_setup()
    if isinstance(pe, str):
        raise SystemExit(f"--passporteye: {pe} (pip install -e '.[bench]')")
    return pe[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=60, help="pages per level")
    ap.add_argument("--seed", type=int, default=1000, help="first page's seed")
    ap.add_argument(
        "--passporteye",
        action="store_true",
        help="also read each page with PassportEye (pip install -e '.[bench]')",
    )
    ap.add_argument(
        "--cv-dir",
        type=Path,
        default=None,
        help="fold models (models/mrz/cv.py): pages of held-out crops, read by the fold "
        "models that never saw them",
    )
    args = ap.parse_args()
    rows = run(args.pages, args.seed, args.passporteye, args.cv_dir)
    pe_head = " | PassportEye exact % | PassportEye median ms" if args.passporteye else ""
    print(
        f"| level ({args.pages} pages, seeds {args.seed}+) | found % | exact % | median ms"
        f" | valid but wrong | of them unflagged | exact but uncertain{pe_head} |"
    )
    print("|" + " --- |" * (9 if args.passporteye else 7))
    for r in rows:
        pe_cells = (
            f" | {r['PassportEye exact %']:.1f} | {r['PassportEye median ms']:.0f}"
            if args.passporteye
            else ""
        )
        print(
            f"| {r['level']} | {r['found %']:.1f} | {r['exact %']:.1f} | {r['median ms']:.0f}"
            f" | {r['valid but wrong']} | {r['of them unflagged']} | {r['exact but uncertain']}"
            f"{pe_cells} |"
        )


if __name__ == "__main__":
    main()
