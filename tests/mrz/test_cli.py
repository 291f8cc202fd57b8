"""``autogate mrz parse``: JSON out and the 0/1/2 exit status."""

from __future__ import annotations

import json

import pytest

from autogate.cli import main

L1 = "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<"
L2 = "L898902C36UTO7408122F1204159ZE184226B<<<<<10"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict]:
    code = main(list(argv))
    return code, json.loads(capsys.readouterr().out)


def test_parse_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "mrz", "parse", L1, L2, "--today", "2026-11-25")
    assert code == 0
    assert out["date_of_birth"] == "1974-08-12" and out["format"] == "TD3"
    assert out["valid"] is True and out["reasons"] == [] and out["repaired"] == []


def test_parse_invalid_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "mrz", "parse", L1, L2[:9] + "0" + L2[10:], "--no-repair")
    assert code == 1 and "doc_check_number" in out["reasons"]


def test_parse_unreadable_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run(capsys, "mrz", "parse", "HELLO")
    assert code == 2 and out["reasons"] == ["doc_format"]


def test_read_page_and_bad_file(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    from sim.page import write_page

    page = tmp_path / "page.png"
    ident = write_page(page, 31, "clean")
    code, out = run(capsys, "mrz", "read", str(page), "--today", "2026-11-25")
    assert code == 0 and out["document_number"] == ident.document_number
    assert 0 < out["confidence"] <= 1 and out["elapsed_ms"] > 0
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image")
    code, out = run(capsys, "mrz", "read", str(junk))
    assert code == 2 and out["reasons"] == ["doc_unreadable"] and out["valid"] is False
    assert out["lines"] == [] and out["repaired"] == []


def test_read_blank_page_still_has_lines(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    import cv2
    import numpy as np

    blank = tmp_path / "blank.png"
    cv2.imwrite(str(blank), np.full((600, 900), 230, np.uint8))
    code, out = run(capsys, "mrz", "read", str(blank))
    assert code == 2 and out["lines"] == [] and out["reasons"] == ["doc_not_found"]


MISTYPED = L2[:8] + "4" + L2[9:]  # number L898902C3 mistyped as L898902C4: check fails


def test_repaired_mrz_says_so_plainly_and_strict_refuses_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Issue 22 item 6: a mistyped number came back repaired into another number, exit 0,
    the change visible only inside "repaired"."""
    code = main(["mrz", "parse", L1, MISTYPED, "--today", "2010-01-01"])
    res = capsys.readouterr()
    out = json.loads(res.out)
    assert out["repaired"], out
    assert "REPAIRED" in out["notice"] and "REPAIRED" in res.err
    assert code == 0 and out["valid"] is True  # repaired OCR confusions stay usable
    code = main(["mrz", "parse", L1, MISTYPED, "--today", "2010-01-01", "--strict"])
    out = json.loads(capsys.readouterr().out)
    assert code == 1 and out["valid"] is False and "refused" in out["strict"]
    # a clean MRZ is unaffected by --strict and carries no notice
    code, out = run(capsys, "mrz", "parse", L1, L2, "--today", "2026-11-25", "--strict")
    assert code == 0 and out["valid"] is True and "notice" not in out


def test_bad_today_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["mrz", "parse", L1, L2, "--today", "2020-13-01"])
    assert exc.value.code == 2
    assert "not a date" in capsys.readouterr().err
