"""Fuzz targets of the MRZ area: text from a serial document reader, and MRZ lines.

Neither may raise anything: a bad document is a ``DocumentResult`` / ``MrzRecord`` with
reason codes (the traveller is referred, the lane goes on).
"""

from __future__ import annotations

import datetime as dt

from drivers.serial_mrz import MrzFramer, result_of
from gate.mrz import build_td1, build_td2, parse_mrz
from tests.fuzz import harness

TODAY = dt.date(2026, 11, 25)
TD3 = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
)


def _documents() -> list[tuple[str, ...]]:
    td1 = build_td1(
        document_code="C1",
        issuing_state="USA",
        document_number="SRC0000000123",
        date_of_birth="740812",
        sex="F",
        date_of_expiry="320415",
        nationality="MEX",
        surname="SPECIMEN",
        given_names="TEST",
    )
    td2 = build_td2(
        issuing_state="D",
        document_number="T22000129",
        date_of_birth="640812",
        sex="F",
        date_of_expiry="300101",
        nationality="D",
        surname="MUSTERMANN",
        given_names="ERIKA",
    )
    return [TD3, tuple(td1), tuple(td2)]


def _wire() -> list[bytes]:
    out = []
    for lines in _documents():
        body = "\r\n".join(lines).encode()
        out += [body + b"\r\n\r\n", b"\x02" + body + b"\x03", body.replace(b"\r\n", b"\n")]
    return out


def _feed(data: bytes) -> object:
    f = MrzFramer()
    docs = f.feed(data) + f.flush()
    return [result_of(d, TODAY, 0.0) for d in docs]


def _parse(data: bytes) -> object:
    return parse_mrz(data.decode("latin-1").split("\n"), today=TODAY, repair=True)


TARGETS = [
    harness.Target("mrz_text_reader", _wire, _feed),
    harness.Target(
        "mrz_parse_repair", lambda: ["\n".join(d).encode() for d in _documents()], _parse
    ),
]
