"""The ``autogate`` command line: run, check-config, sim, audit verify (+ device tools).

One exit-code scheme for every subcommand (docs/cli.md):

- 0  done, and the answer is yes / clean / nothing adverse
- 1  done, and the answer is no: invalid, listed, broken, failed (the output says which)
- 2  not done: a user's mistake (bad argument, missing or unreadable file, bad config),
     one line on stderr saying what to do; never a traceback
- 3  the daemon cannot start its services (a key, a port): ``autogate.ops.EXIT_OPS``
"""

from __future__ import annotations

# Start-up matters here: every call of the CLI (and every systemd start) pays for what
# this module imports. So it imports only the standard library at the top; a subcommand
# imports what it uses when it runs, and the device tools' modules are imported only
# when their own subcommand is on the command line (``TOOLS`` below).
import argparse
import importlib
import logging
import sys
from typing import TYPE_CHECKING, NoReturn

if TYPE_CHECKING:
    from gate.config import GateConfig

EXIT_OK, EXIT_NO, EXIT_USAGE = 0, 1, 2
EXIT_CONFIG = EXIT_USAGE

# device tools register their own subcommands (``add_subcommands``) when installed:
# subcommand -> (module, one-line help). The help is repeated here so that `autogate
# --help` needs none of them; tests/ops/test_startup.py checks it matches the modules.
TOOLS: dict[str, tuple[str, str]] = {
    "mrz": ("drivers.mrz_cli", "parse or read a machine-readable zone"),
    "chip": ("drivers.chip_cli", "ePassport chip over PC/SC"),
    "face": ("drivers.face_cli", "live face verification tools"),
    "finger": ("drivers.finger_cli", "thumbprint matcher tools"),
    "lists": ("drivers.watchlist_cli", "local watchlist and pass registry files"),
    "mqtt": ("drivers.bus_cli", "MQTT bus tools (keys, signed commands, schemas)"),
    "console": ("console.cli", "the officers' web console"),
    "sim": ("sim.cli", "the virtual hardware of a gate, and scenarios"),
    "ingest": ("autogate.ingest.cli", "the central crossing record (MQTT -> PostgreSQL/SQLite)"),
}
TOOL_MODULES = tuple(dict.fromkeys(module for module, _ in TOOLS.values()))


def _load(path: str) -> GateConfig:
    """Load the gate config and the policy file it names; any error exits with status 2."""
    from gate.config import ConfigError, load_config
    from gate.policy_config import policy_for

    try:
        cfg = load_config(path)
        policy_for(cfg)
        if cfg.devices.thumb is not None and cfg.devices.thumb.type != "sim":
            from autogate.thumb import finger_config  # drivers/finger's own keys

            finger_config(cfg, path)
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
    import asyncio

    from gate.config import Devices

    cfg = _load(args.config)
    if args.sim:
        cfg = cfg.model_copy(update={"devices": Devices()})
    return asyncio.run(_run(cfg, scripted=args.sim))


async def _run(cfg: GateConfig, scripted: bool) -> int:
    import asyncio
    import signal

    from autogate.daemon import Daemon
    from autogate.ops import EXIT_OPS, Ops, OpsError
    from autogate.wiring import build_devices, settings_from
    from sim.devices import DEFAULT_TRAVELLERS

    try:  # keys and metrics port before any device: a missing one stops here, doors untouched
        ops = Ops.build(cfg)
    except OpsError as exc:
        print(f"autogate: cannot start: {exc}", file=sys.stderr)
        return EXIT_OPS
    from drivers.errors import DeviceError

    try:  # a device that cannot even be built (a damaged model file): the start stops here
        devices, hall = build_devices(cfg)
    except DeviceError as exc:
        ops.close()
        print(f"autogate: cannot start: {exc}", file=sys.stderr)
        return EXIT_OPS
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
    except DeviceError as exc:  # a device that cannot start (a port absent at boot)
        print(f"autogate: cannot start: {exc}", file=sys.stderr)
        return EXIT_OPS  # systemd starts it again (only exit 2 is final)
    finally:
        await ops.stop()
    return 0


def add_verify_arguments(p: argparse.ArgumentParser) -> None:
    """``audit verify``'s options (kept here, light, so the parser imports no crypto)."""
    p.add_argument(
        "--checkpoints", help="signed checkpoints file (JSON lines) to anchor the journal to"
    )
    p.add_argument("--public-key", help="Ed25519 public key (PEM) that signed the checkpoints")


def _wanted_tool(argv: list[str]) -> str | None:
    """The tool subcommand named on the command line, if any (the first word that is
    not an option)."""
    for word in argv:
        if word == "--":
            return None
        if not word.startswith("-"):
            return word if word in TOOLS else None
    return None


class _Parser(argparse.ArgumentParser):
    """A user's mistake on the command line is one line and exit 2 (docs/cli.md): the
    usage block that argparse prints first grows with every option and wraps."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """The parser; only the tool named in ``argv`` is imported, the others appear by
    name and help."""
    p = _Parser(prog="autogate", description="Edge controller of an e-gate")
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

    wanted = _wanted_tool(sys.argv[1:] if argv is None else argv)
    loaded: set[str] = set()
    for command, (module, text) in TOOLS.items():
        if command != wanted:
            sub.add_parser(command, help=text, add_help=False)  # parsed only for --help
            continue
        if module in loaded:
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        loaded.add(module)
        mod.add_subcommands(sub)
    return p


def user_mistake(exc: BaseException) -> str:
    """One line for an error a user causes and can fix (the net under every subcommand)."""
    if isinstance(exc, EOFError):
        return "input ended before anything was read: pipe the input in, or run in a terminal"
    if isinstance(exc, UnicodeDecodeError):
        return "a file given is not UTF-8 text (or not a text file at all); check the path"
    assert isinstance(exc, OSError)
    where = f"{exc.filename}: " if exc.filename else ""
    hint = {
        FileNotFoundError: "no such file or folder; check the path",
        PermissionError: "permission denied; run as a user who may use it",
        IsADirectoryError: "is a folder; give a file",
        NotADirectoryError: "a part of the path is not a folder; check the path",
        FileExistsError: "exists already; choose another name or remove it",
    }.get(type(exc), exc.strerror or str(exc))
    return f"{where}{hint}"


def main(argv: list[str] | None = None) -> int:
    args = build_parser(argv).parse_args(argv)
    from autogate import logs

    logs.setup(verbose=args.verbose)  # JSON lines on stderr (journald)
    # pymodbus logs every timeout with a frame dump at ERROR; the barrier driver reports
    # link faults itself (typed, journaled), so keep only pymodbus's critical messages
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
    try:
        code = args.func(args)
    except (OSError, EOFError, UnicodeDecodeError) as exc:  # what the user gave: exit 2
        print(f"autogate {args.command}: {user_mistake(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    return int(code or 0)


if __name__ == "__main__":
    raise SystemExit(main())
