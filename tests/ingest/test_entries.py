"""The departure gate's question to the central record: its adapter and the service."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx
import pytest

from autogate.ingest.entries import build_app
from autogate.ingest.records import to_record
from autogate.ingest.store import Store
from drivers.watchlist import HttpEntryRecord
from gate.policy import decide_document
from gate.reasons import ReasonCode as R
from sim.watchlist_service import WatchlistService
from tests.ingest.helpers import KEY, crossing, raw
from tests.policy.helpers import chip_for, doc_result, mrz, policy

NOW = dt.datetime.now(dt.UTC)


@pytest.fixture()
def record(tmp_path: Path) -> Store:
    url = f"sqlite:///{tmp_path / 'record.sqlite'}"
    store = Store(url)
    store.migrate()
    msgs = [
        crossing("S1234567", nationality="SGP", ts=NOW - dt.timedelta(days=40)),
        crossing("S1234567", nationality="SGP", ts=NOW - dt.timedelta(days=400)),
        # left and came back without a recorded entry: no open stay
        crossing("G7654321", nationality="GBR", ts=NOW - dt.timedelta(days=60)),
        crossing("G7654321", direction="departure", ts=NOW - dt.timedelta(days=50)),
    ]
    store.write([to_record(*raw(m), KEY) for m in msgs])  # type: ignore[misc]
    return Store(url, read_only=True)


async def _ask(adapter: HttpEntryRecord, number: str, nationality: str):
    try:
        return await adapter.check(mrz(document_number=number, nationality=nationality))
    finally:
        await adapter.close()


def _adapter(store: Store) -> HttpEntryRecord:
    transport = httpx.ASGITransport(app=build_app(store, KEY))
    return HttpEntryRecord("record", "http://record", transport=transport)


async def test_last_entry_of_a_document(record: Store):
    got = await _ask(_adapter(record), "S1234567", "SGP")
    assert got.entry_checked and got.last_entry == (NOW - dt.timedelta(days=40)).date()


@pytest.mark.parametrize("number", ["G7654321", "N0000000"])
async def test_no_open_stay_is_no_entry(record: Store, number: str):
    got = await _ask(_adapter(record), number, "GBR")
    assert got.entry_checked and got.last_entry is None


@pytest.mark.parametrize("mode", ["failing", "down", "slow"])
async def test_record_service_down_is_not_checked_and_refers_foreigners_only(mode: str):
    with WatchlistService() as svc:
        svc.set_mode(mode, delay_s=2.0)  # type: ignore[arg-type]
        adapter = HttpEntryRecord("record", svc.url, timeout_s=0.3)
        got = await _ask(adapter, "S1234567", "SGP")
    assert not got.entry_checked and got.last_entry is None and got.unavailable == ()
    pol = policy(
        direction="departure",
        categories=[
            {"name": "citizen", "kind": "citizen"},
            {"name": "visa_exempt", "kind": "foreign_national", "nationalities": ["SGP"]},
        ],
        stay={"check": True, "default_days": 30},
    )
    lists = got.__class__(pass_checked=True, entry_checked=got.entry_checked)
    for nationality, reasons in (("SGP", (R.LIST_UNAVAILABLE,)), ("MYS", ())):
        doc = mrz(nationality=nationality)
        d = decide_document(doc, doc_result(doc), chip_for(doc), lists, pol, dt.date.today())
        assert d.reasons == reasons


async def test_an_answer_it_cannot_read_is_not_a_clear():
    def bad(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"last_entry": "yesterday"})

    adapter = HttpEntryRecord("record", "http://x", transport=httpx.MockTransport(bad))
    got = await _ask(adapter, "S1234567", "SGP")
    assert not got.entry_checked


async def test_service_refuses_a_malformed_number(record: Store):
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_app(record, KEY)), base_url="http://r"
    ) as client:
        resp = await client.post("/v1/last-entry", json={"document_number": "../../etc"})
        assert resp.status_code == 400
        resp = await client.post("/v1/last-entry", content=b"\xff")
        assert resp.status_code == 400
        # letters outside ASCII pass str.isalnum(): the hash then failed with a 500
        for number in ("Ä1234567", "S１２３４５６７", "S1234567\u0660"):
            resp = await client.post("/v1/last-entry", json={"document_number": number})
            assert resp.status_code == 400, number


async def test_service_reads_a_request_one_way_only(record: Store):
    """A second ``document_number`` (json.loads keeps the last; a proxy, a log or another
    reader the first), UTF-16, a BOM: the question is refused, not answered for one of
    its readings."""
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=build_app(record, KEY)), base_url="http://r"
    ) as client:
        for body in (
            b'{"document_number":"X0000000","document_number":"S1234567"}',
            '{"document_number":"S1234567"}'.encode("utf-16"),
            b'\xef\xbb\xbf{"document_number":"S1234567"}',
            b'{"document_number":"S1234567","nationality":NaN}',
        ):
            resp = await client.post("/v1/last-entry", content=body)
            assert resp.status_code == 400, body
            assert "last_entry" not in resp.json()
        resp = await client.post("/v1/last-entry", content=b'{"document_number":"S1234567"}')
        assert resp.status_code == 200 and resp.json()["last_entry"]  # the control
