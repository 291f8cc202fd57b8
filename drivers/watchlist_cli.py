"""``autogate lists build|check``: make a hashed list file from a plain CSV, and query it.

The plain CSV (header row required; unused columns may be empty or left out)::

    kind,document_number,issuing_state,surname,given_names,date_of_birth,pass_type,valid_until
    stolen,A1234567,MYS,,,,,
    lost,K0000001,,,,,,                  <- no issuing state: matches the number from any issuer
    person,,,DOE,JOHN,1970-01-31,,
    pass,X9876543,IDN,,,,EP,2027-06-30

The output holds only HMAC-SHA256 digests under a fresh per-list salt (and pass types
and dates keyed by digest), is written atomically, and is picked up by a running gate
(``LocalWatchlist``/``LocalPassRegistry`` re-read it when it changes). Keep the plain
CSV off the gate.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import sys
from pathlib import Path

from drivers.watchlist import (
    Entry,
    HashedList,
    ListFile,
    ListFileError,
    document_keys,
    hash_entries,
    person_key,
    write_list,
)

KINDS = ("stolen", "lost", "person", "pass")


class CsvError(Exception):
    """A row that cannot become a list entry; ``str()`` is ``file:line: why``."""


def read_entries(path: Path) -> list[Entry]:
    entries: list[Entry] = []
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if not reader.fieldnames or "kind" not in reader.fieldnames:
                raise CsvError(f"{path}:1: header row with a 'kind' column expected")
            for row in reader:
                where = f"{path}:{reader.line_num}"
                try:
                    entries.append(_entry(row))
                except ValueError as exc:
                    raise CsvError(f"{where}: {exc}") from None
    except OSError as exc:
        raise CsvError(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise CsvError(f"{path}: not UTF-8 text; save the CSV as UTF-8") from None
    return entries


def _entry(row: dict[str, str | None]) -> Entry:
    def get(key: str) -> str:
        return (row.get(key) or "").strip()

    def date(key: str) -> dt.date | None:
        return dt.date.fromisoformat(get(key)) if get(key) else None

    kind = get("kind").lower()
    if kind not in KINDS:
        raise ValueError(f"kind {kind!r} is not one of {', '.join(KINDS)}")
    entry = Entry(
        kind=kind,  # type: ignore[arg-type]
        document_number=get("document_number"),
        issuing_state=get("issuing_state"),
        surname=get("surname"),
        given_names=get("given_names"),
        date_of_birth=date("date_of_birth"),
        pass_type=get("pass_type"),
        valid_until=date("valid_until"),
    )
    hash_entries([entry], salt=b"\0" * 32)  # validates the row (raises ValueError)
    return entry


def cmd_build(args: argparse.Namespace) -> int:
    if Path(args.out).is_dir():
        print(f"autogate lists build: {args.out} is a folder; give a file name", file=sys.stderr)
        return 2
    try:
        entries = read_entries(Path(args.csv))
        salt = bytes.fromhex(args.salt_hex) if args.salt_hex else None
        if salt is not None and len(salt) < 16:
            raise CsvError("--salt-hex: at least 16 bytes (32 hex digits)")
        hashed = hash_entries(entries, salt)
        write_list(hashed, Path(args.out))
    except (CsvError, ValueError) as exc:
        print(f"autogate lists build: {exc}", file=sys.stderr)
        return 2
    print(
        f"{args.out}: {len(hashed.stolen)} stolen, {len(hashed.lost)} lost, "
        f"{len(hashed.person)} person, {len(hashed.passes)} pass entries"
    )
    return 0


def _issuers() -> list[str]:
    """Every code a document's issuer can have (ICAO 9303-3), for a search without one."""
    from gate.policy_config import ICAO_EXTRA_CODES, iso_alpha3

    return sorted(iso_alpha3() | set(ICAO_EXTRA_CODES))


def cmd_check(args: argparse.Namespace) -> int:
    """Exit (docs/cli.md): 0 nothing adverse (no entry, or only a pass), 1 listed
    (stolen, lost or person: the gate would refer), 2 no search could be made."""
    if not args.number and not args.surname:
        print(
            "autogate lists check: nothing to look up: give --number [--state] "
            "or --surname --birth [--given-names]",
            file=sys.stderr,
        )
        return 2
    if args.surname and not args.birth:
        print("autogate lists check: --surname needs --birth (YYYY-MM-DD)", file=sys.stderr)
        return 2
    try:
        lst: HashedList = ListFile(Path(args.list)).get()
        birth = dt.date.fromisoformat(args.birth) if args.birth else None
    except (ListFileError, ValueError) as exc:
        print(f"autogate lists check: {exc}", file=sys.stderr)
        return 2
    listed: list[str] = []
    passes: list[str] = []
    if args.number:
        # without --state every issuer is tried: an entry is keyed by issuer and number
        for state in [args.state] if args.state else ["", *_issuers()]:
            keys = document_keys(lst.salt, state, args.number)
            on = f" (issuing state {state})" if state and not args.state else ""
            for kind, bag in (("stolen", lst.stolen), ("lost", lst.lost)):
                listed += [f"{kind}{on}" for k in dict.fromkeys(keys) if k in bag]
            for key in dict.fromkeys(keys):
                if (rec := lst.passes.get(key)) is not None:
                    valid = "valid" if rec.valid_until >= dt.date.today() else "EXPIRED"
                    passes.append(f"pass {rec.pass_type} {valid} until {rec.valid_until}{on}")
    given = args.given_names or ""
    if args.surname and birth and person_key(lst.salt, args.surname, given, birth) in lst.person:
        listed.append("person")
    found = list(dict.fromkeys(listed + passes))
    print("\n".join(found) if found else "no entry")
    return 1 if listed else 0


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    lists = subparsers.add_parser("lists", help="local watchlist and pass registry files")
    sub = lists.add_subparsers(dest="lists_command", required=True)

    build = sub.add_parser("build", help="hash a plain CSV into a list file")
    build.add_argument("csv", help="plain CSV (kind,document_number,issuing_state,...)")
    build.add_argument("out", help="hashed list JSON to write")
    build.add_argument("--salt-hex", help="salt to use (default: fresh random 32 bytes)")
    build.set_defaults(func=cmd_build)

    check = sub.add_parser(
        "check",
        help="look a document or person up (exit 0 nothing adverse, 1 listed, 2 error)",
    )
    check.add_argument("list", help="hashed list JSON")
    check.add_argument("--number", help="document number")
    check.add_argument("--state", help="issuing state (ICAO code); default: every issuer")
    check.add_argument("--surname")
    check.add_argument("--given-names")
    check.add_argument("--birth", help="date of birth, YYYY-MM-DD")
    check.set_defaults(func=cmd_check)
