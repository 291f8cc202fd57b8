"""``autogate console --config FILE`` and ``autogate console user add/disable``.

Hooked into ``autogate/cli.py`` by ``add_subcommands``; also runs as
``python -m console.cli console ...`` for tests and before the hook exists.
"""

from __future__ import annotations

import argparse
import ctypes
import getpass
import logging
import os
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from console.auth import OfficerError, Officers, Role
from console.config import ConsoleConfig, ConsoleConfigError, load_console_config

EXIT_CONFIG = 2
M_PERTURB = -6  # glibc mallopt: fill freed blocks with this byte
log = logging.getLogger("autogate.console")


def _config(path: str) -> ConsoleConfig:
    try:
        return load_console_config(path)
    except ConsoleConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def build_console(cfg: ConsoleConfig):  # type: ignore[no-untyped-def]
    """The app's ``Console`` with its broker client wired in (not yet connected)."""
    from console.app import Console
    from console.audit import Audit
    from console.auth import Throttle
    from console.mqtt import ConsoleBus, Signer, load_private_key
    from console.state import Hall

    secret = cfg.session.secret_file.read_bytes().strip()
    if len(secret) < 32:
        raise ConsoleConfigError(f"{cfg.session.secret_file}: secret shorter than 32 bytes")
    pw_file = cfg.broker.password_file
    password = pw_file.read_text(encoding="utf-8").strip() if pw_file is not None else None
    hall = Hall(cfg.site, cfg.gates, load_image_key(cfg.image_key_file))

    def on_start(loop):  # type: ignore[no-untyped-def]
        bus.start(loop)

    console = Console(
        hall=hall,
        officers=Officers(cfg.officers_file),
        audit=Audit(
            cfg.audit_file,
            signing_key=load_private_key(cfg.audit_signing_key_file)
            if cfg.audit_signing_key_file
            else None,
            checkpoints=cfg.audit_checkpoints_file,
            site=cfg.site,
        ),
        signer=Signer.from_config(cfg.signing, cfg.site),
        publisher=None,  # type: ignore[arg-type]  # set below: the bus needs the console
        secret=secret,
        max_age_s=cfg.session.max_age_s,
        secure_cookie=cfg.session.secure_cookie,
        throttle=Throttle(
            cfg.session.login_attempts,
            cfg.session.login_window_s,
            max_delay_s=cfg.session.login_max_delay_s,
            alarm_at=cfg.session.login_alarm_at,
        ),
        trusted_proxies=tuple(cfg.listen.trusted_proxies),
        on_start=on_start,
    )
    bus = ConsoleBus(cfg.broker, cfg.site, password, console.on_message)
    bus.on_link = console.on_link
    bus.on_takeover = lambda n: console.alert(
        "broker.session_taken_over",
        f"the console's broker session was lost and regained {n} times within minutes: "
        "another client is using the console's broker account?",
    )
    console.publisher = bus
    console.on_stop = bus.stop
    return console


def load_image_key(path: Path | None) -> X25519PrivateKey | None:
    if path is None:
        return None
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, X25519PrivateKey):
        raise ValueError(f"{path}: not an X25519 private key")
    return key


def scrub_freed_memory() -> bool:
    """Ask glibc to overwrite every block it frees (``M_PERTURB``): the transient copies
    of a photo (decoding, the HTTP response) do not linger in freed heap. Best effort."""
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(M_PERTURB, 0xA5))
    except (OSError, AttributeError):
        return False


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from autogate.http_deadline import protocol
    from console.app import create_app

    if not scrub_freed_memory():
        log.warning("freed memory is not scrubbed on this platform (no glibc mallopt)")
    cfg = _config(args.config)
    from console.audit import AuditError

    try:
        console = build_console(cfg)
    except AuditError as exc:
        print(
            f"audit journal does not match its signed checkpoints: {exc}; keep both files "
            "as evidence, move them aside, then start",
            file=sys.stderr,
        )
        return EXIT_CONFIG
    except (OSError, ValueError) as exc:
        print(f"config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    app = create_app(console)
    from autogate.logs import UVICORN_LOGGING

    # uvicorn's lines go through the masking handler (autogate.logs), not its own
    uvicorn.run(
        app,
        host=cfg.listen.host,
        port=cfg.listen.port,
        proxy_headers=False,
        http=protocol(cfg.listen.request_timeout_s),
        **UVICORN_LOGGING,
    )
    return 0


def _officers(args: argparse.Namespace) -> Officers:
    if args.officers:
        return Officers(args.officers)
    config = getattr(args, "user_config", None) or args.config  # after `user add` or before
    if config:
        return Officers(_config(config).officers_file)
    print("give --config FILE or --officers FILE", file=sys.stderr)
    raise SystemExit(EXIT_CONFIG)


def cmd_user_add(args: argparse.Namespace) -> int:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    elif not sys.stdin.isatty():
        print(
            "no terminal to ask the password on: pipe it in with --password-stdin",
            file=sys.stderr,
        )
        return 2
    else:
        password = getpass.getpass(f"password for {args.name}: ")
        if password != getpass.getpass("again: "):
            print("passwords differ; nothing changed, try again", file=sys.stderr)
            return 2
    try:
        officer = _officers(args).add(args.name, password, args.role)
    except OfficerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"officer {officer.name} ({officer.role.value}) added")
    return 0


def cmd_user_disable(args: argparse.Namespace) -> int:
    try:
        _officers(args).disable(args.name)
    except OfficerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"officer {args.name} disabled (open sessions end at their next request)")
    return 0


def cmd_user_list(args: argparse.Namespace) -> int:
    for o in _officers(args).all():
        print(f"{o.name}\t{o.role.value}\t{'disabled' if o.disabled else 'active'}")
    return 0


def cmd_image_key(args: argparse.Namespace) -> int:
    """Make the console's X25519 key (mode 0600) if missing; print its public half."""
    from gate.referral_image import public_key_b64

    path = Path(args.file)
    if path.exists():
        key = load_image_key(path)
        assert key is not None
    else:
        key = X25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(pem)
    print(public_key_b64(key.public_key()))
    return 0


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    con = subparsers.add_parser("console", help="the officers' web console")
    con.add_argument("--config", help="console config YAML (see config/console.example.yaml)")
    con.set_defaults(func=_serve_or_help(con))
    sub = con.add_subparsers(dest="console_command")
    ik = sub.add_parser(
        "image-key",
        help="make the key that opens referral photos (if missing); print its public half "
        "for the gates' devices.bus.image_key",
    )
    ik.add_argument("file", help="private key file (PEM), e.g. /etc/autogate/console/image.pem")
    ik.set_defaults(func=cmd_image_key)
    user = sub.add_parser("user", help="manage the officer list")
    user_sub = user.add_subparsers(dest="user_command", required=True)
    for name, func, helptext in (
        ("add", cmd_user_add, "add an officer or reset a password/role"),
        ("disable", cmd_user_disable, "disable an officer (ends their sessions)"),
        ("list", cmd_user_list, "list officers"),
    ):
        p = user_sub.add_parser(name, help=helptext)
        p.add_argument("--config", dest="user_config", help="console config YAML")
        p.add_argument("--officers", help="officer list file (instead of --config)")
        if name != "list":
            p.add_argument("name")
        if name == "add":
            p.add_argument("--role", choices=[r.value for r in Role], default=Role.OFFICER.value)
            p.add_argument(
                "--password-stdin", action="store_true", help="read the password from stdin"
            )
        p.set_defaults(func=func)


def _serve_or_help(parser: argparse.ArgumentParser):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace) -> int:
        if not args.config:
            parser.error("--config FILE is required to run the console")
        return cmd_serve(args)

    return run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="autogate")
    sub = p.add_subparsers(dest="command", required=True)
    add_subcommands(sub)
    args = p.parse_args(argv)
    from autogate import logs

    logs.setup()  # as under `autogate console`: JSON lines through the masking filter
    return int(args.func(args) or 0)


if __name__ == "__main__":
    raise SystemExit(main())
