"""``autogate mqtt ...``: console key pairs, signed commands by hand, message validation.

For installers and officers' tooling, not the daemon: ``keygen`` makes the Ed25519 pair
a console signs commands with (the gate's config lists the public half under
``command_keys``); ``sign`` prints a signed command to pipe into ``mosquitto_pub``;
``validate`` checks messages (one JSON object per line) against the shipped schemas.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gate.commands import public_key_b64, sign_command
from gate.events import EventError, topic, validate
from gate.inputs import Command


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    mqtt = subparsers.add_parser("mqtt", help="MQTT bus tools (keys, signed commands, schemas)")
    sub = mqtt.add_subparsers(dest="mqtt_command", required=True)

    keygen = sub.add_parser("keygen", help="make a console's Ed25519 command-signing key pair")
    keygen.add_argument("name", type=Path, help="writes NAME.key (PEM, 0600) and NAME.pub")
    keygen.set_defaults(func=_keygen)

    sign = sub.add_parser("sign", help="print a signed command (JSON) and its topic")
    sign.add_argument("command", choices=[c.value for c in Command])
    sign.add_argument("--key", type=Path, required=True, help="PEM private key")
    sign.add_argument("--key-id", required=True)
    sign.add_argument("--site", required=True)
    sign.add_argument("--gate", required=True)
    sign.add_argument("--officer", required=True)
    sign.add_argument("--txn", help="txn_id of the referral (required for release and send_back)")
    sign.add_argument(
        "--alarm",
        help="alarm_id of the alarm (required for reset_alarm; the gate's status says it)",
    )
    sign.set_defaults(func=_sign)

    check = sub.add_parser("validate", help="check messages (JSON lines) against the schemas")
    check.add_argument("files", nargs="*", type=Path, help="default: standard input")
    check.set_defaults(func=_validate)


def _keygen(args: argparse.Namespace) -> int:
    key = Ed25519PrivateKey.generate()
    private, public = Path(f"{args.name}.key"), Path(f"{args.name}.pub")
    if not private.parent.is_dir():
        print(f"{private.parent}: no such folder; create it first", file=sys.stderr)
        return 2
    for path in (private, public):
        if path.exists():
            print(f"{path}: exists, not overwritten; choose another name", file=sys.stderr)
            return 2
    try:
        fd = os.open(private, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        public.write_text(public_key_b64(key.public_key()) + "\n")
    except OSError as exc:
        print(f"{exc.filename or private}: cannot write: {exc.strerror}", file=sys.stderr)
        return 2
    print(f"wrote {private} and {public}")
    return 0


def _sign(args: argparse.Namespace) -> int:
    try:
        key = serialization.load_pem_private_key(args.key.read_bytes(), password=None)
    except OSError as exc:
        print(f"{args.key}: cannot read: {exc.strerror}", file=sys.stderr)
        return 2
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:  # not PEM, encrypted, odd
        print(f"{args.key}: not an unencrypted PEM private key: {exc}", file=sys.stderr)
        return 2
    if not isinstance(key, Ed25519PrivateKey):
        print(f"{args.key}: not an Ed25519 private key (make one: mqtt keygen)", file=sys.stderr)
        return 2

    msg = sign_command(
        key,
        site=args.site,
        gate=args.gate,
        command=args.command,
        officer=args.officer,
        key_id=args.key_id,
        ts=dt.datetime.now(dt.UTC),
        txn_id=args.txn,
        alarm_id=args.alarm,
    )
    try:  # a command the gate would refuse as malformed is a mistake here
        validate(msg)
    except EventError as exc:
        print(f"autogate mqtt sign: {exc}", file=sys.stderr)
        return 2
    print(topic(args.site, args.gate, f"cmd/{args.command}"), file=sys.stderr)
    print(json.dumps(msg))
    return 0


def _validate(args: argparse.Namespace) -> int:
    """0 every message valid, 1 some invalid (each listed), 2 a file could not be read."""
    try:
        sources = [(str(p), p.read_text(encoding="utf-8")) for p in args.files] or [
            ("<stdin>", sys.stdin.read())
        ]
    except (OSError, UnicodeDecodeError) as exc:
        where = getattr(exc, "filename", None) or "input"
        why = getattr(exc, "strerror", None) or "not UTF-8 text"
        print(f"autogate mqtt validate: {where}: {why}", file=sys.stderr)
        return 2
    bad = 0
    for name, text in sources:
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                validate(json.loads(line))
            except (ValueError, EventError, RecursionError) as exc:
                bad += 1
                print(f"{name}:{n}: {exc}")
    return 1 if bad else 0
