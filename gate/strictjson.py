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

Hand-written on the standard library's parser (``object_pairs_hook``, ``parse_constant``):
the check is a few lines, and a second JSON library on the gate would be a second parser.
"""

from __future__ import annotations

import json
import re
from typing import Any

# a \uD800-\uDFFF escape: only then can a parsed string hold an unpaired surrogate
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class StrictJsonError(ValueError):
    """Not one unambiguous JSON text (the message says which rule it broke)."""


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise StrictJsonError(f"duplicate key {key[:40]!r}")
        out[key] = value
    return out


def _no_constant(name: str) -> Any:
    raise StrictJsonError(f"{name} is not JSON")


def loads(
    raw: bytes | str,
    max_bytes: int | None = None,
    allow_nan: bool = False,
    check_unicode: bool = True,
) -> Any:
    """``raw`` parsed, or ``StrictJsonError``: not UTF-8 (a BOM, UTF-16 and UTF-32
    included), larger than ``max_bytes``, a duplicate key at any depth, an unpaired
    surrogate (``"\\ud800"``: valid JSON, not Unicode; RFC 7493), ``NaN`` or
    ``Infinity`` (unless ``allow_nan``: a gate's ``json.dumps`` writes a NaN timing so),
    nested too deep, or not JSON at all. ``check_unicode=False`` leaves unpaired
    surrogates to the caller (the command verifier refuses them later, keeping the
    readable fields for its answer)."""
    if max_bytes is not None and len(raw) > max_bytes:
        raise StrictJsonError(f"{len(raw)} bytes, more than {max_bytes}")
    if isinstance(raw, bytes | bytearray | memoryview):
        try:
            text = bytes(raw).decode("utf-8")  # strict: no BOM sniffing, no other encoding
        except UnicodeDecodeError as exc:
            raise StrictJsonError(f"not UTF-8 (byte {exc.start})") from None
    else:
        text = raw
    if text.startswith("\ufeff"):
        raise StrictJsonError("starts with a byte order mark")
    try:
        if allow_nan:
            value = json.loads(text, object_pairs_hook=_unique)
        else:
            value = json.loads(text, object_pairs_hook=_unique, parse_constant=_no_constant)
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
