"""One reading of a JSON message from the network: UTF-8, unique keys, no NaN, bounded.

Python's ``json.loads`` is lenient where a signed or schema-checked message must not be:
it takes bytes in UTF-16 or UTF-32 (and UTF-8 with a BOM), keeps the *last* of duplicate
keys, and accepts ``NaN`` and ``Infinity``. A command's signature covers what this
process parsed, so ``{"command": "out_of_service", ..., "command": "release", ...}``
verified as the release it was signed as, while any reader that keeps the first key (a
recorder, an audit tool, another language's library) saw an out-of-service command
under a valid signature. One message must mean one thing to every reader (RFC 8259
section 4 leaves duplicates undefined; RFC 7493 I-JSON forbids them), so anything else
is refused here, before any signature or schema is looked at.

Numbers too: without ``allow_nan`` a float that overflows (``1e400``, Infinity by another
spelling) and an integer beyond what an IEEE double holds exactly (I-JSON section 2.2:
JavaScript and most libraries round ``9007199254740993``) are refused. ``max_depth``
bounds nesting before the text is parsed.

Hand-written on the standard library's parser (``object_pairs_hook``, ``parse_constant``):
the check is a few lines, and a second JSON library on the gate would be a second parser.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# a \uD800-\uDFFF escape: only then can a parsed string hold an unpaired surrogate
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# I-JSON (RFC 7493 section 2.2): integers every reader holds exactly
_MAX_INT = 2**53 - 1
# a string (escapes included; unterminated: to the end, so no input costs more than one
# pass), or one bracket: what decides the nesting depth
_STRING_OR_BRACKET = re.compile(rb'"(?:[^"\\]++|\\.)*+"?|[\[\]{}]', re.DOTALL)


class StrictJsonError(ValueError):
    """Not one unambiguous JSON text (the message says which rule it broke)."""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)  # in C; a Python loop over the pairs cost the ingest ~2 µs an event
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise StrictJsonError(f"duplicate key {key[:40]!r}")
            seen.add(key)
    return out


def _no_constant(name: str) -> Any:
    raise StrictJsonError(f"{name} is not JSON")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise StrictJsonError(f"number {text[:20]}... is not a finite double")
    return value


def _exact_int(text: str) -> int:
    value = int(text)
    if len(text) > 15 and abs(value) > _MAX_INT:  # 15 digits: always exact, no compare
        raise StrictJsonError(f"integer of {len(text)} digits: not exact in a double")
    return value


# Made once: ``json.loads`` with any keyword builds a decoder and its C scanner per call,
# which cost the ingest more than the checks themselves (decoders keep no state between
# calls; the standard library shares its default one the same way).
_WITH_NAN = json.JSONDecoder(object_pairs_hook=_unique)
_STRICT = json.JSONDecoder(
    object_pairs_hook=_unique,
    parse_constant=_no_constant,
    parse_float=_finite,
    parse_int=_exact_int,
)


def depth(raw: bytes) -> int:
    """The deepest nesting of arrays and objects in ``raw`` (brackets inside strings do
    not count); on bytes that are not JSON, a bound good enough to refuse them."""
    deepest = level = 0
    for m in _STRING_OR_BRACKET.finditer(raw):
        c = m.group()
        if c in (b"[", b"{"):
            level += 1
            deepest = max(deepest, level)
        elif c in (b"]", b"}"):
            level -= 1
    return deepest


def loads(
    raw: bytes | str,
    max_bytes: int | None = None,
    allow_nan: bool = False,
    check_unicode: bool = True,
    max_depth: int | None = None,
) -> Any:
    """``raw`` parsed, or ``StrictJsonError``: not UTF-8 (a BOM, UTF-16 and UTF-32
    included), larger than ``max_bytes``, a duplicate key at any depth, an unpaired
    surrogate (``"\\ud800"``: valid JSON, not Unicode; RFC 7493), ``NaN`` or
    ``Infinity`` (unless ``allow_nan``: a gate's ``json.dumps`` writes a NaN timing so),
    nested too deep, or not JSON at all. ``check_unicode=False`` leaves unpaired
    surrogates to the caller (the command verifier refuses them later, keeping the
    readable fields for its answer). Without ``allow_nan``, also a float that overflows
    or an integer beyond 2**53 - 1. ``max_depth``: more nested arrays and objects than
    that, found before parsing (a scan in C; exact only when the brackets could reach it)."""
    if max_bytes is not None and len(raw) > max_bytes:
        raise StrictJsonError(f"{len(raw)} bytes, more than {max_bytes}")
    if isinstance(raw, bytes | bytearray | memoryview):
        data = bytes(raw)
        try:
            text = data.decode("utf-8")  # strict: no BOM sniffing, no other encoding
        except UnicodeDecodeError as exc:
            raise StrictJsonError(f"not UTF-8 (byte {exc.start})") from None
    else:
        text = raw
        data = None
    if max_depth is not None:
        data = data if data is not None else text.encode("utf-8", "surrogatepass")
        # fewer opening brackets than the bound (inside strings too): no scan needed
        if data.count(b"[") + data.count(b"{") > max_depth and depth(data) > max_depth:
            raise StrictJsonError(f"nested deeper than {max_depth}")
    if text.startswith("\ufeff"):
        raise StrictJsonError("starts with a byte order mark")
    try:
        value = (_WITH_NAN if allow_nan else _STRICT).decode(text)
        if check_unicode and _SURROGATE_ESCAPE.search(text):  # rare: then check every string once
            json.dumps(value, ensure_ascii=False).encode("utf-8")
    except StrictJsonError:
        raise
    except RecursionError:
        raise StrictJsonError("nested too deep") from None
    except UnicodeEncodeError:
        raise StrictJsonError("a string is not Unicode (an unpaired surrogate)") from None
    except ValueError as exc:
        raise StrictJsonError(f"not JSON: {str(exc)[:120]}") from None
    return value
