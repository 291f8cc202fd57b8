"""``autogate sim``: the virtual hardware by hand, and ``autogate sim run``: scenarios.

``autogate sim`` starts the whole virtual gate (controller on a pty, chip behind
pcscd + vpcd, page renderer, camera folder, watchlist service, Mosquitto, the daemon as
its own process), prints how to reach each part, plays the demo travellers while a live
view shows the gate, and with ``--hold`` then takes commands from the keyboard
(``place``, ``walk-in``, ``walk-out``, ``tailgate``, ``emergency on``, ``pull``,
``restore``, ``officer release`` ...) until end of input.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sim.scenario import SCENARIO_DIR, ScenarioError, all_scenarios, load_scenario

DEMO = ("01_citizen_happy_path.yaml", "03_expired_passport.yaml")


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    sim = subparsers.add_parser("sim", help="the virtual hardware of a gate, and scenarios")
    sim.add_argument("--run-dir", type=Path, help="where configs, logs and state go")
    sim.add_argument("--play", nargs="*", type=Path, help="scenarios to play (default: demo)")
    sim.add_argument("--hold", action="store_true", help="then take commands from stdin")
    sim.add_argument(
        "--no-console", action="store_true", help="without the officers' console beside the gate"
    )
    sim.set_defaults(func=cmd_sim)
    sub = sim.add_subparsers(dest="sim_command")
    run = sub.add_parser("run", help="run scenarios and judge them")
    run.add_argument("files", nargs="*", type=Path)
    run.add_argument("--all", action="store_true", help="every file in sim/scenarios/")
    run.add_argument("--run-dir", type=Path)
    run.set_defaults(func=cmd_run)
    fleet = sub.add_parser(
        "fleet",
        help="N light gates on one broker and console; with --sites, sites bridged to a centre",
    )
    fleet.add_argument("--gates", type=_positive(int), default=50, help="gates per site")
    fleet.add_argument(
        "--sites",
        type=_positive(int),
        default=1,
        help="2 or more: one Mosquitto per site, each bridged to a central one (docs/operations.md)",
    )
    fleet.add_argument(
        "--link-cut-s",
        type=_positive(float),
        default=30.0,
        help="with --sites: how long the first site's link to the centre is cut mid-run",
    )
    fleet.add_argument(
        "--ingest",
        choices=["postgresql", "sqlite"],
        help="with --sites: autogate ingest (2 workers) reads the central broker into a "
        "throw-away record; prints the gate-to-database latency",
    )
    fleet.add_argument("--seconds", type=_positive(float), default=60.0)
    fleet.add_argument("--run-dir", type=Path)
    fleet.add_argument(
        "--screenshot", type=Path, help="save the console's hall (1920x1080) at the end here"
    )
    fleet.set_defaults(func=cmd_fleet)


def _positive(kind: type[int] | type[float]):  # type: ignore[no-untyped-def]
    """An argparse type: a number above zero (``--gates -3`` is a mistake, not a run)."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value <= 0:
            raise argparse.ArgumentTypeError(f"{text} must be above 0")
        return value

    return parse


def _run_dir(arg: Path | None) -> Path:
    return arg or Path(tempfile.mkdtemp(prefix="autogate-sim-"))


def _owned(arg: Path | None) -> dict[str, Any]:
    """A rig in a folder of its own (removed after) unless the user named one."""
    return {"run_dir": _run_dir(arg), "remove_run_dir": arg is None}


def cmd_run(args: argparse.Namespace) -> int:
    from sim.runner import run_all

    paths = all_scenarios() if args.all or not args.files else list(args.files)
    try:
        names = [load_scenario(p).name for p in paths]
    except ScenarioError as exc:
        print(f"scenario error: {exc}", file=sys.stderr)
        return 2
    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(), console=console, transient=False,
    ) as bar:  # fmt: skip
        task = bar.add_task("scenarios", total=len(names))
        done = {"n": 0}

        def progress(name: str) -> None:
            bar.update(task, completed=done["n"], description=f"{name[:40]:<40}")
            done["n"] += 1

        owned = _owned(args.run_dir)
        outcomes = asyncio.run(
            run_all(paths, owned["run_dir"], progress, remove_run_dir=owned["remove_run_dir"])
        )
        bar.update(task, completed=len(names), description="done")
    table = Table(title="scenarios")
    for col in ("scenario", "result", "time", "first difference / why pending"):
        table.add_column(col)
    colour = {"passed": "green", "failed": "red", "pending": "yellow"}
    for o in outcomes:
        table.add_row(o.name, f"[{colour[o.status]}]{o.status}[/]", f"{o.seconds:.1f} s", o.detail)
    Console().print(table)
    counts = {k: sum(o.status == k for o in outcomes) for k in ("passed", "failed", "pending")}
    Console().print(
        f"passed {counts['passed']}, failed {counts['failed']}, pending {counts['pending']}"
    )
    return 1 if counts["failed"] else 0


def cmd_fleet(args: argparse.Namespace) -> int:
    import logging

    from sim.fleet import run_fleet

    logging.getLogger().setLevel(logging.WARNING)  # fifty gates' state changes drown the report
    if args.sites > 1:
        from sim.national import run_national

        national = asyncio.run(
            run_national(
                args.sites,
                args.gates,
                args.seconds,
                _run_dir(args.run_dir),
                link_cut_s=args.link_cut_s,
                ingest=args.ingest,
            )
        )
        print(national.table())
        return 0 if national.ok else 1
    if args.ingest:
        print("autogate sim fleet: --ingest needs --sites 2 or more", file=sys.stderr)
        return 2
    report = asyncio.run(
        run_fleet(args.gates, args.seconds, _run_dir(args.run_dir), args.screenshot)
    )
    print(report.table())
    return 0


# --- by hand -------------------------------------------------------------------------


def describe(event: dict[str, Any]) -> str:
    """One event as the live view shows it; a refused officer command shows why."""
    if event.get("type") == "command.ack":
        what = str(event.get("command") or "command")
        if event.get("accepted"):
            return f"{what}: accepted"
        why = event.get("detail") or ", ".join(event.get("reasons", [])) or "no reason given"
        return f"{what}: refused ({why})"
    reasons = ", ".join(event.get("reasons", []))
    if event.get("type") == "referral.resolved":
        return f"{event.get('resolution')}" + (f" ({reasons})" if reasons else "")
    return reasons or "ok"


def outcome(events: list[dict[str, Any]]) -> str:
    """What happened to one traveller, from the events of their crossing."""
    types = [e.get("type") for e in events]
    if "crossing.accepted" in types:
        return "crossed"
    referral = next((e for e in events if e.get("type") == "referral.opened"), None)
    if referral is not None:
        said = f"referred ({', '.join(referral.get('reasons', [])) or 'no reason'})"
        resolved = next((e for e in events if e.get("type") == "referral.resolved"), None)
        if resolved is None:
            return f"{said}, still waiting for an officer"
        how = {"send_back": "sent back", "release": "released by an officer"}
        res = str(resolved.get("resolution"))
        return f"{said}, {how.get(res, res)}"
    aborted = next((e for e in events if e.get("type") == "crossing.aborted"), None)
    if aborted is not None:
        return f"aborted ({', '.join(aborted.get('reasons', [])) or 'no reason'})"
    alarm = next((e for e in events if e.get("type") == "alarm.raised"), None)
    if alarm is not None:
        return f"alarm ({', '.join(alarm.get('reasons', []))})"
    return "no outcome seen"


def _view(rig: Any) -> Table:
    t = Table(title=f"gate {rig.run_dir.name}", expand=False)
    t.add_column("what")
    t.add_column("now")
    t.add_row("state", str(rig.monitor.state))
    t.add_row("people in mantrap", str(rig.controller.people))
    t.add_row("doors commanded", ", ".join(rig.doors[-4:]) or "-")
    for e in [e for e in list(rig.monitor.events) if e.get("type") != "gate.status"][-6:]:
        t.add_row(str(e.get("type")), describe(e))
    return t


def _summary(rows: list[tuple[str, str]]) -> Table:
    t = Table(title="travellers")
    t.add_column("traveller")
    t.add_column("what happened")
    for name, what in rows:
        t.add_row(name, what)
    return t


def _parts(rig: Any) -> str:
    from sim.rig import GATE, READER, SITE

    return "\n".join(
        [
            "virtual gate is up:",
            f"  daemon        pid {rig.daemon.pid}, config {rig.config_path}, log {rig.run_dir / 'daemon.log'}",
            f"  controller    Modbus RTU on {rig.controller.port} ({rig.baudrate} baud, slave 1)",
            f"  chip reader   {READER!r} of the rig's pcscd (PCSCLITE_CSOCK_NAME="
            f"{rig.pcscd_socket}; card emulators: TCP {rig.vpcd_port})",
            f"  document      page image {rig.page}",
            f"  camera        frame folder {rig.camera_dir}",
            f"  watchlists    {rig.lists.url}",
            f"  broker        mqtt://127.0.0.1:{rig.broker.port}  topics autogate/v1/{SITE}/{GATE}/#"
            f"  (user monitor / {rig.passwords['monitor']})",
            f"  journal       {rig.run_dir / 'var' / 'journal.jsonl'}",
            *_console_lines(rig),
        ]
    )


def _console_lines(rig: Any) -> list[str]:
    lab = getattr(rig, "console", None)
    if lab is None:
        return []
    return [
        f"  console       {lab.url}  (config {lab.config})",
        *(f"    {role:<10}  {name} / {pw}" for role, (name, pw) in lab.officers.items()),
    ]


COMMANDS = {
    "place": ("place_document", ()),
    "remove": ("remove_document", ()),
    "walk-in": ("walk_in", ()),
    "walk-out": ("walk_out", ()),
    "walk-back": ("walk_back", ()),
    "tailgate": ("tailgate", ()),
    "pull": ("pull_cable", ()),
    "restore": ("restore_cable", ()),
    "broker-down": ("stop_broker", ()),
    "broker-up": ("start_broker", ()),
}


class CommandError(ValueError):
    """A line typed at ``--hold`` that is not a command; the gate goes on."""


def parse_command(line: str) -> tuple[str, tuple[Any, ...]] | None:
    """(rig method, arguments) for one typed line; None for an empty line."""
    words = line.split()
    if not words:
        return None
    head, rest = words[0], words[1:]
    if head in COMMANDS and not rest:
        return COMMANDS[head]
    if head == "emergency":
        if rest not in (["on"], ["off"]):
            raise CommandError("emergency needs on or off")
        return "emergency", (rest == ["on"],)
    if head == "officer":
        from gate.inputs import Command

        known = [c.value for c in Command]
        if len(rest) != 1 or rest[0].replace("-", "_") not in known:
            raise CommandError(f"officer needs one of {', '.join(known)}")
        return "officer", (rest[0].replace("-", "_"),)
    raise CommandError(f"unknown command: {line.strip()}")


HELP = "commands: " + ", ".join([*COMMANDS, "emergency on|off", "officer CMD", "quit"])


async def _by_hand(rig: Any, live: Live) -> None:
    from sim.scenario import Traveller

    t = Traveller()
    loop = asyncio.get_running_loop()
    live.console.print(HELP)
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line or line.strip() in ("quit", "exit"):
            return
        try:
            parsed = parse_command(line)
            if parsed is None:
                continue
            name, extra = parsed
            mark = len(rig.monitor.events)
            await getattr(rig, name)(t, *extra)
            if name == "officer":
                ack = await asyncio.to_thread(rig.wait_ack, mark, 5.0)
                live.console.print(describe(ack) if ack else f"{extra[0]}: no acknowledgement")
        except CommandError as exc:
            live.console.print(f"[red]{exc}[/]  ({HELP})")
        except Exception as exc:  # a failed command is reported; the gate goes on
            live.console.print(f"[red]{line.strip()}: {exc}[/]")
        live.update(_view(rig))


async def _sim(args: argparse.Namespace) -> int:
    from sim.rig import Rig, step_call

    rig = Rig(**_owned(args.run_dir))
    missing = {p: why for p, why in rig.parts.items() if why}
    if missing:
        print(f"virtual hardware incomplete: {missing}", file=sys.stderr)
        return 2
    rows: list[tuple[str, str]] = []
    try:  # a start that fails half way still stops what it started (and removes the folder)
        try:
            await rig.start()
        except RuntimeError as exc:  # pcscd, Mosquitto or the daemon did not come up
            print(f"autogate sim: the virtual gate did not start: {exc}", file=sys.stderr)
            return 1
        if not args.no_console:
            await asyncio.to_thread(rig.start_console)
        print(_parts(rig), flush=True)
        plays = args.play if args.play is not None else [SCENARIO_DIR / n for n in DEMO]
        with Live(_view(rig), refresh_per_second=4, transient=False) as live:
            # every event redraws the view (the monitor calls back from its MQTT thread)
            rig.monitor.listeners.append(lambda: live.update(_view(rig)))
            for path in plays:
                s = load_scenario(path)
                live.console.print(f"[bold]traveller: {s.name}[/]")
                await rig.reset()
                rig.mark()
                for step in s.steps:
                    try:
                        await step_call(rig, step, s.traveller)
                    except Exception as exc:  # show it and go on: this is a demo, not a judge
                        live.console.print(f"[red]step {step}: {exc}[/]")
                await asyncio.sleep(1.0)
                rows.append((s.name, outcome(rig.observed()[0])))
            live.console.print(_summary(rows))
            if args.hold:
                await _by_hand(rig, live)
    finally:
        await rig.stop()
    return 0


def cmd_sim(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_sim(args))
    except KeyboardInterrupt:
        return 130
