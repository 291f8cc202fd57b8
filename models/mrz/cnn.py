"""Train the second-opinion glyph CNN (``drivers/mrz_recog.py``) with PyTorch, export ONNX.

Training only: PyTorch is not a dependency of the gate (``pip install torch==2.13.0``, the
CPU build, into the venv to retrain); the gate runs the exported graph in onnxruntime.
Seeded and single-process, so a run on the same data gives the same weights.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from drivers.mrz_recog import CLASSES, CNN_SIZE


def _net():  # type: ignore[no-untyped-def]
    from torch import nn

    h, w = CNN_SIZE
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * (h // 8) * (w // 8), 128),
        nn.ReLU(),
        nn.Dropout(0.2),
        nn.Linear(128, CLASSES),
    )


def train_cnn(
    x: np.ndarray,
    y: np.ndarray,
    epochs: int,
    seed: int,
    out: Path,
    per_epoch: int = 120_000,
    threads: int = 1,
) -> dict:
    """Fit the CNN on windows ``x`` (n, h * w) with labels ``y``; write ``out`` (ONNX).

    Each epoch is a fresh random draw of ``per_epoch`` windows. One thread: on a shared
    2-core machine two threads were measured 7 times slower per sample than one.
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    h, w = CNN_SIZE
    net = _net()
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3, weight_decay=1e-4)
    batch = 256
    per_epoch = min(per_epoch, len(x))
    steps = epochs * ((per_epoch + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.05)
    yt = torch.from_numpy(y.astype(np.int64))
    t0 = time.time()
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(len(x))[:per_epoch]
        total = 0.0
        for i in range(0, len(order), batch):
            idx = order[i : i + batch]
            xb = torch.from_numpy(x[idx].astype(np.float32)).reshape(-1, 1, h, w)
            # its own augmentation: a shift of up to 2 px (the pitch model's error), contrast
            dx, dy = (int(v) for v in rng.integers(-2, 3, 2))
            xb = torch.roll(xb, shifts=(dy, dx), dims=(2, 3))
            gain = torch.from_numpy(rng.uniform(0.6, 1.25, (len(idx), 1, 1, 1)).astype(np.float32))
            xb = (xb * gain).clamp(0, 1)
            loss = loss_fn(net(xb), yt[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += loss.item() * len(idx)
        print(f"cnn epoch {epoch + 1}/{epochs} loss {total / per_epoch:.4f}", flush=True)
    net.eval()
    export = nn.Sequential(net, nn.Softmax(dim=1))
    torch.onnx.export(
        export,
        (torch.zeros(1, 1, h, w),),
        str(out),
        input_names=["x"],
        output_names=["p"],
        dynamic_axes={"x": {0: "n"}, "p": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    return {
        "epochs": epochs,
        "per_epoch": per_epoch,
        "train_glyphs": int(len(x)),
        "train_seconds": round(time.time() - t0),
    }
