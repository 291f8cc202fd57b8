"""``autogate chip readers`` and ``autogate chip read``: the chip reader from a shell.

``read`` prints one JSON object (access control, files and sizes, DG1, portrait, passive
and active authentication with reasons, APDU count and time per step); ``--out`` also
writes the portrait and the raw files. Exit status: 0 read and verified, 1 read with
reasons, 2 no reader / no card / bad arguments.
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from drivers.chip import ReaderNotFound, list_readers, read_once
from drivers.errors import DeviceError
from drivers.icao.document import ReadOptions
from drivers.icao.pa import TrustStore
from gate.config import PcscChipConfig
from gate.results import MrzRecord


def _yymmdd(value: str) -> str:
    if not re.fullmatch(r"\d{6}", value):
        raise argparse.ArgumentTypeError("expected YYMMDD")
    return value


def cmd_readers(args: argparse.Namespace) -> int:
    try:
        names = list_readers()
    except DeviceError as exc:
        print(json.dumps({"error": exc.detail}))
        return 2
    print(json.dumps({"readers": names}))
    return 0


def cmd_read(args: argparse.Namespace) -> int:
    number = args.document_number.upper()
    mrz = MrzRecord(
        format="",
        document_code="",
        issuing_state="",
        surname="",
        given_names="",
        document_number=number,
        nationality="",
        date_of_birth=None,
        sex="",
        date_of_expiry=None,
        birth_raw=args.birth,
        expiry_raw=args.expiry,
    )
    cfg = PcscChipConfig(
        type="pcsc",
        reader=args.reader,
        csca_dir=args.csca,
        master_list=args.master_list,
        crl_dir=args.crl,
        eac_dir=args.eac,
        pace="never" if args.no_pace else "prefer",
        extended_length=args.extended,
        card_wait_s=args.wait,
    )
    try:
        trust = TrustStore.load(cfg.csca_dir, cfg.master_list, cfg.crl_dir)
        rep, portrait = read_once(cfg, trust, mrz, opts_hook=_no_cross_check)
    except ReaderNotFound as exc:
        print(json.dumps({"error": exc.detail}))
        return 2
    except (OSError, ValueError) as exc:
        print(json.dumps({"error": f"trust store: {exc}"}))
        return 2
    out = rep.to_json()
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        for name, raw in rep.files.items():
            (args.out / f"{name}.bin").write_bytes(raw)
        if portrait is not None and rep.portrait is not None:
            ext = "jpg" if rep.portrait.format == "jpeg" else "jp2"
            (args.out / f"portrait.{ext}").write_bytes(portrait)
        ext_of = {"wsq": "wsq", "jpeg": "jpg", "jpeg2000": "jp2", "png": "png"}
        for i, f in enumerate(rep.fingers):
            name = f"finger{i}_pos{f.position}.{ext_of.get(f.compression, 'raw')}"
            (args.out / name).write_bytes(f.image)
        out["out"] = str(args.out)
    print(json.dumps(out, indent=None if args.compact else 2))
    if not rep.present:
        return 2
    return 0 if not rep.reasons else 1


def _no_cross_check(opts: ReadOptions) -> ReadOptions:
    opts.cross_check = False  # only the key fields are given on the command line
    return opts


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    chip = subparsers.add_parser("chip", help="ePassport chip over PC/SC")
    sub = chip.add_subparsers(dest="chip_command", required=True)
    p = sub.add_parser("readers", help="list PC/SC readers")
    p.set_defaults(func=cmd_readers)
    p = sub.add_parser("read", help="read and verify the chip in a reader, print JSON")
    p.add_argument("--reader", default="Virtual PCD 00 00", help="name or unique prefix")
    p.add_argument("--document-number", required=True)
    p.add_argument("--birth", required=True, type=_yymmdd, help="YYMMDD")
    p.add_argument("--expiry", required=True, type=_yymmdd, help="YYMMDD")
    p.add_argument("--csca", type=Path, help="folder of trusted CSCA certificates")
    p.add_argument("--master-list", type=Path, help="ICAO master list file")
    p.add_argument("--crl", type=Path, help="folder of CRLs")
    p.add_argument("--eac", type=Path, help="EAC trust folder (a folder per issuing state)")
    p.add_argument("--out", type=Path, help="write portrait and raw files here")
    p.add_argument("--no-pace", action="store_true", help="BAC only")
    p.add_argument("--extended", choices=["auto", "on", "off"], default="auto")
    p.add_argument("--wait", type=float, default=2.0, help="seconds to wait for a card")
    p.add_argument("--compact", action="store_true", help="one line of JSON")
    p.set_defaults(func=cmd_read)
