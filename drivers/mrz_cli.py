"""``autogate mrz parse LINE...`` and ``autogate mrz read IMAGE``: one JSON object out.

Exit status: 0 valid MRZ, 1 read but invalid, 2 nothing could be read.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
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


def _parse(args: argparse.Namespace) -> int:
    today = dt.date.fromisoformat(args.today) if args.today else dt.date.today()
    rec = parse_mrz(args.lines, today=today, repair=not args.no_repair)
    print(json.dumps(record_json(rec)))
    return _status(rec)


def _read(args: argparse.Namespace) -> int:
    from drivers.scanner import read_image  # OpenCV and the model load only when reading

    today = dt.date.fromisoformat(args.today) if args.today else dt.date.today()
    res: DocumentResult = read_image(args.image, today=today)
    rec = res.mrz
    extra = {
        "uncertain": list(res.uncertain),
        "confidence": round(res.confidence, 4),
        "elapsed_ms": round(res.elapsed_s * 1000, 1),
    }
    out = record_json(rec, extra)
    reasons = list(out.get("reasons", []))
    out["reasons"] = reasons + [str(r) for r in res.reasons if str(r) not in reasons]
    print(json.dumps(out))
    return _status(rec)


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    """Register ``mrz parse`` and ``mrz read`` under the ``autogate`` CLI."""
    mrz = subparsers.add_parser("mrz", help="parse or read a machine-readable zone")
    sub = mrz.add_subparsers(dest="mrz_command", required=True)
    p = sub.add_parser("parse", help="parse MRZ lines given as arguments")
    p.add_argument("lines", nargs="+", metavar="LINE")
    p.add_argument("--no-repair", action="store_true", help="do not undo OCR confusions")
    p.add_argument("--today", help="ISO date used for two-digit years (default: today)")
    p.set_defaults(func=_parse)
    r = sub.add_parser("read", help="find and read the MRZ on a data-page image")
    r.add_argument("image")
    r.add_argument("--today", help="ISO date used for two-digit years (default: today)")
    r.set_defaults(func=_read)
