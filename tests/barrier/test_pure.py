"""The driver's pure parts: body counting from beams, door position, register spans."""

from __future__ import annotations

import pytest

from drivers.barrier import Snapshot, bodies_from_beams
from drivers.regmap import load_regmap
from gate.inputs import Door


@pytest.mark.parametrize(
    ("beams", "bodies"),
    [
        ((), 0),
        ((False, False, False), 0),
        ((False, True, False), 1),
        ((True, True, False), 1),  # one body across two beams
        ((True, False, True), 2),  # two bodies apart
        ((True, False, True, False, True), 3),
    ],
)
def test_bodies_from_beams(beams: tuple[bool, ...], bodies: int) -> None:
    assert bodies_from_beams(beams) == bodies


def _snap(closed: bool, opened: bool | None, people: int = 0, beams=(False,)) -> Snapshot:  # type: ignore[no-untyped-def]
    return Snapshot(
        t=0.0,
        closed={Door.ENTRY: closed, Door.EXIT: True},
        opened={Door.ENTRY: opened, Door.EXIT: None},
        beams=beams,
        emergency=False,
        tamper=False,
        people=people,
        boot_count=None,
        status=None,
    )


def test_open_is_confirmed_by_the_limit_switch_when_there_is_one() -> None:
    moving = _snap(closed=False, opened=False)
    assert not moving.at(Door.ENTRY, want_open=True)  # unlatched, still travelling
    assert _snap(closed=False, opened=True).at(Door.ENTRY, want_open=True)
    assert _snap(closed=False, opened=None).at(Door.ENTRY, want_open=True)  # no switch
    assert _snap(closed=True, opened=False).at(Door.ENTRY, want_open=False)


def test_presence_is_the_larger_of_counter_and_beams() -> None:
    assert _snap(True, None, people=1, beams=(True, False, True)).presence == 2
    assert _snap(True, None, people=2, beams=(False, True, False)).presence == 2


def test_each_poll_is_one_block_per_table() -> None:
    generic = load_regmap("generic-2door")
    assert generic.di_span() == (0, 9) and generic.ir_span() == (0, 4)
    compact = load_regmap("compact-nocount")
    assert compact.di_span() == (32, 13) and compact.ir_span() == (100, 1)
