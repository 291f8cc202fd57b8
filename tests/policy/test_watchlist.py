"""Watchlist and pass-registry adapters: hashed local lists, and the national service
played by ``sim/watchlist_service.py`` over real HTTP, slow, failing and down."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from autogate.cli import main as lists_cli
from drivers.watchlist import (
    CircuitBreaker,
    CompositeWatchlist,
    HttpPassRegistry,
    HttpWatchlist,
    LocalPassRegistry,
    LocalWatchlist,
    MemoryWatchlist,
    build,
)
from gate.config import parse_config
from gate.policy import decide_document
from gate.reasons import ReasonCode
from gate.results import PassRecord
from sim.watchlist_service import Registry, WatchlistService

from .helpers import TODAY, chip_for, doc_result, mrz, policy

R = ReasonCode
CSV = """kind,document_number,issuing_state,surname,given_names,date_of_birth,pass_type,valid_until
stolen,A12345678,MYS,,,,,
lost,K0000001,,,,,,
person,,,Doe,John Paul,1970-01-31,,
pass,X9876543,IDN,,,,EP,2027-06-30
"""
CITIZEN = mrz()
STOLEN = mrz(document_number="A12345678")
STOLEN_ELSEWHERE = mrz(document_number="A12345678", issuing_state="SGP")
LOST_ANY = mrz(document_number="K0000001", issuing_state="SGP")
PERSON = mrz(
    document_number="C1111111",
    surname="DOE",
    given_names="JOHN<PAUL",
    date_of_birth=dt.date(1970, 1, 31),
)
PASS = mrz(document_number="X9876543", issuing_state="IDN", nationality="IDN")
CLEAN = mrz(document_number="B7654321")


@pytest.fixture
def list_file(tmp_path: Path) -> Path:
    plain = tmp_path / "plain.csv"
    plain.write_text(CSV)
    out = tmp_path / "lists.json"
    assert lists_cli(["lists", "build", str(plain), str(out)]) == 0
    return out


# --- local lists ----------------------------------------------------------------------


def test_list_file_holds_no_plain_personal_data(list_file: Path) -> None:
    text = list_file.read_text()
    for plain in ("A12345678", "K0000001", "DOE", "JOHN", "1970", "X9876543"):
        assert plain not in text
    assert json.loads(text)["hash"] == "hmac-sha256"


def test_two_builds_of_one_csv_use_different_salts(tmp_path: Path, list_file: Path) -> None:
    again = tmp_path / "again.json"
    assert lists_cli(["lists", "build", str(tmp_path / "plain.csv"), str(again)]) == 0
    assert json.loads(again.read_text())["stolen"] != json.loads(list_file.read_text())["stolen"]


@pytest.mark.parametrize(
    ("traveller", "hits"),
    [
        (STOLEN, (R.LIST_STOLEN_DOC,)),
        (STOLEN_ELSEWHERE, ()),  # listed with its issuer: another issuer's A12345678 is clear
        (LOST_ANY, (R.LIST_LOST_DOC,)),  # listed without issuer: any issuer
        (PERSON, (R.LIST_PERSON,)),
        (CLEAN, ()),
    ],
)
async def test_local_watchlist(list_file: Path, traveller, hits) -> None:  # type: ignore[no-untyped-def]
    result = await LocalWatchlist("local", list_file).check(traveller)
    assert result.hits == hits
    assert result.unavailable == ()


async def test_person_check_without_birth_date_is_unavailable(list_file: Path) -> None:
    result = await LocalWatchlist("local", list_file).check(mrz(date_of_birth=None))
    assert result.unavailable == ("local",)


async def test_local_list_reloaded_when_the_file_changes(tmp_path: Path, list_file: Path) -> None:
    adapter = LocalWatchlist("local", list_file)
    assert (await adapter.check(CLEAN)).hits == ()
    plain = tmp_path / "plain.csv"
    plain.write_text(CSV + "stolen,B7654321,MYS,,,,,\n")
    assert lists_cli(["lists", "build", str(plain), str(list_file)]) == 0
    st = list_file.stat()
    os.utime(list_file, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert (await adapter.check(CLEAN)).hits == (R.LIST_STOLEN_DOC,)


async def test_broken_or_missing_list_is_unavailable(tmp_path: Path, list_file: Path) -> None:
    adapter = LocalWatchlist("local", list_file)
    assert (await adapter.check(STOLEN)).hits == (R.LIST_STOLEN_DOC,)
    list_file.write_text('{"format": "autogate-lists/1", "salt": "zz"')
    broken = await adapter.check(STOLEN)
    assert broken.unavailable == ("local",) and broken.hits == ()
    missing = await LocalWatchlist("other", tmp_path / "nope.json").check(STOLEN)
    assert missing.unavailable == ("other",)
    optional = await LocalWatchlist("opt", tmp_path / "nope.json", required=False).check(STOLEN)
    assert optional.unavailable == () and "unavailable" in optional.details[0]


async def test_local_pass_registry(list_file: Path) -> None:
    registry = LocalPassRegistry("passes", list_file)
    found = await registry.check(PASS)
    assert found.pass_record == PassRecord("EP", dt.date(2027, 6, 30)) and found.pass_checked
    none = await registry.check(CLEAN)
    assert none.pass_record is None and none.pass_checked


def test_cli_check_and_bad_csv(tmp_path: Path, list_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert (
        lists_cli(["lists", "check", str(list_file), "--number", "A12345678", "--state", "MYS"])
        == 1
    )
    assert capsys.readouterr().out.strip() == "stolen"
    assert lists_cli(["lists", "check", str(list_file), "--number", "B7654321"]) == 0
    bad = tmp_path / "bad.csv"
    bad.write_text("kind,document_number\nstolen,A1\nwanted,B2\n")
    assert lists_cli(["lists", "build", str(bad), str(tmp_path / "x.json")]) == 2
    assert "bad.csv:3: kind 'wanted' is not one of" in capsys.readouterr().err
    bad.write_text("kind,surname,date_of_birth\nperson,DOE,1970-13-01\n")
    assert lists_cli(["lists", "build", str(bad), str(tmp_path / "x.json")]) == 2
    assert "bad.csv:2:" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()


# --- the national service over HTTP ------------------------------------------------------


@pytest.fixture
def service() -> Iterator[WatchlistService]:
    registry = Registry(
        stolen={("MYS", "A12345678")},
        lost={("SGP", "K0000001")},
        persons={("DOE", "JOHN PAUL", "1970-01-31")},
        passes={("IDN", "X9876543"): ("EP", dt.date(2027, 6, 30))},
    )
    with WatchlistService(registry) as svc:
        yield svc


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("traveller", "hits"),
    [
        (STOLEN, (R.LIST_STOLEN_DOC,)),
        (LOST_ANY, (R.LIST_LOST_DOC,)),
        (PERSON, (R.LIST_PERSON,)),
        (CLEAN, ()),
    ],
)
async def test_http_watchlist(service: WatchlistService, traveller, hits) -> None:  # type: ignore[no-untyped-def]
    adapter = HttpWatchlist("national", service.url)
    try:
        result = await adapter.check(traveller)
    finally:
        await adapter.close()
    assert result.hits == hits and result.unavailable == ()


async def test_http_pass_registry(service: WatchlistService) -> None:
    adapter = HttpPassRegistry("passes", service.url)
    try:
        found = await adapter.check(PASS)
        none = await adapter.check(CLEAN)
    finally:
        await adapter.close()
    assert found.pass_record == PassRecord("EP", dt.date(2027, 6, 30))
    assert none.pass_record is None and none.pass_checked


@pytest.mark.parametrize("mode", ["slow", "failing", "down"])
async def test_http_service_misbehaving_is_unavailable(service: WatchlistService, mode) -> None:  # type: ignore[no-untyped-def]
    service.set_mode(mode, delay_s=2.0)
    watch = HttpWatchlist("national", service.url, timeout_s=0.3)
    passes = HttpPassRegistry("registry", service.url, timeout_s=0.3)
    try:
        w, p = await watch.check(STOLEN), await passes.check(PASS)
    finally:
        await watch.close()
        await passes.close()
    assert w.unavailable == ("national",) and w.hits == ()
    # a registry outage is "not checked" (refers those who need a pass), not "unavailable"
    assert p.unavailable == () and not p.pass_checked and p.pass_record is None


async def test_service_stopped_is_unavailable(service: WatchlistService) -> None:
    url = service.url
    service.stop()
    adapter = HttpWatchlist("national", url, timeout_s=0.5)
    try:
        result = await adapter.check(STOLEN)
    finally:
        await adapter.close()
    assert result.unavailable == ("national",)
    assert "ConnectError" in result.details[0]


async def test_circuit_breaker_opens_then_half_opens(service: WatchlistService) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=2, reset_after_s=10, clock=clock)
    adapter = HttpWatchlist("national", service.url, timeout_s=0.5, breaker=breaker)
    try:
        service.set_mode("failing")
        for _ in range(2):
            assert (await adapter.check(STOLEN)).unavailable == ("national",)
        assert breaker.state == "open" and service.requests == 2
        # open: no request goes out, the answer is immediate
        result = await adapter.check(STOLEN)
        assert result.unavailable == ("national",) and "circuit open" in result.details[0]
        assert service.requests == 2
        # half-open after the reset time: one trial; it fails, the breaker opens again
        clock.now += 10
        assert breaker.state == "half_open"
        await adapter.check(STOLEN)
        assert breaker.state == "open" and service.requests == 3
        # the service recovers: the next trial closes the breaker
        service.set_mode("normal")
        clock.now += 10
        assert (await adapter.check(STOLEN)).hits == (R.LIST_STOLEN_DOC,)
        assert breaker.state == "closed" and service.requests == 4
    finally:
        await adapter.close()


async def test_trial_cancelled_by_the_deadline_reopens_the_breaker(
    service: WatchlistService,
) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker(failure_threshold=1, reset_after_s=10, clock=clock)
    adapter = HttpWatchlist("national", service.url, timeout_s=5.0, breaker=breaker)
    composite = CompositeWatchlist([adapter], timeout_s=0.2)
    try:
        service.set_mode("failing")
        await composite.check(STOLEN)
        clock.now += 10
        service.set_mode("slow", delay_s=2.0)
        assert (await composite.check(STOLEN)).unavailable == ("national",)  # trial cancelled
        assert breaker.state == "open"  # not stuck half-open with a trial "in flight"
        service.set_mode("normal")
        clock.now += 10
        assert (await composite.check(STOLEN)).hits == (R.LIST_STOLEN_DOC,)
    finally:
        await composite.close()


async def test_adapter_bug_is_unavailable_not_a_crash() -> None:
    class Broken(LocalWatchlist):
        async def _check(self, mrz):  # type: ignore[no-untyped-def]
            raise KeyError("bug")

    result = await Broken("broken", Path("/nonexistent")).check(STOLEN)
    assert result.unavailable == ("broken",) and result.hits == ()


def test_breaker_lets_one_trial_through_when_half_open() -> None:
    clock = FakeClock()
    b = CircuitBreaker(failure_threshold=1, reset_after_s=5, clock=clock)
    assert b.allow()
    b.failure()
    assert b.state == "open" and not b.allow()
    clock.now += 5
    assert b.allow() and not b.allow()  # one trial at a time
    b.success()
    assert b.state == "closed" and b.allow()


# --- the composite, and the decision on its answer -------------------------------------


async def test_composite_merges_concurrent_adapters(
    service: WatchlistService, list_file: Path
) -> None:
    service.set_mode("slow", delay_s=1.0)
    composite = CompositeWatchlist(
        [
            LocalWatchlist("local", list_file),
            LocalPassRegistry("local-passes", list_file),
            HttpWatchlist("national", service.url, timeout_s=5.0),
            HttpPassRegistry("national-passes", service.url, timeout_s=5.0),
            HttpWatchlist("optional", service.url, timeout_s=5.0, required=False),
        ],
        timeout_s=0.3,
    )
    try:
        result = await composite.check(
            mrz(document_number="A12345678", date_of_birth=dt.date(1990, 5, 17))
        )
    finally:
        await composite.close()
    assert result.hits == (R.LIST_STOLEN_DOC,)  # from the local list, in time
    assert result.unavailable == ("national",)  # late and required; the optional one is not
    assert any("national-passes: unavailable" in d for d in result.details)
    assert result.pass_checked and result.elapsed_s < 1.0


async def test_decision_refers_when_the_service_is_down(service: WatchlistService) -> None:
    service.set_mode("down")
    composite = CompositeWatchlist([HttpWatchlist("national", service.url, timeout_s=0.5)])
    try:
        lists = await composite.check(CITIZEN)
    finally:
        await composite.close()
    d = decide_document(CITIZEN, doc_result(CITIZEN), chip_for(CITIZEN), lists, policy(), TODAY)
    assert not d.accept and d.reasons == (R.LIST_UNAVAILABLE,)


async def test_build_from_gate_config(
    tmp_path: Path, list_file: Path, service: WatchlistService
) -> None:
    cfg = parse_config(
        f"""
gate: {{site: klia, id: g1}}
devices:
  lists:
    type: composite
    timeout_s: 2
    adapters:
      - {{type: local, name: sltd, path: {list_file}}}
      - {{type: http, name: national, url: "{service.url}", timeout_s: 1}}
      - {{type: http, name: passes, url: "{service.url}", service: passes}}
"""
    )
    adapter = build(cfg.devices.lists, cfg)
    try:
        result = await adapter.check(PASS)
    finally:
        await adapter.close()
    assert result.pass_record == PassRecord("EP", dt.date(2027, 6, 30))
    assert result.unavailable == () and result.hits == ()
    sim = build(
        parse_config(
            "gate: {site: s, id: g}\ndevices: {lists: {type: sim, stolen_documents: [A12345678]}}"
        ).devices.lists
    )
    assert isinstance(sim, MemoryWatchlist)
    assert (await sim.check(STOLEN)).hits == (R.LIST_STOLEN_DOC,)


def test_cli_check_answers_do_not_mislead(list_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    """Issue 22 item 6: without --state a number listed for MYS was "no entry", exit 0;
    with no search field at all it also said "no entry"; a valid pass exited 1."""
    f = str(list_file)
    assert lists_cli(["lists", "check", f, "--number", "A12345678"]) == 1
    assert capsys.readouterr().out.strip() == "stolen (issuing state MYS)"
    assert lists_cli(["lists", "check", f]) == 2
    err = capsys.readouterr()
    assert "no entry" not in err.out and "--number" in err.err
    assert lists_cli(["lists", "check", f, "--surname", "DOE"]) == 2
    assert "--birth" in capsys.readouterr().err
    # a pass is not adverse: exit 0, and the output says whether it is still valid
    assert lists_cli(["lists", "check", f, "--number", "X9876543", "--state", "IDN"]) == 0
    assert capsys.readouterr().out.strip().startswith("pass EP")
    assert lists_cli(["lists", "check", f, "--number", "B7654321"]) == 0
    assert capsys.readouterr().out.strip() == "no entry"
