"""``autogate finger calibrate`` and ``autogate finger verify``.

``calibrate PAIRS.csv`` scores a labelled fingerprint pair set (``python -m
sim.fingerprints`` writes a synthetic one; a licensed real set in the same layout
replaces it), sets the threshold at the target FMR with the face calibration's code,
draws the DET curve and writes a *new* descriptor (the shipped one only with
``--replace``). ``verify REFERENCE LIVE`` compares two image files and prints one JSON
object: exit 0 on a match, 1 on none, 2 when an image cannot be read.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    finger = subparsers.add_parser("finger", help="thumbprint matcher tools")
    sub = finger.add_subparsers(dest="finger_cmd", required=True)

    c = sub.add_parser("calibrate", help="calibrate the matcher threshold on a pair set")
    c.add_argument("pairs", type=Path, help="CSV with columns a,b,same (paths relative to it)")
    c.add_argument("--descriptor", type=Path, default=None, help="descriptor JSON to start from")
    c.add_argument(
        "--out", type=Path, default=None, help="new descriptor (default: NAME.calibrated.json here)"
    )
    c.add_argument(
        "--replace", action="store_true", help="write the threshold into --descriptor itself"
    )
    c.add_argument("--target-fmr", type=float, default=0.001)
    c.add_argument(
        "--det", type=Path, default=None, help="DET curve PNG (default: beside the descriptor)"
    )
    c.add_argument("--manifest", type=Path, default=None, help="default: manifest.csv beside")
    c.add_argument(
        "--label", default="", help="what the set is, kept in the descriptor (e.g. synthetic)"
    )
    c.add_argument("--dry-run", action="store_true", help="write no descriptor and no plot")
    c.set_defaults(func=cmd_calibrate)

    v = sub.add_parser("verify", help="compare two fingerprint images")
    v.add_argument("reference", type=Path)
    v.add_argument("live", type=Path)
    v.add_argument("--descriptor", type=Path, default=None)
    v.set_defaults(func=cmd_verify)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from drivers.errors import DeviceError
    from drivers.face import calibrate as cal
    from drivers.finger import calibrate as fcal
    from drivers.finger.matcher import DEFAULT_DESCRIPTOR, Descriptor

    console = Console(stderr=True)
    src = Path(args.descriptor or DEFAULT_DESCRIPTOR)
    try:
        desc = Descriptor.load(src)
        pairs = cal.read_pairs(args.pairs)
    except (DeviceError, OSError, KeyError, ValueError) as exc:
        console.print(f"[red]cannot calibrate:[/red] {exc}")
        return 2
    out = src if args.replace else args.out or Path.cwd() / f"{src.stem}.calibrated.json"
    if not args.dry_run and not args.replace and out.resolve() == src.resolve():
        console.print("[red]cannot calibrate:[/red] --out is the descriptor; use --replace")
        return 2
    det = args.det or out.with_suffix(".det.png")
    with Progress(console=console, transient=False) as progress:
        task = progress.add_task("comparing pairs", total=len(pairs.a))
        scores, refused = fcal.pair_scores(
            pairs.root, pairs.a, pairs.b, lambda n: progress.advance(task, n)
        )
    manifest = cal.read_manifest(args.manifest or pairs.root / "manifest.csv")
    res = cal.calibrate(pairs, scores, args.target_fmr, refused, {})
    # Bozorth3 scores are whole numbers: "score > 32" is "score >= 33"; say it so
    res.threshold = float(math.ceil(res.threshold))
    res.fmr, res.fnmr = cal.rates(res.genuine, res.impostor, res.threshold)
    res.groups = cal.per_group(pairs, scores, manifest, res.threshold, ("class",))
    label = f" ({args.label})" if args.label else ""
    marks = [(f"calibrated {res.threshold:g}", res.fmr, res.fnmr)]
    customary = desc.data.get("customary_threshold")
    if customary is not None:
        fmr_c, fnmr_c = cal.rates(res.genuine, res.impostor, float(customary))
        marks.append((f"customary {customary}", fmr_c, fnmr_c))
    table = Table(title=f"threshold {res.threshold:g} at target FMR {args.target_fmr:g}{label}")
    for col in ("attribute", "group", "genuine", "impostor", "FMR", "FNMR"):
        table.add_column(col)
    rows = [("all", "", len(res.genuine), len(res.impostor), res.fmr, res.fnmr)]
    rows += [(g.attribute, g.group, g.genuine, g.impostor, g.fmr, g.fnmr) for g in res.groups]
    for attr, group, ng, ni, fmr, fnmr in rows:
        table.add_row(
            attr, group, str(ng), str(ni),
            f"{fmr:.4%}" if ni else "-", f"{fnmr:.2%}" if ng else "-",
        )  # fmt: skip
    Console().print(table)
    if customary is not None:
        print(f"at the customary {customary}: FMR {marks[1][1]:.4%}, FNMR {marks[1][2]:.2%}")
    if args.dry_run:
        return 0
    cal.plot_det(
        {f"{desc.data.get('name', 'nbis')}{label}": cal.det_curve(res.genuine, res.impostor)},
        det,
        marks,
    )
    print(f"DET curve: {det}")
    desc.data["threshold"] = float(res.threshold)
    summary = res.summary(args.pairs) | {"groups": [vars(g) for g in res.groups]}
    summary["images_refused"] = summary.pop("images_without_face")
    if args.label:
        summary["label"] = args.label
    desc.data["calibration"] = summary
    print(f"threshold written to {desc.save_calibrated(out, src, args.replace)}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from drivers.errors import DeviceError
    from drivers.finger.calibrate import load_png
    from drivers.finger.matcher import DEFAULT_DESCRIPTOR, Descriptor, NBISMatcher

    try:
        desc = Descriptor.load(args.descriptor or DEFAULT_DESCRIPTOR)
        ref, live = load_png(args.reference), load_png(args.live)
    except (DeviceError, OSError, ValueError) as exc:
        print(f"finger verify: cannot read an image: {exc}", file=sys.stderr)
        return 2
    matcher = NBISMatcher()  # the files may come from anywhere: compare out of process
    try:
        c = matcher.compare(ref, live)
    except ValueError as exc:
        print(json.dumps({"matched": False, "score": None, "detail": str(exc)}))
        return 1
    finally:
        matcher.close()
    matched = c.score >= desc.threshold
    print(json.dumps({
        "matched": matched, "score": c.score, "threshold": desc.threshold,
        "minutiae": [c.minutiae_reference, c.minutiae_live],
        "match_ms": round(c.match_ms, 1),
    }))  # fmt: skip
    return 0 if matched else 1
