"""The data-page renderer: reproducible from a seed, and its MRZ is valid."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from gate.mrz import parse_mrz
from sim.page import LEVELS, render_page, write_page


@pytest.mark.parametrize(("fmt", "level"), [("TD3", "clean"), ("TD1", "severe")])
def test_page_has_a_valid_mrz_and_is_reproducible(fmt: str, level: str) -> None:
    img, ident, lines = render_page(7, level, fmt)
    assert img.ndim == 3 and img.dtype == np.uint8 and min(img.shape[:2]) > 400
    rec = parse_mrz(lines, today=dt.date(2026, 11, 25))
    assert rec.valid and rec.format == fmt and rec.document_number == ident.document_number
    again, _, _ = render_page(7, level, fmt)
    assert np.array_equal(img, again)


def test_levels_and_write(tmp_path) -> None:
    assert LEVELS == ("clean", "mild", "moderate", "severe")
    with pytest.raises(ValueError):
        render_page(1, "extreme")
    path = tmp_path / "page.png"
    ident = write_page(path, 3, "mild")
    assert path.stat().st_size > 10_000 and ident.fmt == "TD3"
