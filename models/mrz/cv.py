"""Train one pair of MRZ recognisers per fold of ``folds.json`` (k-fold cross validation).

    nice -n 10 .venv/bin/python models/mrz/cv.py [train.py options ...]

Fold k's models (``var/mrz-cv/fold-k/``, not committed) are trained on the rendered lines
and on the real crops of every other fold, with the same options as the shipped model;
``bench/mrz.py`` then scores each crop only with the models of its own fold, so no crop
is scored by a model that saw it. The shipped model (``models/mrz/train.py`` without
``--holdout``) sees every crop; its accuracy on them is the cross-validated figure.
About 8-15 minutes per fold on the shared 2-core machine (the rendered set is cached in
``var/mrz-train/`` and shared by the folds).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.mrz.folds import load_folds  # noqa: E402

OUT = ROOT / "var" / "mrz-cv"


def main() -> int:
    extra = sys.argv[1:]
    for k in range(len(load_folds())):
        cmd = [
            sys.executable,
            str(ROOT / "models/mrz/train.py"),
            *extra,
            "--holdout",
            str(k),
            "--out",
            str(OUT / f"fold-{k}"),
        ]
        print(" ".join(cmd), flush=True)
        if subprocess.call(cmd) != 0:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
