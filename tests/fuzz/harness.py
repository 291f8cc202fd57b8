"""A small structure-aware fuzzer shared by the test suite and bench/fuzz.py.

Hand-written because the parsers under test are pure Python functions fed with bytes
from a device, a file or the network, and what we want to know per parser is narrow:
does any input make it raise something other than its documented refusal, and how slow
is the slowest input. Atheris would need a rebuilt interpreter; hypothesis finds minimal
examples but is slow at 100,000 inputs. Mutations start from valid structures (the
reference vectors, the virtual chip's files, the example configs) so most inputs get
deep into the parser before they go wrong.

A target module is ``tests/fuzz/targets_*.py`` exporting ``TARGETS: list[Target]``.
A crash found once becomes a regression seed: ``tests/fuzz/seeds/<target>/<name>.bin``,
replayed before any mutation.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
import random
import time
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

SEED_DIR = Path(__file__).parent / "seeds"

# Byte values that make length fields, tags and counters interesting.
_MAGIC = (0x00, 0x01, 0x7F, 0x80, 0x81, 0x82, 0x83, 0x84, 0xFE, 0xFF)


@dataclass(frozen=True)
class Target:
    """One parser: its valid inputs, how to call it, and which refusals are reasoned."""

    name: str
    seeds: Callable[[], list[bytes]]
    call: Callable[[bytes], object]
    # Exceptions that are the parser's documented, reasoned refusal. Anything else
    # (IndexError, KeyError, TypeError, UnicodeError, RecursionError, ...) is a finding.
    expected: tuple[type[BaseException], ...] = ()
    # Optional structure-aware mutator; the generic byte mutator is used as well.
    mutator: Callable[[bytes, random.Random], bytes] | None = None


@dataclass
class Finding:
    data: bytes
    error: str


@dataclass
class Report:
    target: str
    inputs: int = 0
    refused: int = 0
    unexpected: list[Finding] = field(default_factory=list)
    slowest_s: float = 0.0
    slowest_input: bytes = b""
    total_s: float = 0.0
    top: list[tuple[float, bytes]] = field(default_factory=list)  # the ten slowest


def mutate(data: bytes, rng: random.Random, pool: list[bytes] | None = None) -> bytes:
    """Apply 1-4 random edits: flips, magic bytes, truncation, cuts, duplication, splices."""
    buf = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(9)
        n = len(buf)
        if n == 0:
            buf += bytes([rng.choice(_MAGIC)]) * rng.randint(1, 4)
            continue
        i = rng.randrange(n)
        if op == 0:  # bit flip
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1:  # magic byte (length fields, tags)
            buf[i] = rng.choice(_MAGIC)
        elif op == 2:  # truncate
            del buf[rng.randrange(n) :]
        elif op == 3:  # cut a span
            j = min(n, i + rng.randint(1, 16))
            del buf[i:j]
        elif op == 4:  # duplicate a span (nesting, repeated tags)
            j = min(n, i + rng.randint(1, 64))
            buf[i:i] = buf[i:j] * rng.randint(1, 8)
        elif op == 5:  # insert random bytes
            buf[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op == 6:  # random byte
            buf[i] = rng.randrange(256)
        elif op == 7 and pool:  # splice with another seed
            other = rng.choice(pool)
            if other:
                j = rng.randrange(len(other))
                buf = buf[:i] + bytearray(other[j:])
        else:  # small arithmetic on a byte (off-by-one lengths)
            buf[i] = (buf[i] + rng.choice((-2, -1, 1, 2))) & 0xFF
    return bytes(buf)


def regression_seeds(name: str) -> list[bytes]:
    folder = SEED_DIR / name
    if not folder.is_dir():
        return []
    return [p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()]


def _one(target: Target, data: bytes, report: Report) -> None:
    t0 = time.perf_counter()
    try:
        target.call(data)
    except target.expected:
        report.refused += 1
    except Exception:  # noqa: BLE001 - anything else is exactly what we are looking for
        report.unexpected.append(Finding(data, traceback.format_exc(limit=6)))
    except RecursionError:  # pragma: no cover - RecursionError is an Exception; kept explicit
        report.unexpected.append(Finding(data, "RecursionError"))
    dt = time.perf_counter() - t0
    report.inputs += 1
    report.total_s += dt
    if dt > report.slowest_s:
        report.slowest_s, report.slowest_input = dt, data
    if len(report.top) < 10 or dt > min(report.top)[0]:
        report.top.append((dt, data))
        if len(report.top) > 10:
            report.top.remove(min(report.top))


def run(target: Target, n: int, seed: int = 0, max_findings: int = 20) -> Report:
    """Replay the regression seeds and the valid seeds, then ``n`` mutated inputs."""
    rng = random.Random(f"{target.name}:{seed}")
    report = Report(target.name)
    pool = list(target.seeds())
    for data in regression_seeds(target.name) + pool:
        _one(target, data, report)
    if not pool:
        pool = [b""]
    for _ in range(n):
        base = rng.choice(pool)
        if target.mutator is not None and rng.random() < 0.5:
            data = target.mutator(base, rng)
        else:
            data = mutate(base, rng, pool)
        _one(target, data, report)
        if len(report.unexpected) >= max_findings:
            break
    _retime_slowest(target, report)
    return report


def _retime_slowest(target: Target, report: Report, tries: int = 3) -> None:
    """Time the slowest inputs again, best of ``tries``: on a shared machine a process
    that was merely descheduled for a second must not pass for a slow parser. Every
    input of the top ten by wall time is re-timed, and the slowest of those is kept."""
    if report.slowest_s < 0.1:
        return
    best_s, best_input = 0.0, report.slowest_input
    for elapsed, data in sorted(report.top, key=lambda x: -x[0]):
        t = elapsed
        for _ in range(tries):
            t0 = time.perf_counter()
            with contextlib.suppress(Exception):  # already recorded on the first run
                target.call(data)
            t = min(t, time.perf_counter() - t0)
        if t > best_s:
            best_s, best_input = t, data
    report.slowest_s, report.slowest_input = best_s, best_input


def all_targets() -> list[Target]:
    """Every ``TARGETS`` of every ``tests/fuzz/targets_*.py`` module."""
    import tests.fuzz as pkg

    found: list[Target] = []
    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if mod.name.startswith("targets_"):
            module = importlib.import_module(f"tests.fuzz.{mod.name}")
            found.extend(module.TARGETS)
    return found


def describe(reports: Iterable[Report]) -> str:
    lines = [f"{'target':28} {'inputs':>8} {'refused':>8} {'unexpected':>10} {'slowest ms':>10}"]
    for r in reports:
        lines.append(
            f"{r.target:28} {r.inputs:8d} {r.refused:8d} {len(r.unexpected):10d}"
            f" {r.slowest_s * 1000:10.1f}"
        )
    return "\n".join(lines)
