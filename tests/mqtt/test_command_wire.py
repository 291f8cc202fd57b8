"""A signed command means one thing to every reader of its bytes (attack review, round 3).

The signature covers what the gate parsed. Python's ``json`` keeps the last of duplicate
keys and reads UTF-16 and UTF-32, so a captured, validly signed ``release`` with
``"officer": "root", "command": "out_of_service"`` put in front of its own fields was
carried out as the release, while a reader keeping the first key (a recorder, an audit
tool, another language's parser) saw a signed out-of-service command by ``root``.
"""

from __future__ import annotations

import json

import pytest

from gate import strictjson
from gate.commands import RefusalReason
from gate.inputs import OfficerCommand
from tests.mqtt.test_commands import _reason, signed, verify


def _wire(msg: dict[str, object]) -> str:
    return json.dumps(msg, separators=(",", ":"))


def test_a_signed_command_is_accepted_as_sent() -> None:
    """The control: the very bytes the console sends are carried out."""
    assert isinstance(verify(_wire(signed()).encode()), OfficerCommand)


@pytest.mark.parametrize(
    ("name", "wire"),
    [
        # another meaning in front of the signed fields: the gate read the last ones
        (
            "duplicate command and officer",
            lambda m: _wire(m).replace("{", '{"officer":"root","command":"out_of_service",', 1),
        ),
        (
            "duplicate inside the signed fields",
            lambda m: _wire(m)[:-1] + f',"gate":"{m["gate"]}"}}',
        ),
        ("utf-16", lambda m: _wire(m).encode("utf-16")),
        ("utf-32", lambda m: _wire(m).encode("utf-32")),
        ("utf-8 with a byte order mark", lambda m: b"\xef\xbb\xbf" + _wire(m).encode()),
    ],
)
def test_a_signed_command_in_other_bytes_is_malformed(name: str, wire) -> None:  # type: ignore[no-untyped-def]
    raw = wire(signed())
    result = verify(raw if isinstance(raw, bytes) else raw.encode())
    assert _reason(result) is RefusalReason.MALFORMED, name


def test_strict_json_refuses_what_the_standard_parser_lets_through() -> None:
    for raw in (
        b'{"a":1,"a":2}',
        b'{"a":{"b":1,"b":1}}',
        b'[{"x":1,"x":1}]',
        '{"a":1}'.encode("utf-16-le"),
        b'{"a":NaN}',
        b'{"a":-Infinity}',
        b"[" * 100_000,
        b'{"a":"\xff"}',
    ):
        with pytest.raises(strictjson.StrictJsonError):
            strictjson.loads(raw)
    assert strictjson.loads(b'{"a":{"b":[1,{"c":"\xc3\xa9"}]}}') == {"a": {"b": [1, {"c": "é"}]}}
    assert strictjson.loads(b'{"t":NaN}', allow_nan=True)["t"] != 0
    with pytest.raises(strictjson.StrictJsonError):
        strictjson.loads(b"{}" + b" " * 10, max_bytes=8)


def test_strict_json_refuses_numbers_readers_disagree_on_and_bounds_depth() -> None:
    """``1e400`` is Infinity by another spelling; 2**53 + 1 is rounded by JavaScript and
    most JSON libraries (I-JSON 2.2); nesting past ``max_depth`` is refused unparsed."""
    for raw in (b'{"a":1e400}', b'{"a":-1e400}', b'{"a":9007199254740993}', b"[-9007199254740993]"):
        with pytest.raises(strictjson.StrictJsonError):
            strictjson.loads(raw)
    assert strictjson.loads(b'{"a":9007199254740991,"b":1.5e300}')["a"] == 2**53 - 1
    assert strictjson.loads(b'{"t":1e400}', allow_nan=True)["t"] == float("inf")  # the journal's
    with pytest.raises(strictjson.StrictJsonError, match="deeper than 4"):
        strictjson.loads(b'{"a":[[[[1]]]]}', max_depth=4)
    assert strictjson.loads(b'{"a":"[[[[[[","b":[[[1]]]}', max_depth=4)["b"] == [[[1]]]
