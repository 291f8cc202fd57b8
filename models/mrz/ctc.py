"""Train the MRZ whole-line reader (``drivers/mrz_ctc.py``): a small CRNN with CTC loss.

    nice -n 10 .venv/bin/python models/mrz/ctc.py --base-only   # var/mrz-ctc/base-9303-6000x12.pt
    nice -n 10 .venv/bin/python models/mrz/ctc.py [--holdout K] [--out DIR]

Two stages, so the k folds of a cross validation share the expensive part:

1. ``--base-only``: the network learns MRZ print from rendered lines alone
   (``models/mrz/train.py``'s ``render_line``: OCR-B and look-alike faces, degraded), no
   real crop, so it may start every fold's model.
2. Then it is tuned on the real crops (``../shared/data/mrz/real_lines``) of the training
   folds, each also augmented (``models/mrz/data.py``'s ``augment``: perspective, blur,
   ink spread, uneven light, JPEG...), mixed with rendered lines so the fonts stay known.
   ``--holdout K`` leaves fold K of ``folds.json`` out (cross validation, into
   ``var/mrz-cv/fold-K/``); without it every crop is used (the shipped model).

Every line is cut and normalised by the reader's own code (``drivers.mrz_ocr.text_row``),
so training sees exactly what the gate feeds the model. PyTorch is for training only
(``pip install torch==2.13.0``, the CPU build); the gate runs the exported ONNX graph in
onnxruntime. One thread and a fixed seed: the same command gives the same weights.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from drivers.mrz_ctc import BLANK, CTC_H, DESCRIPTOR  # noqa: E402
from drivers.mrz_ocr import ALPHABET, text_row  # noqa: E402
from models.mrz.data import augment, real_crops  # noqa: E402
from models.mrz.folds import REAL, is_rendered, load_folds  # noqa: E402

CACHE = ROOT / "var" / "mrz-train"
BASE_DIR = ROOT / "var" / "mrz-ctc"
# The first stage's weights that the shipped model and its cross-validation folds were
# tuned from (arrays of the state dict, no pickle), so the second stage re-makes them bit
# for bit. Trained by ``--base-only`` with the defaults before the initial weights were
# seeded (they came from PyTorch's unseeded generator), so a new ``--base-only`` run gives
# another base, reproducibly.
SHIPPED_BASE = Path(__file__).resolve().parent / "line_ctc_base.npz"
OUT = Path(__file__).resolve().parent
STRIDE = 4  # input columns per output column


class LineSet:
    """Normalised text rows (``CTC_H`` x width, float16), their labels, the crop each came
    from (an index into ``ids``, -1 for a rendered line)."""

    def __init__(self, rows: list[np.ndarray], texts: list[str], crop: list[int], ids: list[str]):
        self.rows, self.texts, self.crop, self.ids = rows, texts, np.asarray(crop), ids

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        widths = np.array([r.shape[1] for r in self.rows])
        flat = np.concatenate([r.reshape(-1) for r in self.rows]).astype(np.float16)
        np.savez(
            path,
            flat=flat,
            widths=widths,
            texts=np.array(self.texts),
            crop=self.crop,
            ids=np.array(self.ids, dtype=str),
        )

    @classmethod
    def load(cls, path: Path) -> LineSet:
        with np.load(path) as z:
            ends = np.cumsum(z["widths"] * CTC_H)
            flat = z["flat"]
            rows = [
                flat[e - w * CTC_H : e].reshape(CTC_H, w)
                for e, w in zip(ends, z["widths"], strict=True)
            ]
            return cls(
                rows, [str(t) for t in z["texts"]], list(z["crop"]), [str(i) for i in z["ids"]]
            )


def _cached(name: str, key: str, build) -> LineSet:  # type: ignore[no-untyped-def]
    path = CACHE / f"ctc-{name}-{hashlib.sha256(key.encode()).hexdigest()[:12]}.npz"
    if path.is_file():
        return LineSet.load(path)
    s = build()
    s.save(path)
    return s


def rendered_lines(n: int, seed: int) -> LineSet:
    from models.mrz.train import random_text, render_line

    def build() -> LineSet:
        rng = np.random.default_rng(seed)
        rows, texts = [], []
        for _ in range(n):
            text = random_text(rng)
            rows.append(text_row(render_line(text, rng)).astype(np.float16))
            texts.append(text)
        return LineSet(rows, texts, [-1] * len(rows), [])

    return _cached("rendered", f"{n}/{seed}/h{CTC_H}", build)


def real_lines(augments: int, doc_weight: int, seed: int) -> LineSet:
    """Every real crop as it is and ``augments`` augmented copies (``doc_weight`` times
    as many for photographed documents, whose print rendered fonts lack)."""

    def build() -> LineSet:
        rng = np.random.default_rng(seed)
        crops = real_crops()
        rows, texts, crop = [], [], []
        for k, (crop_id, gray, truth) in enumerate(crops):
            copies = augments * (1 if is_rendered(crop_id) else doc_weight)
            for j in range(1 + copies):
                rows.append(text_row(gray if j == 0 else augment(gray, rng)).astype(np.float16))
                texts.append(truth)
                crop.append(k)
        return LineSet(rows, texts, crop, [c[0] for c in crops])

    return _cached("real", f"{augments}/{doc_weight}/{seed}/{REAL.resolve()}/h{CTC_H}/v2", build)


def base_path(seed: int, lines: int, epochs: int) -> Path:
    """Stage 1's weights, named by the options that made them: a base trained with other
    settings is never picked up by mistake."""
    return BASE_DIR / f"base-{seed}-{lines}x{epochs}.pt"


def load_base(model, path: Path) -> None:  # type: ignore[no-untyped-def]
    """Stage 1's weights into ``model``: a ``torch.save`` file or an ``.npz`` of arrays."""
    import torch

    if path.suffix == ".npz":
        with np.load(path) as z:
            model.load_state_dict({k: torch.from_numpy(z[k].copy()) for k in z.files})
    else:
        model.load_state_dict(torch.load(path))


def net():  # type: ignore[no-untyped-def]
    """Convolutions down to a column of features every ``STRIDE`` pixels, a small BiLSTM
    along the line, 38 classes (the 37 MRZ symbols and the blank) per column."""
    import torch
    from torch import nn

    class Crnn(nn.Module):
        def __init__(self) -> None:
            super().__init__()

            def block(a: int, b: int, pool: tuple[int, int]) -> list[nn.Module]:
                return [
                    nn.Conv2d(a, b, 3, padding=1),
                    nn.BatchNorm2d(b),
                    nn.ReLU(),
                    nn.MaxPool2d(pool),
                ]

            self.conv = nn.Sequential(
                *block(1, 16, (2, 2)), *block(16, 32, (2, 2)), *block(32, 48, (2, 1))
            )
            feat = 48 * (CTC_H // 8)
            self.proj = nn.Sequential(nn.Linear(feat, 96), nn.ReLU(), nn.Dropout(0.1))
            self.rnn = nn.LSTM(96, 48, bidirectional=True, batch_first=True)
            self.out = nn.Linear(96, BLANK + 1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = self.conv(x)  # (n, c, h, t)
            n, c, h, t = f.shape
            f = self.proj(f.permute(0, 3, 1, 2).reshape(n, t, c * h))
            f, _ = self.rnn(f)
            return torch.log_softmax(self.out(f), dim=2)  # (n, t, 38)

    return Crnn()


def _batches(widths: np.ndarray, batch: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of similar widths (little padding), in random order."""
    order = np.argsort(widths + rng.uniform(0, 40, len(widths)))
    out = [order[i : i + batch] for i in range(0, len(order), batch)]
    rng.shuffle(out)  # type: ignore[arg-type]
    return out


def fit(  # type: ignore[no-untyped-def]
    model, data: LineSet, epochs: int, seed: int, lr: float, per_epoch: int = 0, threads: int = 1
) -> list[float]:
    """CTC training, Adam with a one-cycle schedule; returns the loss per epoch. Each
    epoch is a fresh random draw of ``per_epoch`` lines (0: all of them)."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    widths = np.array([r.shape[1] for r in data.rows])
    labels = [torch.tensor([ALPHABET.index(c) for c in t]) for t in data.texts]
    batch = 16
    n = min(per_epoch or len(widths), len(widths))
    steps = epochs * ((n + batch - 1) // batch)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    loss_fn = torch.nn.CTCLoss(blank=BLANK, zero_infinity=True)
    losses = []
    for epoch in range(epochs):
        model.train()
        t0, total = time.time(), 0.0
        pick = rng.permutation(len(widths))[:n] if n < len(widths) else np.arange(n)
        for sub in _batches(widths[pick], batch, rng):
            idx = pick[sub]
            wmax = int(widths[idx].max())
            x = np.zeros((len(idx), 1, CTC_H, wmax), np.float32)
            for j, i in enumerate(idx):
                x[j, 0, :, : widths[i]] = data.rows[i]
            # its own light augmentation: contrast of the ink map
            x *= rng.uniform(0.6, 1.2, (len(idx), 1, 1, 1)).astype(np.float32)
            np.clip(x, 0, 1, out=x)
            logp = model(torch.from_numpy(x)).permute(1, 0, 2)  # (t, n, 38)
            in_len = torch.tensor([w // STRIDE for w in widths[idx]])
            tgt = [labels[i] for i in idx]
            loss = loss_fn(logp, torch.cat(tgt), in_len, torch.tensor([len(t) for t in tgt]))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        losses.append(total / n)
        print(
            f"ctc epoch {epoch + 1}/{epochs} loss {losses[-1]:.4f} {time.time() - t0:.0f} s",
            flush=True,
        )
    return losses


def weights_sha256(state: dict) -> str:  # type: ignore[type-arg]
    """A hash of the weights themselves: ``torch.save`` files of equal weights differ in
    their bytes (each carries a fresh ``serialization_id``), so a file hash proves nothing
    about reproducibility."""
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def export(model, path: Path) -> None:  # type: ignore[no-untyped-def]
    import torch

    model.eval()
    torch.onnx.export(
        model,
        (torch.zeros(1, 1, CTC_H, 400),),
        str(path),
        input_names=["x"],
        output_names=["logp"],
        dynamic_axes={"x": {0: "n", 3: "w"}, "logp": {0: "n", 1: "t"}},
        opset_version=17,
        dynamo=False,
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=9303)
    ap.add_argument("--base-only", action="store_true", help="stage 1: rendered lines only")
    ap.add_argument(
        "--base",
        type=Path,
        default=None,
        help="stage 1's weights (tuning: the committed line_ctc_base.npz; --base-only: "
        "var/mrz-ctc/ named by its options)",
    )
    ap.add_argument(
        "--if-missing", action="store_true", help="stage 1 only if the tuning's base is not there"
    )
    ap.add_argument("--base-lines", type=int, default=6000, help="rendered lines, stage 1")
    ap.add_argument("--base-epochs", type=int, default=12)
    ap.add_argument("--lines", type=int, default=1500, help="rendered lines mixed in, stage 2")
    ap.add_argument("--augments", type=int, default=2, help="augmented copies per crop")
    ap.add_argument("--doc-weight", type=int, default=8, help="x copies, photographed crops")
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--per-epoch", type=int, default=1500, help="lines drawn per epoch, stage 2")
    ap.add_argument("--holdout", type=int, default=None, help="leave this fold out (CV)")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.base_only and args.if_missing:  # models/mrz/cv.py: the base the tuning will use
        tuned_from = args.base or (SHIPPED_BASE if SHIPPED_BASE.is_file() else None)
        if tuned_from is not None and tuned_from.is_file():
            print(f"{tuned_from} is there")
            return 0
    if args.base is None:
        fresh = base_path(args.seed, args.base_lines, args.base_epochs)
        args.base = fresh if args.base_only or not SHIPPED_BASE.is_file() else SHIPPED_BASE
    import torch

    t0 = time.time()
    torch.manual_seed(args.seed)  # the initial weights too (before 2026-12-08 they were not)
    model = net()
    if args.base_only:
        data = rendered_lines(args.base_lines, args.seed)
        print(f"{len(data.rows)} rendered lines, {time.time() - t0:.0f} s", flush=True)
        losses = fit(model, data, args.base_epochs, args.seed, 2e-3)
        args.base.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), args.base)
        print(
            json.dumps(
                {
                    "losses": losses,
                    "seconds": round(time.time() - t0),
                    "weights_sha256": weights_sha256(model.state_dict()),
                }
            )
        )
        return 0
    load_base(model, args.base)
    base_sha = weights_sha256(model.state_dict())
    held = set(load_folds()[args.holdout]) if args.holdout is not None else set()
    real = real_lines(args.augments, args.doc_weight, args.seed)
    keep = [i for i, k in enumerate(real.crop) if real.ids[k] not in held]
    synth = rendered_lines(args.lines, args.seed + 7)
    data = LineSet(
        [real.rows[i] for i in keep] + synth.rows,
        [real.texts[i] for i in keep] + synth.texts,
        [int(real.crop[i]) for i in keep] + [-1] * len(synth.rows),
        real.ids,
    )
    used = sorted({real.ids[int(real.crop[i])] for i in keep})
    print(
        f"{len(keep)} real rows ({len(used)} crops, {len(held)} held out) + "
        f"{len(synth.rows)} rendered, {time.time() - t0:.0f} s",
        flush=True,
    )
    losses = fit(model, data, args.epochs, args.seed, 1e-3, args.per_epoch)
    args.out.mkdir(parents=True, exist_ok=True)
    onnx = args.out / "line_ctc.onnx"
    export(model, onnx)
    command = (
        f"models/mrz/ctc.py --seed {args.seed} --base-lines {args.base_lines} "
        f"--base-epochs {args.base_epochs} --lines {args.lines} --augments {args.augments} "
        f"--doc-weight {args.doc_weight} --epochs {args.epochs} --per-epoch {args.per_epoch}"
    ) + (f" --holdout {args.holdout}" if args.holdout is not None else "")
    desc = {
        "name": "autogate MRZ whole-line reader (CRNN, CTC)",
        "kind": "crnn-ctc-onnx",
        "weights": onnx.name,
        "sha256": hashlib.sha256(onnx.read_bytes()).hexdigest(),
        "alphabet": ALPHABET,
        "height": CTC_H,
        "stride": STRIDE,
        "classes": BLANK + 1,
        "blank": BLANK,
        "trained_with": command,
        "base_weights_sha256": base_sha,
        "weights_sha256": weights_sha256(model.state_dict()),
        "held_out": sorted(held),
        "real_rows": len(keep),
        "rendered_rows": len(synth.rows),
        "losses": [round(v, 4) for v in losses],
        "train_seconds": round(time.time() - t0),
        "licence": "see models/mrz/LICENSE.md",
    }
    (args.out / DESCRIPTOR).write_text(json.dumps(desc, indent=1) + "\n")
    print(json.dumps({k: v for k, v in desc.items() if k != "held_out"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
