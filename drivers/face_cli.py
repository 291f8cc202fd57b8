"""``autogate face verify`` and ``autogate face calibrate``.

``verify PORTRAIT LIVE...`` prints one JSON object and exits 0 on a match, 1 on no match
or a reject (quality, PAD), 2 when the input cannot be read. ``calibrate PAIRS.csv``
scores a labelled pair set (a side may be a folder of frames: a live burst, fused as the
gate fuses one), draws the DET curve, writes a *new* descriptor with the threshold at the
target FMR (the shipped one only with ``--replace``) and prints FMR/FNMR per group.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    face = subparsers.add_parser("face", help="live face verification tools")
    sub = face.add_subparsers(dest="face_cmd", required=True)

    v = sub.add_parser("verify", help="verify live frames (or a video) against a portrait")
    v.add_argument("portrait", type=Path, help="chip portrait (JPEG, JPEG 2000, PNG)")
    v.add_argument("live", type=Path, nargs="+", help="live frames of one burst, or a video")
    v.add_argument("--descriptor", type=Path, default=None, help="model descriptor JSON")
    v.add_argument("--onnx-model", type=Path, default=None, help="ArcFace ONNX model file")
    v.add_argument("--frames", type=int, default=5, help="frames to take from a video")
    v.add_argument("--no-pad", action="store_true", help="skip presentation-attack checks")
    v.set_defaults(func=cmd_verify)

    c = sub.add_parser("calibrate", help="calibrate the matcher threshold on a pair set")
    c.add_argument("pairs", type=Path, help="CSV with columns a,b,same (paths relative to it)")
    c.add_argument("--descriptor", type=Path, default=None, help="descriptor JSON to start from")
    c.add_argument(
        "--out", type=Path, default=None, help="new descriptor (default: NAME.calibrated.json here)"
    )
    c.add_argument(
        "--replace", action="store_true", help="write the threshold into --descriptor itself"
    )
    c.add_argument("--onnx-model", type=Path, default=None, help="ArcFace ONNX model file")
    c.add_argument("--target-fmr", type=float, default=0.001)
    c.add_argument(
        "--fuse", type=int, default=None, help="frames fused per burst folder (default: 3)"
    )
    c.add_argument(
        "--det", type=Path, default=None, help="DET curve PNG (default: beside the descriptor)"
    )
    c.add_argument("--manifest", type=Path, default=None, help="default: manifest.csv beside")
    c.add_argument("--cache", type=Path, default=None, help="embedding cache (.npz)")
    c.add_argument("--dry-run", action="store_true", help="write no descriptor and no plot")
    c.set_defaults(func=cmd_calibrate)


def cmd_calibrate(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.progress import Progress
    from rich.table import Table

    from drivers.errors import DeviceError
    from drivers.face import calibrate as cal
    from drivers.face.detect import Detector
    from drivers.face.fusion import DEFAULT_FRAMES
    from drivers.face.match import DEFAULT_DESCRIPTOR, Descriptor, build_matcher

    console = Console(stderr=True)
    try:
        desc = Descriptor.load(args.descriptor or DEFAULT_DESCRIPTOR)
        matcher = build_matcher(desc, args.onnx_model)
        pairs = cal.read_pairs(args.pairs)
    except (DeviceError, OSError, KeyError, ValueError) as exc:
        console.print(f"[red]cannot calibrate:[/red] {exc}")
        return 2
    src = Path(args.descriptor or DEFAULT_DESCRIPTOR)
    out = src if args.replace else args.out or Path.cwd() / f"{src.stem}.calibrated.json"
    det = args.det or out.with_suffix(".det.png")
    if not args.dry_run and not args.replace and out.resolve() == src.resolve():
        console.print("[red]cannot calibrate:[/red] --out is the descriptor; use --replace")
        return 2
    detector = Detector()
    names = pairs.images
    bursts = any((pairs.root / n).is_dir() for n in names)
    fuse = max(1, args.fuse or DEFAULT_FRAMES) if bursts else 1
    sha = desc.data["weights"].get("sha256", "")
    cache = args.cache or REPO / "bench" / "cache" / f"face-{desc.backend}-{sha[:12]}.npz"
    tag = f"{desc.backend}:{sha}:{desc.data.get('alignment', '')}"
    with Progress(console=console, transient=False) as progress:
        task = progress.add_task("embedding images", total=len(names))
        vecs = cal.embed_images(
            pairs.root,
            names,
            matcher,
            detector,
            cache,
            tag,
            lambda n: progress.advance(task, n),
            frames=fuse,
        )
    failures = sum(1 for n in names if vecs.get(n) is None)
    scores = cal.pair_scores(pairs, vecs, matcher)
    manifest = cal.read_manifest(args.manifest or pairs.root / "manifest.csv")
    res = cal.calibrate(pairs, scores, args.target_fmr, failures, manifest)
    customary = desc.data.get("customary_threshold")
    marks = [(f"calibrated {res.threshold:.3f}", res.fmr, res.fnmr)]
    if customary is not None:
        fmr_c, fnmr_c = cal.rates(res.genuine, res.impostor, float(customary))
        marks.append((f"customary {customary}", fmr_c, fnmr_c))
    if not args.dry_run:
        cal.plot_det(
            {desc.data.get("name", desc.backend): cal.det_curve(res.genuine, res.impostor)},
            det,
            marks,
        )

    table = Table(title=f"threshold {res.threshold:.4f} at target FMR {args.target_fmr:g}")
    for col in ("attribute", "group", "genuine", "impostor", "FMR", "FNMR"):
        table.add_column(col)
    table.add_row(
        "all",
        "",
        str(len(res.genuine)),
        str(len(res.impostor)),
        f"{res.fmr:.4%}",
        f"{res.fnmr:.2%}",
    )
    for g in res.groups:
        table.add_row(
            g.attribute,
            g.group,
            str(g.genuine),
            str(g.impostor),
            f"{g.fmr:.4%}" if g.impostor else "-",
            f"{g.fnmr:.2%}" if g.genuine else "-",
        )
    Console().print(table)
    if args.dry_run:
        return 0
    print(f"DET curve: {det}")
    desc.data["threshold"] = round(res.threshold, 6)
    desc.data["calibration"] = res.summary(args.pairs) | {
        "groups": [vars(g) for g in res.groups],
    }
    if bursts:  # the threshold holds for this fusion only; the verifier reads it here
        desc.data["fusion"] = {
            "frames": fuse,
            "method": "mean embedding of the best passing frames of a burst",
        }
    else:
        desc.data.pop("fusion", None)
    print(f"threshold written to {desc.save_calibrated(out, src, args.replace)}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from drivers.face.verifier import verify_files

    out, status = verify_files(
        args.portrait,
        args.live,
        descriptor=args.descriptor,
        onnx_model=args.onnx_model,
        frames=args.frames,
        pad=not args.no_pad,
    )
    print(json.dumps(out, indent=2))
    return status
