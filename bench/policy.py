"""How long the document decision and the list checks take (a Markdown table on stdout).

    /work/main/.venv/bin/python bench/policy.py

The decision is pure Python over a handful of fields; list checks are one HMAC per key
on a local list of 100,000 entries (load included once), and one HTTP round trip to the
simulated national service on localhost.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from drivers.watchlist import (  # noqa: E402
    CompositeWatchlist,
    Entry,
    HttpPassRegistry,
    HttpWatchlist,
    LocalWatchlist,
    hash_entries,
    write_list,
)
from gate.policy import decide_document  # noqa: E402
from gate.policy_config import load_policy  # noqa: E402
from gate.results import Check, ChipResult, DocumentResult, ListsResult  # noqa: E402
from sim.watchlist_service import Registry, WatchlistService  # noqa: E402
from tests.policy.helpers import mrz  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TODAY = dt.date(2026, 11, 25)
DOC = mrz()  # the tests' citizen: one definition of a valid TD3 passport
CHIP = ChipResult(
    present=True, dg1=DOC, passive_auth=Check.PASSED, chip_auth=Check.PASSED, has_portrait=True
)


def per_call(fn: Callable[[], object], n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times), times[int(0.99 * (n - 1))]


async def async_per_call(fn: Callable[[], object], n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()  # type: ignore[misc]
        times.append(time.perf_counter() - t0)
    times.sort()
    return statistics.median(times), times[int(0.99 * (n - 1))]


async def main() -> None:
    policy = load_policy(ROOT / "config" / "policy.example.yaml")
    result = DocumentResult(mrz=DOC, confidence=0.9)
    rows: list[tuple[str, int, float, float]] = []

    n = 20_000
    med, p99 = per_call(
        lambda: decide_document(DOC, result, CHIP, ListsResult(pass_checked=True), policy, TODAY),
        n,
    )
    rows.append(("decide_document (accept)", n, med, p99))

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "lists.json"
        entries = [Entry("stolen", f"S{i:08d}", "MYS") for i in range(100_000)]
        t0 = time.perf_counter()
        write_list(hash_entries(entries), path)
        build_s = time.perf_counter() - t0
        local = LocalWatchlist("local", path)
        t0 = time.perf_counter()
        await local.check(DOC)
        rows.append(("local list: build 100k entries", 1, build_s, build_s))
        rows.append(("local list: first check (loads file)", 1, *(time.perf_counter() - t0,) * 2))
        n = 2_000
        rows.append(("local list: check", n, *await async_per_call(lambda: local.check(DOC), n)))

        reg = Registry(stolen={("MYS", "A12345678")})
        with WatchlistService(reg) as svc:
            http = HttpWatchlist("national", svc.url)
            passes = HttpPassRegistry("passes", svc.url)
            both = CompositeWatchlist([local, http, passes])
            try:
                n = 200
                rows.append(
                    (
                        "http watchlist (sim, localhost)",
                        n,
                        *await async_per_call(lambda: http.check(DOC), n),
                    )
                )
                rows.append(
                    (
                        "composite: local + http + passes",
                        n,
                        *await async_per_call(lambda: both.check(DOC), n),
                    )
                )
            finally:
                await both.close()

    print("| step | n | median | p99 |")
    print("| --- | ---: | ---: | ---: |")
    for name, count, med, p99 in rows:
        print(f"| {name} | {count} | {fmt(med)} | {fmt(p99)} |")


def fmt(s: float) -> str:
    return f"{s * 1e6:.0f} µs" if s < 1e-3 else f"{s * 1e3:.1f} ms"


if __name__ == "__main__":
    asyncio.run(main())
