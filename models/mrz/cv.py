"""Train the MRZ recognisers once per fold of ``folds.json`` (k-fold cross validation).

    nice -n 10 .venv/bin/python models/mrz/cv.py [--only glyphs|line] [--jobs 2] [--out DIR]
        [--line-args "ctc.py options"] [train.py options ...]

Fold k's models (``var/mrz-cv/fold-k/``, not committed) are trained on the rendered lines
and on the real crops of every other fold, with the same options as the shipped models:
the glyph MLP + CNN pair (``models/mrz/train.py --holdout k``) and the whole-line CTC
reader (``models/mrz/ctc.py --holdout k``, after its rendered-only first stage, which
sees no real crop and so is shared by all folds). ``bench/mrz.py`` then scores each crop
only with the models of its own fold, so no crop is scored by a model that saw it. The
shipped models (without ``--holdout``) see every crop; their accuracy on them is the
cross-validated figure. ``--line-args`` passes options to ``ctc.py`` (both stages: a
``--base`` there names the first stage's weights); ``--out`` trains into another folder
(the glyph pair of ``var/mrz-cv/fold-k/`` is linked in when only the line reader is
trained there). About 8-15 minutes per fold for the glyph pair and 4-8 for the
line reader on the shared 2-core machine (the training sets are cached in
``var/mrz-train/`` and shared by the folds); ``--jobs 2`` trains two folds at a time.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from models.mrz.folds import load_folds  # noqa: E402

OUT = ROOT / "var" / "mrz-cv"


def _run(cmd: list[str]) -> int:
    print(" ".join(cmd), flush=True)
    return subprocess.call(cmd)


def _link_glyphs(src: Path, dst: Path) -> None:
    """The glyph pair of ``src`` (another CV run's fold) beside a new line reader in ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for name in ("model.json", "ocrb_mlp.npz", "glyph_cnn.onnx"):
        if not (dst / name).is_symlink() and not (dst / name).exists():
            (dst / name).symlink_to((src / name).resolve())  # may appear later


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", choices=["glyphs", "line"], default=None)
    ap.add_argument("--jobs", type=int, default=1, help="folds trained at once")
    ap.add_argument("--out", type=Path, default=OUT, help="fold-k/ folders go here")
    ap.add_argument("--line-args", default="", help="options for models/mrz/ctc.py")
    args, extra = ap.parse_known_args()
    py = sys.executable
    line = shlex.split(args.line_args)
    cmds = []
    for k in range(len(load_folds())):
        fold = args.out / f"fold-{k}"
        out = ["--holdout", str(k), "--out", str(fold)]
        if args.only != "line":
            cmds.append([py, str(ROOT / "models/mrz/train.py"), *extra, *out])
        if args.only != "glyphs":
            cmds.append([py, str(ROOT / "models/mrz/ctc.py"), *line, *out])
        if args.only == "line" and args.out.resolve() != OUT.resolve():
            _link_glyphs(OUT / f"fold-{k}", fold)
    base = [py, str(ROOT / "models/mrz/ctc.py"), *line, "--base-only", "--if-missing"]
    if args.only != "glyphs" and _run(base) != 0:
        return 1
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        codes = list(pool.map(_run, cmds))
    return 0 if all(c == 0 for c in codes) else 1


if __name__ == "__main__":
    sys.exit(main())
