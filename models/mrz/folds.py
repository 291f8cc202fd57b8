"""The fixed, seeded k-fold split of the real MRZ line crops (``folds.json``).

    .venv/bin/python models/mrz/folds.py [--k 5] [--seed 9303]

Crops are grouped by the document they were cut from (``NAME.jpg-0``, ``NAME.jpg-1`` ...
are lines of one document, printed by one printer), and whole documents go to one fold,
so no line is scored by a model that saw another line of the same print. Of the 799
crops, 186 are photos or scans of documents and 613 are lines rendered in MRZ-like fonts
by the set's makers (``font_generate_*``); each fold gets its share of both. The file is
committed: the cross-validated figures in ``docs/bench-mrz.md`` are re-made from it.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT / "../shared/data/mrz/real_lines"
FOLDS = Path(__file__).resolve().parent / "folds.json"


def document_of(crop_id: str) -> str:
    """The document a crop comes from: its id without the trailing line number."""
    return re.sub(r"-\d+$", "", crop_id)


def crop_ids(real: Path = REAL) -> list[str]:
    """Ids (file stems) of the crops that have both an image and a ground truth."""
    return sorted(p.stem for p in real.glob("*.tif") if p.with_name(p.stem + ".gt.txt").is_file())


def is_rendered(crop_id: str) -> bool:
    """The set mixes photos and scans of documents with lines its makers rendered in
    MRZ-like fonts (``font_generate_*``); the two are reported apart."""
    return crop_id.startswith("font_generate_")


def make_folds(ids: list[str], k: int, seed: int) -> list[list[str]]:
    """Documents dealt round-robin in a seeded order, photographed ones and rendered lines
    each on their own, so every fold holds a fair share of both."""
    rng = np.random.default_rng(seed)
    fold_of: dict[str, int] = {}
    for rendered in (False, True):
        docs = sorted({document_of(i) for i in ids if is_rendered(i) == rendered})
        for n, j in enumerate(rng.permutation(len(docs))):
            fold_of[docs[j]] = n % k
    return [sorted(i for i in ids if fold_of[document_of(i)] == f) for f in range(k)]


def load_folds(path: Path = FOLDS) -> list[list[str]]:
    return [list(f) for f in json.loads(path.read_text())["folds"]]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--seed", type=int, default=9303)
    ap.add_argument("--real", type=Path, default=REAL)
    args = ap.parse_args()
    ids = crop_ids(args.real)
    folds = make_folds(ids, args.k, args.seed)
    desc = {
        "about": "k-fold split of ../shared/data/mrz/real_lines by document (models/mrz/folds.py)",
        "k": args.k,
        "seed": args.seed,
        "crops": len(ids),
        "folds": folds,
    }
    FOLDS.write_text(json.dumps(desc, indent=0) + "\n")
    print(f"{len(ids)} crops in {args.k} folds: {[len(f) for f in folds]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
