"""Costs of the ops layer: observers per core step, checkpoints, sealing, journal, scrape.

Run: /work/main/.venv/bin/python bench/ops.py   (prints a Markdown table)
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402
from PIL import Image  # noqa: E402
from prometheus_client import generate_latest  # noqa: E402

from autogate.audit import Checkpointer, OutcomeCheckpoints  # noqa: E402
from autogate.daemon import Daemon  # noqa: E402
from autogate.logs import EventLogObserver  # noqa: E402
from autogate.metrics import Metrics  # noqa: E402
from autogate.notify import Notifier, StatusObserver  # noqa: E402
from autogate.vault import Biometrics, ReferralStore  # noqa: E402
from autogate.wiring import build_devices, settings_from  # noqa: E402
from gate import inputs as i  # noqa: E402
from gate.actions import EventType, Publish  # noqa: E402
from gate.config import parse_config  # noqa: E402
from gate.journal import Journal, verify_all  # noqa: E402


def timed(fn: Callable[[], object], n: int) -> list[float]:
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def row(name: str, samples: list[float], unit: str = "µs") -> str:
    scale = 1e6 if unit == "µs" else 1e3
    med = statistics.median(samples) * scale
    p95 = sorted(samples)[int(len(samples) * 0.95) - 1] * scale
    return f"| {name} | {len(samples)} | {med:.1f} {unit} | {p95:.1f} {unit} |"


def main() -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-ops-"))
    rows = []

    def daemon(observed: bool) -> Daemon:
        cfg = parse_config(
            f"gate: {{site: s, id: g}}\nstorage: {{data_dir: {tmp}, journal: {tmp}/j{observed}.jsonl}}\n"
        )
        devices, _ = build_devices(cfg)
        d = Daemon(cfg, devices, settings_from(cfg))
        if observed:
            m = Metrics()
            m.bind(d)
            d.observers += [m, StatusObserver(Notifier({})), EventLogObserver()]
        d._step(i.Started())
        return d

    for observed in (False, True):
        d = daemon(observed)
        samples = timed(lambda d=d: d._step(i.Tick()), 5000)
        rows.append(
            row(f"daemon step (Tick), {'with' if observed else 'no'} ops observers", samples)
        )
        d.journal.close()

    key = Ed25519PrivateKey.generate()
    j = Journal(tmp / "cp.jsonl")
    cp = Checkpointer(key, tmp / "checkpoints.jsonl", "s", "g", j.head)
    counter = iter(range(10**9))
    rows.append(
        row(
            "journal append + sign + fsync one checkpoint",
            timed(lambda: (j.append("e", {"n": next(counter)}, "t"), cp.write(force=True)), 200),
            "ms",
        )
    )

    # issue 17 item 7: a checkpoint at every transaction outcome (the step that publishes it)
    jo = Journal(tmp / "outcome.jsonl")
    cpo = Checkpointer(key, tmp / "outcome-cps.jsonl", "s", "g", jo.head)
    outcome = OutcomeCheckpoints(cpo)
    acts = [Publish(EventType.CROSSING_ACCEPTED, "t1", (), {})]
    rows.append(
        row(
            "outcome checkpoint per transaction (observer: sign + fsync)",
            timed(
                lambda: (
                    jo.append("event", {"n": next(counter)}, "t"),
                    outcome.on_step(None, None, None, acts, 0.0),
                ),
                200,
            ),
            "ms",
        )
    )

    rng = np.random.default_rng(1)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (320, 240, 3), dtype=np.uint8)).save(buf, "JPEG")
    bio = Biometrics(buf.getvalue(), rng.integers(0, 255, (480, 640, 3), dtype=np.uint8))
    store = ReferralStore(tmp / "referrals", b"k" * 32, 0, 3600)
    rows.append(
        row(
            "seal referral (JPEG + 640x480 frame), fsync",
            timed(lambda: store.seal("t1", bio, 0.0), 100),
            "ms",
        )
    )
    rows.append(row("open sealed referral", timed(lambda: store.open("t1"), 100), "ms"))

    jj = Journal(tmp / "journal.jsonl", fsync=True)
    rows.append(
        row("journal append + fsync", timed(lambda: jj.append("e", {"x": 1}, "t"), 500), "ms")
    )
    jr = Journal(tmp / "rot.jsonl", fsync=False, rotate_bytes=1 << 20)
    for k in range(20000):
        jr.append("event", {"n": k, "type": "crossing.accepted"}, "2026-11-25T10:00:00Z")
    jr.close()
    rows.append(
        row(
            "verify_all, 20k records in rotated 1 MiB files",
            timed(lambda: verify_all(tmp / "rot.jsonl"), 5),
            "ms",
        )
    )

    m = Metrics()
    for _ in range(1000):
        m.step_seconds.labels("Tick").observe(1e-5)
    rows.append(
        row(
            "metrics scrape (generate_latest)",
            timed(lambda: generate_latest(m.registry), 200),
            "ms",
        )
    )

    print("| operation | n | median | p95 |")
    print("| --- | --- | --- | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
