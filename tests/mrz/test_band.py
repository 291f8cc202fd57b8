"""Finding the MRZ band by its geometry: lines of one height at one pitch, not shared ends."""

from __future__ import annotations

import datetime as dt

import pytest

from drivers.mrz_ocr import _group, bands
from drivers.scanner import read_image
from sim.real_pages import DATA, build_page


def line(cx: float, cy: float, w: float, h: float = 20.0, ang: float = 0.0) -> tuple:
    return ((cx, cy), (w, h), ang)


def test_centred_lines_of_unequal_width_are_one_band() -> None:
    # lines of one band from another printer: centred, 20 % apart in width
    group = _group([line(500, 100, 800), line(500, 140, 640)])
    assert len(group) == 2
    assert all(abs(b[1][0] - 800) < 1 for b in group)  # both span the band


def test_td1_name_line_cut_short_by_faint_fillers_joins() -> None:
    # TD1: two full lines, and a name line as long as its letters (fillers too faint)
    group = _group([line(500, 100, 600), line(500, 140, 600), line(325, 180, 250)])
    assert len(group) == 3
    assert [round(b[0][1]) for b in group] == [100, 140, 180]
    assert all(abs(b[0][0] - 500) < 1 and abs(b[1][0] - 600) < 1 for b in group)


def test_short_print_lines_above_a_band_do_not_win() -> None:
    # field values on the page: three short lines at a regular pitch, above a TD3 band
    values = [line(200, y, 220, 18) for y in (300, 340, 380)]
    mrz = [line(700, 500, 1300, 36), line(700, 560, 1300, 36)]
    found = bands(values + mrz)
    assert [round(b[0][1]) for b in found[0]] == [500, 560]


def test_a_short_third_line_is_followed_by_the_band_without_it() -> None:
    # a short line above a TD3 could be page text: the two long lines come next
    found = bands([line(350, 60, 300), line(500, 100, 600), line(500, 140, 600)])
    assert [len(g) for g in found[:2]] == [3, 2]


@pytest.mark.skipif(not DATA.is_dir(), reason="needs ../shared/data/mrz/real_lines")
@pytest.mark.parametrize("level", ["as_is", "page", "tight"])
def test_real_crops_set_into_pages_are_found(level: str) -> None:
    # real lines of unequal widths, centred; on "page" with labels and values above; on
    # "tight" so close that their closed blobs merge (the character-row finder sees them)
    for seed in range(1000, 1012):
        img, truth = build_page(seed, level)
        res = read_image(img, today=dt.date(2026, 12, 7))
        assert res.mrz is not None, (seed, res.reasons)
        assert [len(x) for x in res.mrz.lines] == [len(x) for x in truth], seed


@pytest.mark.parametrize("seed", [1013, 1015, 1063, 1093])
def test_a_band_that_is_not_one_valid_mrz_is_reported_as_read(seed: int) -> None:
    # lines of different documents (1063: a French national card's own layout; the others
    # made-up test lines whose check digits are random): every line is read right, and the
    # repair used to force a layout's field types or a check digit onto them (0 -> O,
    # 5 -> S, 2 -> Z), turning a right read into wrong text
    img, truth = build_page(seed, "as_is")
    res = read_image(img, today=dt.date(2026, 12, 7))
    assert res.mrz is not None and not res.mrz.valid
    assert list(res.mrz.lines) == truth


def test_character_rows_found_where_blobs_merge() -> None:
    from drivers.mrz_band import char_lines

    img, truth = build_page(3002, "tight")
    rows = char_lines(img)
    assert len(rows) == len(truth)
    assert len(bands(rows)[0]) == len(truth)
    # each row spans its line: as wide as its characters, about as high as a capital
    assert all(b[1][0] > 20 * b[1][1] for b in rows)


def test_degenerate_boxes_are_no_band() -> None:
    assert bands([line(100, 100, 500, 0.0), line(100, 130, 500, 0.0)]) == []
    assert bands([]) == [] and _group([line(1, 1, 1, 1)]) == []


def test_pages_of_one_fold_are_cut_from_that_fold_only() -> None:
    # bench/mrz_band.py --cv-dir reads a page with the models that never saw its crops
    from models.mrz.folds import load_folds
    from sim.real_pages import load_crops

    fold = set(load_folds()[2])
    crops = tuple(c for c in load_crops() if c.name in fold)
    texts = {c.text for c in crops}
    others = {c.text for c in load_crops() if c.name not in fold} - texts
    for seed in range(12):
        _, truth = build_page(seed, "as_is", crops=crops)
        assert all(t in texts for t in truth)
        assert not any(t in others for t in truth)


@pytest.mark.parametrize("level", ["tight", "page"])
def test_a_line_whose_first_glyphs_stand_apart_is_cut_whole(level: str) -> None:
    # a TD1 first line of wide pitch (ACBSO0CPLLTRB04...): the closing did not bridge the
    # gaps of its first characters, the band took the other lines' length and clipped its
    # A, and the line read CBSO0CPL...< (every character one place early)
    from drivers.mrz_ocr import find_bands, layout
    from models.mrz.folds import load_folds
    from sim.real_pages import load_crops

    fold = set(load_folds()[2267 % 5])
    crops = tuple(c for c in load_crops() if c.name in fold)
    page, truth = build_page(2267, level, crops=crops)
    assert truth[0] == "ACBSO0CPLLTRB04<<<<<<<<<<<<<<<"
    lay = layout(next(find_bands(page))[0])
    assert lay is not None and len(lay.centres) == 30
