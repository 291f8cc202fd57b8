"""The ``autogate`` command line: run, check-config, sim, audit verify (+ device tools)."""

from __future__ import annotations

import argparse
import asyncio
import importlib
import logging
import signal
import sys

from autogate import logs
from autogate.audit import add_verify_arguments
from gate.config import ConfigError, Devices, GateConfig, load_config

EXIT_CONFIG = 2

# device tools register their own subcommands (``add_subcommands``) when installed
TOOL_MODULES = (
    "drivers.mrz_cli",
    "drivers.chip_cli",
    "drivers.face_cli",
    "drivers.watchlist_cli",
    "drivers.bus_cli",
    "console.cli",
    "sim.cli",
    "autogate.ingest.cli",
)


def _load(path: str) -> GateConfig:
    """Load the gate config and the policy file it names; any error exits with status 2."""
    from gate.policy_config import policy_for

    try:
        cfg = load_config(path)
        policy_for(cfg)
        return cfg
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_check_config(args: argparse.Namespace) -> int:
    cfg = _load(args.file)
    print(f"{args.file}: ok (gate {cfg.gate.site}/{cfg.gate.id})")
    return 0


def cmd_audit_verify(args: argparse.Namespace) -> int:
    from autogate.audit import cmd_verify  # rotated files and signed checkpoints (ops)

    return cmd_verify(args)


def cmd_run(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if args.sim:
        cfg = cfg.model_copy(update={"devices": Devices()})
    return asyncio.run(_run(cfg, scripted=args.sim))


async def _run(cfg: GateConfig, scripted: bool) -> int:
    from autogate.daemon import Daemon
    from autogate.ops import EXIT_OPS, Ops, OpsError
    from autogate.wiring import build_devices, settings_from
    from sim.devices import DEFAULT_TRAVELLERS

    try:  # keys and metrics port before any device: a missing one stops here, doors untouched
        ops = Ops.build(cfg)
    except OpsError as exc:
        print(f"autogate: cannot start: {exc}", file=sys.stderr)
        return EXIT_OPS
    devices, hall = build_devices(cfg)
    daemon = Daemon(cfg, devices, settings_from(cfg), vault=ops.vault)
    ops.attach(daemon)
    hall.emits["bus"] = daemon.emit  # the simulated officer speaks through the bus seam
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runner = asyncio.ensure_future(daemon.run(stop))
    await ops.start(daemon, stop)
    if scripted:
        await asyncio.wait_for(daemon.ready.wait(), 10)
        for traveller in DEFAULT_TRAVELLERS:
            outcome = await hall.walk(traveller)
            logging.getLogger("autogate.sim").info("traveller %r: %s", traveller.name, outcome)
        await asyncio.sleep(0.2)
        stop.set()
    try:
        await runner
    finally:
        await ops.stop()
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="autogate", description="Edge controller of an e-gate")
    p.add_argument("-v", "--verbose", action="store_true", help="log debug detail to stderr")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the gate daemon")
    run.add_argument("--config", required=True, help="gate config YAML")
    run.add_argument(
        "--sim", action="store_true", help="simulated devices, scripted travellers, then exit"
    )
    run.set_defaults(func=cmd_run)

    chk = sub.add_parser("check-config", help="validate a gate config and exit (2 on error)")
    chk.add_argument("file")
    chk.set_defaults(func=cmd_check_config)

    audit = sub.add_parser("audit", help="audit journal tools")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    ver = audit_sub.add_parser("verify", help="verify the hash chain of a journal")
    ver.add_argument("file")
    add_verify_arguments(ver)
    ver.set_defaults(func=cmd_audit_verify)

    for name in TOOL_MODULES:
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        mod.add_subcommands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.setup(verbose=args.verbose)  # JSON lines on stderr (journald)
    # pymodbus logs every timeout with a frame dump at ERROR; the barrier driver reports
    # link faults itself (typed, journaled), so keep only pymodbus's critical messages
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    code = args.func(args)
    return int(code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
