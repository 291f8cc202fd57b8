"""Glyph cutting on line crops drawn here: broken glyphs, window shifts."""

from __future__ import annotations

import cv2
import numpy as np

from drivers.mrz_ocr import SHIFTS, _join_split, glyphs, read_line


def test_stems_of_a_split_glyph_are_joined_and_separate_glyphs_are_not() -> None:
    # boxes [x, y, w, h] at a pitch of 23 px, 15 px wide; the 4th glyph (an N whose
    # diagonal vanished) fell apart into two stems 2 px apart
    boxes = [[5 + 23 * i, 0, 15, 24] for i in range(3)]
    boxes += [[74, 0, 6, 24], [82, 0, 7, 24]]
    boxes += [[5 + 23 * i, 0, 15, 24] for i in range(4, 8)]
    # two narrow glyphs (I I) with the usual gap between them stay two
    boxes += [[5 + 23 * 8 + 4, 0, 6, 24], [5 + 23 * 9 + 4, 0, 6, 24]]
    out = _join_split(boxes)
    assert len(out) == len(boxes) - 1
    assert out[3] == [74, 0, 15, 24]


def _line(text: str, gap_in: set[int]) -> np.ndarray:
    """A line of block glyphs 12 px wide at a 24 px pitch; those whose index is in
    ``gap_in`` are drawn as two stems with a 2 px gap (the N of a thin print after
    binarisation)."""
    img = np.full((40, 30 + 24 * len(text)), 255, np.uint8)
    for i, _ in enumerate(text):
        x = 15 + 24 * i
        if i in gap_in:
            cv2.rectangle(img, (x, 8), (x + 4, 31), 0, -1)
            cv2.rectangle(img, (x + 7, 8), (x + 11, 31), 0, -1)
        else:
            cv2.rectangle(img, (x, 8), (x + 11, 31), 0, -1)
    return img


def test_a_line_with_split_glyphs_keeps_its_length() -> None:
    line = _line("X" * 20, gap_in={3, 11})
    assert len(glyphs(line)) == 20


def test_read_line_combines_the_shifted_windows() -> None:
    line = _line("X" * 12, gap_in=set())
    g = glyphs(line, shifts=SHIFTS)
    assert len(g) == len(SHIFTS) * 12
    read = read_line(line)
    assert len(read.text) == 12 and read.probs.shape == (12, 37)
    assert np.allclose(read.probs.sum(axis=1), 1.0, atol=1e-5)


def test_stems_under_half_a_pitch_apart_are_one_glyph_even_with_a_gap() -> None:
    # an M of thin print at a 19 px pitch: its stems 3 px apart, more than the 0.4 of the
    # usual 6 px gap between glyphs, but their centres 8.5 px apart, which no two
    # characters of a fixed-pitch line are
    boxes = [[5 + 19 * i, 0, 13, 22] for i in range(3)]
    boxes += [[62, 0, 6, 22], [71, 0, 5, 22]]
    boxes += [[5 + 19 * i, 0, 13, 22] for i in range(4, 9)]
    out = _join_split(boxes)
    assert len(out) == len(boxes) - 1
    assert out[3] == [62, 0, 14, 22]


def test_a_real_line_whose_m_fell_apart_is_cut_at_its_length() -> None:
    # the Jersey specimen's name line on a card whose lines almost touch (sim/real_pages,
    # "tight"): its M counted as two characters, every glyph after it was cut one place
    # off and SPECIMEN read as SFZE<IIZI
    from drivers.mrz_ocr import find_bands, layout
    from models.mrz.folds import load_folds
    from sim.real_pages import build_page, load_crops

    fold = set(load_folds()[2])
    crops = tuple(c for c in load_crops() if c.name in fold)
    page, truth = build_page(1022, "tight", crops=crops)
    assert truth[0] == "P<GBRJERSEY<SPECIMEN<<ANGELA<ZOE<<<<<<<<<<<<"
    band = next(find_bands(page))
    lay = layout(band[0])
    assert lay is not None and len(lay.centres) == 44
