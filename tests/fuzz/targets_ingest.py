"""The central record's intake: ``records.to_record`` on anything that arrives under
``autogate/v1/+/+/event/#``. It never raises: a bad message is a ``Reject`` (kept with its
reason), a photo topic is ``None``; a row it builds always has every column of its table.

An input is ``topic\\n`` + payload.
"""

from __future__ import annotations

import json

from autogate.ingest.records import COLUMNS, Reject, Row, to_record
from tests.fuzz.harness import Target
from tests.ingest.helpers import KEY, alarm, crossing, referral


def _seeds() -> list[bytes]:
    out = []
    for topic, payload in (crossing(), referral(), alarm(), crossing(direction="departure")):
        out.append(topic.encode() + b"\n" + json.dumps(payload).encode())
    return out


def _call(data: bytes) -> object:
    head, _, body = data.partition(b"\n")
    topic = head.decode("utf-8", "replace")
    rec = to_record(topic, body, KEY)
    if isinstance(rec, Row):
        assert len(rec.values) == len(COLUMNS[rec.table])
        assert isinstance(rec.event_id, str) and rec.event_id
    else:
        assert rec is None or isinstance(rec, Reject)
    return rec


TARGETS = [Target("ingest_record", _seeds, _call)]
