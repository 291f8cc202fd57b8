"""The central record's intake: ``records.to_record`` on anything that arrives under
``autogate/v1/+/+/event/#``. It never raises: a bad message is a ``Reject`` (kept with its
reason, never its bytes), a photo topic is ``None``; a row it builds always has every
column of its table, and comes only from bytes every reader reads one way (a reader that
keeps the first of duplicate keys sees what the last-key reader saw).

``strict_json``: ``gate.strictjson.loads`` with the ingest's bounds; what it accepts
reads the same first-key and last-key, holds only finite numbers and exact integers,
nests no deeper than the bound and is Unicode.

An ``ingest_record`` input is ``topic\\n`` + payload.
"""

from __future__ import annotations

import json
import math
from typing import Any

from autogate.ingest.records import COLUMNS, MAX_DEPTH, MAX_EVENT_BYTES, Reject, Row, to_record
from gate import strictjson
from tests.fuzz.harness import Target
from tests.ingest.helpers import KEY, alarm, crossing, referral


def _seeds() -> list[bytes]:
    out = []
    for topic, payload in (crossing(), referral(), alarm(), crossing(direction="departure")):
        out.append(topic.encode() + b"\n" + json.dumps(payload).encode())
    return out


def _first_key(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in pairs:
        out.setdefault(k, v)
    return out


def _call(data: bytes) -> object:
    head, _, body = data.partition(b"\n")
    topic = head.decode("utf-8", "replace")
    rec = to_record(topic, body, KEY)
    if isinstance(rec, Row):
        assert len(rec.values) == len(COLUMNS[rec.table])
        assert isinstance(rec.event_id, str) and rec.event_id
        assert json.loads(body, object_pairs_hook=_first_key) == json.loads(body)
    else:
        assert rec is None or isinstance(rec, Reject)
        assert rec is None or (rec.payload is None and rec.size == len(body))
    return rec


def _strict_seeds() -> list[bytes]:
    return [body for seed in _seeds() for body in [seed.partition(b"\n")[2]]]


def _numbers_and_depth(value: Any, level: int = 0) -> int:
    if isinstance(value, float):
        assert math.isfinite(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        assert abs(value) <= 2**53 - 1
    children = (
        value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
    )
    here = level + 1 if isinstance(value, dict | list) else level
    return max([here, *(_numbers_and_depth(v, here) for v in children)])


def _strict(data: bytes) -> object:
    value = strictjson.loads(data, max_bytes=MAX_EVENT_BYTES, max_depth=MAX_DEPTH)
    assert json.loads(data, object_pairs_hook=_first_key) == value
    assert _numbers_and_depth(value) <= MAX_DEPTH
    json.dumps(value, ensure_ascii=False).encode("utf-8")  # Unicode throughout
    return value


TARGETS = [
    Target("ingest_record", _seeds, _call),
    Target("strict_json", _strict_seeds, _strict, (strictjson.StrictJsonError,)),
]
