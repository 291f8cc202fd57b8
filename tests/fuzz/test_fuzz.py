"""Every registered parser survives a few thousand mutated inputs with only its reasoned
refusals (the long run, 100,000 per parser, is ``bench/fuzz.py``)."""

from __future__ import annotations

import pytest

from tests.fuzz import harness

INPUTS = 2000
TARGETS = harness.all_targets()


@pytest.mark.parametrize("target", TARGETS, ids=[t.name for t in TARGETS])
def test_no_unexpected_exception(target: harness.Target) -> None:
    report = harness.run(target, INPUTS)
    assert report.inputs > INPUTS // 2
    if report.unexpected:
        first = report.unexpected[0]
        pytest.fail(
            f"{target.name}: {len(report.unexpected)} unexpected; first on "
            f"{first.data[:80].hex()}...\n{first.error}"
        )
    assert report.slowest_s < 1.0, f"{target.name}: slowest input {report.slowest_s:.2f} s"


def test_harness_finds_a_planted_crash() -> None:
    """The fuzzer is only worth its green if it can go red."""

    def fragile(data: bytes) -> None:
        if len(data) > 2 and data[0] == 0x30:
            _ = data[data[1]]  # reads past the end when the length byte lies
        if data[:1] != b"\x30":
            raise ValueError("not a sequence")

    target = harness.Target(
        "planted", lambda: [bytes([0x30, 0x02, 0x05, 0x00])], fragile, (ValueError,)
    )
    report = harness.run(target, 2000)
    assert any("IndexError" in f.error for f in report.unexpected)


def test_harness_retiming_keeps_a_truly_slow_input() -> None:
    """Re-timing the slowest inputs (noise on a shared machine) must not hide a slow one."""
    import time

    def slow_on_ff(data: bytes) -> None:
        if data[:1] == b"\xff":
            time.sleep(0.15)

    target = harness.Target("slow", lambda: [b"\x00\x01", b"\xff\x00"], slow_on_ff)
    report = harness.run(target, 50)
    assert report.slowest_s >= 0.15 and report.slowest_input[:1] == b"\xff"
