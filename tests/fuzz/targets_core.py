"""Fuzz targets of the core's own parsers: signed commands, MRZ text, the four YAML config
loaders (gate, policy, console, register map) and Modbus replies as the barrier decodes them.

Each target's ``expected`` is its documented refusal; anything else is a finding. Seeds
are valid structures: commands signed with a test key, the ICAO specimen MRZs, the
example configs, well-formed controller replies. The mutators know the structure: JSON
fields replaced by hostile values (and signed again, so the checks behind the signature
are reached), YAML values replaced by tags, dates, anchors and deep nesting, Modbus
frames rebuilt with a valid CRC around a mutated PDU (so the content, not the CRC, is
what the decoder sees).
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import logging
import random
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerRTU
from pymodbus.pdu import DecodePDU, ExceptionResponse
from pymodbus.pdu.bit_message import ReadDiscreteInputsResponse, WriteSingleCoilResponse
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersResponse,
    ReadInputRegistersResponse,
    WriteSingleRegisterResponse,
)

from console.config import ConsoleConfigError, parse_console_config
from drivers.barrier import FUNCTION_CODES, ModbusBarrier, implausible
from drivers.errors import DeviceError
from drivers.regmap import load_regmap, parse_regmap
from gate.commands import NonceStore, canonical, sign_command, verify_command
from gate.config import ModbusBarrierConfig, parse_config
from gate.mrz import parse_mrz
from gate.policy_config import parse_policy
from gate.yamlfile import ConfigError, decode
from tests.fuzz.harness import Target

# pymodbus logs every foreign id and undecodable frame at ERROR; the driver counts them
logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 11, 25, 10, 0, 0, tzinfo=dt.UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEYS = {"console-1": KEY.public_key()}

# --- signed commands -------------------------------------------------------------------

HOSTILE: list[Any] = [
    [],
    {},
    None,
    0,
    -1,
    2**64,
    1.5,
    float("inf"),
    True,
    "",
    "x" * 70,
    "o\ud800",
    "\udcff",
    "\x00",
    "2026-02-30T10:00:00.000Z",
    "2026-11-25T10:00:00.000Z\n",
    "2026-11-25T25:61:00.000Z",
    "9999-12-31T23:59:59.999999Z",
    "0000-01-01T00:00:00Z",
    "release",
    "console-1",
    "A" * 86 + "==",
    "0" * 32,
    [[[[[]]]]],
]


def _sign(fields: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in fields.items() if k != "sig"}
    try:
        body["sig"] = base64.b64encode(KEY.sign(canonical(body))).decode("ascii")
    except (TypeError, ValueError):  # a body no one can sign: left unsigned or as it was
        body["sig"] = fields.get("sig", "")
    return body


def _command_seeds() -> list[bytes]:
    out = []
    for command in ("release", "send_back", "out_of_service", "in_service", "reset_alarm"):
        msg = sign_command(
            KEY,
            site="kul1",
            gate="g01",
            command=command,
            officer="officer-7",
            key_id="console-1",
            ts=NOW,
            txn_id="b1-000001" if command in ("release", "send_back") else None,
            alarm_id="b1-a000001" if command == "reset_alarm" else None,
        )
        out.append(json.dumps(msg).encode())
    return out


def _command_mutator(data: bytes, rng: random.Random) -> bytes:
    try:
        msg = json.loads(data)
    except (ValueError, RecursionError):
        return data
    if not isinstance(msg, dict) or not msg:
        return data
    for _ in range(rng.randint(1, 3)):
        key = rng.choice([*msg, "extra"])
        op = rng.randrange(4)
        if op == 0:
            msg[key] = rng.choice(HOSTILE)
        elif op == 1:
            msg.pop(key, None)
        elif op == 2 and isinstance(msg.get(key), str):
            s = msg[key]
            i = rng.randrange(len(s) + 1)
            msg[key] = s[:i] + rng.choice(["\n", "\ud800", "Z", "<", "\\", '"', "é"]) + s[i:]
        else:
            msg[key] = [msg.get(key)] * rng.randint(1, 3)
    if rng.random() < 0.7:
        msg = _sign(msg)
    text = json.dumps(msg, ensure_ascii=rng.random() < 0.5, allow_nan=True)
    return text.encode("utf-8", "surrogatepass")


def _verify(data: bytes) -> object:
    result = verify_command(
        data,
        topic_command="release",
        site="kul1",
        gate="g01",
        keys=KEYS,
        now=NOW,
        nonces=NonceStore(30, NOW - dt.timedelta(hours=1)),
    )
    # what a refusal carries goes into an ack, an alarm and the journal: it must encode
    for text in (getattr(result, "detail", ""), getattr(result, "officer", "")):
        text.encode("utf-8")
    return result


# --- MRZ text ----------------------------------------------------------------------------


def _mrz_seeds() -> list[bytes]:
    data = json.loads((Path("/work/shared/data/mrz/specimens.json")).read_text())
    seeds = ["\n".join(s["lines"]).encode() for s in data["specimens"]]
    return seeds or [
        b"P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<\nL898902C36UTO7408122F1204159ZE184226B<<<<<10"
    ]


def _parse_mrz(data: bytes) -> object:
    text = data.decode("utf-8", "replace")
    rec = parse_mrz(text, today=dt.date(2026, 11, 25), repair=True)
    parse_mrz(text.splitlines(), today=dt.date(2026, 11, 25), repair=False)
    return rec


# --- YAML config files -----------------------------------------------------------------

YAML_VALUES = [
    b"!!int abc",
    b"2026-02-30",
    b"!!float 1e999999",
    b"&a [*a]",
    b"*nope",
    b"!!binary '***'",
    b"!!python/object:os.system 'id'",
    b"[" * 200 + b"]" * 200,
    b"{" * 100,
    b"~",
    b"0x1F",
    b"1_000",
    b"-.inf",
    b"'\\ud800'",
    b'"\\ud800"',
    b"\xff\xfe",
    b"? [a]: b",
    b"!!timestamp 2026-13-01",
    b"<<: *x",
    b"|-\n  text",
]


def _yaml_mutator(data: bytes, rng: random.Random) -> bytes:
    lines = data.split(b"\n")
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines))
        line = lines[i]
        op = rng.randrange(4)
        if op == 0 and b":" in line:  # replace a value
            key, _, _ = line.partition(b":")
            lines[i] = key + b": " + rng.choice(YAML_VALUES)
        elif op == 1:  # nest a line deeper
            lines[i] = b"  " * rng.randint(1, 40) + line.lstrip()
        elif op == 2:  # duplicate a block
            j = min(len(lines), i + rng.randint(1, 8))
            lines[i:i] = lines[i:j] * rng.randint(1, 4)
        else:  # drop a line
            del lines[i]
            if not lines:
                lines = [b""]
    return b"\n".join(lines)


def _yaml_seeds(*names: str) -> list[bytes]:
    return [(ROOT / "config" / n).read_bytes() for n in names]


def _gate_config(data: bytes) -> object:
    return parse_config(decode(data, "<fuzz>"), "<fuzz>", base=ROOT / "config")


def _policy(data: bytes) -> object:
    return parse_policy(decode(data, "<fuzz>"), "<fuzz>")


def _console(data: bytes) -> object:
    try:
        text = decode(data, "<fuzz>")
    except ConfigError as exc:
        raise ConsoleConfigError(str(exc)) from None
    return parse_console_config(text, base=ROOT / "config")


def _regmap(data: bytes) -> object:
    try:
        text = decode(data, "<fuzz>")
    except ConfigError as exc:
        raise DeviceError("barrier", str(exc)) from None
    return parse_regmap(text, "<fuzz>")


# --- Modbus replies ----------------------------------------------------------------------


@cache
def _barrier() -> ModbusBarrier:
    cfg = ModbusBarrierConfig(type="modbus_rtu", port="/dev/null")
    return ModbusBarrier(cfg, load_regmap("generic-2door"))


def _framer() -> FramerRTU:
    return FramerRTU(DecodePDU(False))


def _modbus_seeds() -> list[bytes]:
    exc = ExceptionResponse(2, 2)
    exc.dev_id = 1
    pdus = [
        ReadDiscreteInputsResponse(
            bits=[True, False, False, False, False, False, False, False, False], dev_id=1
        ),
        ReadDiscreteInputsResponse(
            bits=[False, True, True, False, True, True, False, True, True], dev_id=1
        ),
        ReadInputRegistersResponse(registers=[1, 0x0102, 7, 0], dev_id=1),
        ReadHoldingRegistersResponse(registers=[42], dev_id=1),
        WriteSingleCoilResponse(address=0, bits=[True], dev_id=1),
        WriteSingleRegisterResponse(address=0, registers=[5], dev_id=1),
        exc,
    ]
    f = _framer()
    return [f.buildFrame(p) for p in pdus]


def _modbus_mutator(data: bytes, rng: random.Random) -> bytes:
    """Mutate the PDU inside a frame, then give it a valid CRC: content, not CRC, is tested."""
    body = bytearray(data[:-2]) if len(data) > 2 else bytearray(data)
    for _ in range(rng.randint(1, 3)):
        if not body:
            body += bytes([1])
        i = rng.randrange(len(body))
        op = rng.randrange(4)
        if op == 0:
            body[i] = rng.randrange(256)
        elif op == 1:
            body[i] ^= 1 << rng.randrange(8)
        elif op == 2:
            del body[i:]
        else:
            body[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 6)))
    crc = FramerRTU.compute_CRC(bytes(body))
    return bytes(body) + crc.to_bytes(2, "big")


REQUESTS = {  # per function code: (method, address, value, count) the driver would have sent
    2: ("read_discrete_inputs", 0, None, 9),
    4: ("read_input_registers", 0, None, 4),
    3: ("read_holding_registers", 0, None, 1),
    5: ("write_coil", 0, True, 1),
    6: ("write_register", 0, 5, 1),
    1: ("read_coils", 0, None, 5),
}


def _modbus(data: bytes) -> object:
    """What the driver does with a reply: frame, decode, match it to its request, and for
    the input reads build the snapshot and judge whether it can be true."""
    _, pdu = _framer().handleFrame(data, 1, 0)  # ModbusIOException: garbled, retried
    if pdu is None:
        return None
    fc = pdu.function_code & 0x7F
    if fc not in REQUESTS:
        return None
    method, address, value, count = REQUESTS[fc]
    assert FUNCTION_CODES[method] == fc
    b = _barrier()
    if not b._answers(pdu, method, address, value, count) or pdu.isError():
        return None
    if method == "read_discrete_inputs":
        snap = b.snapshot_of(0.0, list(pdu.bits), [1, 0x0102, 7, 0])
        return implausible(None, snap)
    if method == "read_input_registers":
        snap = b.snapshot_of(0.0, [True] * 9, list(pdu.registers))
        return implausible(None, snap)
    return pdu


TARGETS = [
    Target("command_verify", _command_seeds, _verify, (), _command_mutator),
    Target("mrz_text", _mrz_seeds, _parse_mrz, (), None),
    Target(
        "yaml_gate_config",
        lambda: _yaml_seeds("gate.example.yaml"),
        _gate_config,
        (ConfigError,),
        _yaml_mutator,
    ),
    Target(
        "yaml_policy",
        lambda: _yaml_seeds("policy.example.yaml"),
        _policy,
        (ConfigError,),
        _yaml_mutator,
    ),
    Target(
        "yaml_console_config",
        lambda: _yaml_seeds("console.example.yaml"),
        _console,
        (ConsoleConfigError,),
        _yaml_mutator,
    ),
    Target(
        "yaml_register_map",
        lambda: _yaml_seeds(
            "barrier-models/generic-2door.yaml", "barrier-models/compact-nocount.yaml"
        ),
        _regmap,
        (DeviceError,),
        _yaml_mutator,
    ),
    Target("modbus_reply", _modbus_seeds, _modbus, (ModbusException,), _modbus_mutator),
]
