"""``autogate mrz parse LINE...`` and ``autogate mrz read IMAGE``: one JSON object out.

Exit status (docs/cli.md): 0 valid MRZ, 1 read but invalid (or, with ``--strict``,
valid only after a repair), 2 nothing could be read or a bad argument.

A repair (an OCR confusion undone, or a character changed so a check digit holds) is
said plainly: ``"repaired"`` lists each change, ``"notice"`` says it in words and the
same line goes to stderr. A mistyped check digit can make a repair "succeed" with a
different document number, so ``--strict`` refuses any MRZ that needed one.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from typing import Any

from gate.mrz import parse_mrz
from gate.results import DocumentResult, MrzRecord

FIELDS = (
    "format",
    "document_code",
    "issuing_state",
    "surname",
    "given_names",
    "document_number",
    "nationality",
    "date_of_birth",
    "sex",
    "date_of_expiry",
    "optional_data",
    "optional_data_2",
)


def record_json(rec: MrzRecord | None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rec is not None:
        for name in FIELDS:
            value = getattr(rec, name)
            out[name] = value.isoformat() if isinstance(value, dt.date) else value
        out["lines"] = list(rec.lines)
        out["valid"] = rec.valid
        out["reasons"] = [str(r) for r in rec.reasons]
        out["repaired"] = [list(r) for r in rec.repaired]
    else:  # the same keys whatever was found, so a caller never tests for their presence
        out["lines"] = []
        out["valid"] = False
        out["reasons"] = []
        out["repaired"] = []
    out.update(extra or {})
    return out


def _status(rec: MrzRecord | None) -> int:
    if rec is None or not rec.format:
        return 2
    return 0 if rec.valid else 1


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def repair_notice(rec: MrzRecord | None) -> str | None:
    """One plain sentence when the MRZ as printed did not check and was changed."""
    if rec is None or not rec.repaired:
        return None
    changes = ", ".join(
        f"line {ln + 1} col {col + 1} {a!r}->{b!r}" for ln, col, a, b in rec.repaired
    )
    n = len(rec.repaired)
    return (
        f"REPAIRED: the MRZ as given does not check; {n} character{'s' * (n > 1)} changed "
        f"({changes}). The fields shown are the repaired ones: compare them with the "
        "document; --strict refuses a repaired MRZ."
    )


def _report(rec: MrzRecord | None, extra: dict[str, Any], strict: bool) -> int:
    out = record_json(rec, extra)
    notice = repair_notice(rec)
    status = _status(rec)
    if notice:
        out["notice"] = notice
        print(notice, file=sys.stderr)
        if strict and status == 0:
            out["valid"] = False
            out["strict"] = "refused: the MRZ needed a repair"
            status = 1
    print(json.dumps(out))
    return status


def _parse(args: argparse.Namespace) -> int:
    today = args.today or dt.date.today()
    rec = parse_mrz(args.lines, today=today, repair=not args.no_repair)
    return _report(rec, {}, args.strict)


def _read(args: argparse.Namespace) -> int:
    from drivers.scanner import read_image  # OpenCV and the model load only when reading

    today = args.today or dt.date.today()
    res: DocumentResult = read_image(args.image, today=today)
    rec = res.mrz
    extra = {
        "uncertain": list(res.uncertain),
        "confidence": round(res.confidence, 4),
        "elapsed_ms": round(res.elapsed_s * 1000, 1),
    }
    reasons = [str(r) for r in rec.reasons] if rec is not None else []
    extra["reasons"] = reasons + [str(r) for r in res.reasons if str(r) not in reasons]
    return _report(rec, extra, args.strict)


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``mrz parse`` and ``mrz read`` under the ``autogate`` CLI."""
    mrz = subparsers.add_parser("mrz", help="parse or read a machine-readable zone")
    sub = mrz.add_subparsers(dest="mrz_command", required=True)
    p = sub.add_parser("parse", help="parse MRZ lines given as arguments")
    p.add_argument("lines", nargs="+", metavar="LINE")
    p.add_argument("--no-repair", action="store_true", help="do not undo OCR confusions")
    p.add_argument("--strict", action="store_true", help="a repaired MRZ is invalid (exit 1)")
    p.add_argument(
        "--today", type=_iso_date, help="ISO date used for two-digit years (default: today)"
    )
    p.set_defaults(func=_parse)
    r = sub.add_parser("read", help="find and read the MRZ on a data-page image")
    r.add_argument("image")
    r.add_argument("--strict", action="store_true", help="a repaired MRZ is invalid (exit 1)")
    r.add_argument(
        "--today", type=_iso_date, help="ISO date used for two-digit years (default: today)"
    )
    r.set_defaults(func=_read)
