"""Watchlist and pass-registry adapters behind ``drivers.interfaces.Watchlist``.

Every adapter answers ``check(mrz) -> ListsResult``; a check it cannot make is named in
``unavailable`` (when the adapter is ``required``), never reported as clear, and the
decision (``gate/policy.py``) refers on it. Adapters:

- ``LocalWatchlist``: stolen / lost document numbers and person entries (name + birth
  date) from a list file that holds only HMAC-SHA256 digests under the list's own salt
  (built by ``autogate lists build``); the file is re-read when it changes on disk.
- ``LocalPassRegistry``: registered passes (document -> pass type, valid until) from the
  same kind of file. A registry that cannot answer reports ``pass_checked=False`` (not
  ``unavailable``): the decision refers the travellers who need a pass, and only them.
- ``HttpWatchlist`` / ``HttpPassRegistry``: a national service over HTTP(S) (httpx), with
  a per-request deadline and a circuit breaker so a dead service costs no waiting.
- ``CompositeWatchlist``: asks the configured adapters concurrently under one deadline
  and merges their answers into one ``ListsResult``.
- ``MemoryWatchlist``: plain stolen document numbers, for ``type: sim`` configs.

``build(cfg, gate_cfg)`` makes the adapter a gate config asks for.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import ssl
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

import httpx

from gate.config import (
    CompositeListsConfig,
    ConfigError,
    GateConfig,
    HttpListsConfig,
    LocalListsConfig,
    SimListsConfig,
)
from gate.reasons import ReasonCode
from gate.results import ListsResult, MrzRecord, PassRecord

log = logging.getLogger(__name__)

LIST_FORMAT = "autogate-lists/1"


# --- keys: what a list entry is, and its salted digest -----------------------------------


def norm_number(number: str) -> str:
    return "".join(ch for ch in number.upper() if ch.isalnum())


def norm_state(code: str) -> str:
    return code.replace("<", "").strip().upper()


def norm_name(name: str) -> str:
    """Upper-case Latin letters and single spaces: ``Siti<Nur``, ``SITI  NUR`` -> ``SITI NUR``.

    Accents are folded (ICAO transliterates them in the MRZ: a list written from a
    visual zone must still match).
    """
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    letters = "".join(ch if ch.isalpha() else " " for ch in folded.upper())
    return " ".join(letters.split())


def digest(salt: bytes, *parts: str) -> str:
    return hmac.new(salt, "|".join(parts).encode(), hashlib.sha256).hexdigest()


def document_keys(salt: bytes, issuing_state: str, number: str) -> tuple[str, str]:
    """The digests a document is looked up under: with its issuer, and issuer-less (an
    entry written without issuing state matches the number from any issuer)."""
    n = norm_number(number)
    return digest(salt, "doc", norm_state(issuing_state), n), digest(salt, "doc", "", n)


def person_key(salt: bytes, surname: str, given_names: str, birth: dt.date) -> str:
    return digest(salt, "person", norm_name(surname), norm_name(given_names), birth.isoformat())


# --- the hashed list file ----------------------------------------------------------------


class ListFileError(Exception):
    """A list file that cannot be used: missing, unreadable or malformed."""


@dataclass(frozen=True)
class HashedList:
    """A list as stored: only digests (and pass types/dates, keyed by digest)."""

    salt: bytes
    stolen: frozenset[str] = frozenset()
    lost: frozenset[str] = frozenset()
    person: frozenset[str] = frozenset()
    passes: dict[str, PassRecord] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": LIST_FORMAT,
            "hash": "hmac-sha256",
            "salt": self.salt.hex(),
            "stolen": sorted(self.stolen),
            "lost": sorted(self.lost),
            "person": sorted(self.person),
            "passes": {
                k: [p.pass_type, p.valid_until.isoformat()] for k, p in sorted(self.passes.items())
            },
        }

    @classmethod
    def from_json(cls, data: Any) -> HashedList:
        if not isinstance(data, dict) or data.get("format") != LIST_FORMAT:
            raise ListFileError(f"not an {LIST_FORMAT} file")
        try:
            salt = bytes.fromhex(data["salt"])
            if len(salt) < 16:
                raise ListFileError("salt shorter than 16 bytes")
            passes = {
                str(k): PassRecord(str(t), dt.date.fromisoformat(d))
                for k, (t, d) in data.get("passes", {}).items()
            }
            return cls(
                salt=salt,
                stolen=frozenset(map(str, data.get("stolen", []))),
                lost=frozenset(map(str, data.get("lost", []))),
                person=frozenset(map(str, data.get("person", []))),
                passes=passes,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ListFileError(f"malformed: {exc!r}") from None


@dataclass(frozen=True)
class Entry:
    """One plain row of a list, before hashing (from the operator's CSV)."""

    kind: Literal["stolen", "lost", "person", "pass"]
    document_number: str = ""
    issuing_state: str = ""
    surname: str = ""
    given_names: str = ""
    date_of_birth: dt.date | None = None
    pass_type: str = ""
    valid_until: dt.date | None = None


def hash_entries(entries: Iterable[Entry], salt: bytes | None = None) -> HashedList:
    """Hash plain entries under ``salt`` (a fresh random 32-byte salt by default)."""
    salt = salt if salt is not None else os.urandom(32)
    stolen: set[str] = set()
    lost: set[str] = set()
    person: set[str] = set()
    passes: dict[str, PassRecord] = {}
    for e in entries:
        if e.kind == "person":
            if e.date_of_birth is None or not norm_name(e.surname):
                raise ValueError("a person entry needs surname and date_of_birth")
            person.add(person_key(salt, e.surname, e.given_names, e.date_of_birth))
            continue
        if not norm_number(e.document_number):
            raise ValueError(f"a {e.kind} entry needs document_number")
        key = digest(salt, "doc", norm_state(e.issuing_state), norm_number(e.document_number))
        if e.kind == "stolen":
            stolen.add(key)
        elif e.kind == "lost":
            lost.add(key)
        else:
            if not e.pass_type or e.valid_until is None:
                raise ValueError("a pass entry needs pass_type and valid_until")
            passes[key] = PassRecord(e.pass_type, e.valid_until)
    return HashedList(salt, frozenset(stolen), frozenset(lost), frozenset(person), passes)


def write_list(hashed: HashedList, path: Path) -> None:
    """Write atomically (temp file + rename): a reader never sees half a list."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(hashed.to_json(), indent=0), encoding="utf-8")
    os.chmod(tmp, 0o640)
    os.replace(tmp, path)


class ListFile:
    """A list file, re-read whenever its mtime, size or inode changes."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._stamp: tuple[int, int, int] | None = None
        self._list: HashedList | None = None
        self._lock = threading.Lock()

    def get(self) -> HashedList:
        """The current list; raises ``ListFileError`` if the file is not usable now."""
        with self._lock:
            try:
                st = os.stat(self.path)
            except OSError as exc:
                raise ListFileError(f"{self.path}: {exc.strerror}") from None
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            if stamp != self._stamp or self._list is None:
                self._list = None  # a bad new file must not leave the old list in use
                try:
                    data = json.loads(self.path.read_text(encoding="utf-8"))
                except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                    raise ListFileError(f"{self.path}: {exc}") from None
                except RecursionError:  # nested deeper than any list file is
                    raise ListFileError(
                        f"{self.path}: not a list file (nested too deeply)"
                    ) from None
                self._list = HashedList.from_json(data)
                self._stamp = stamp
                log.info("list %s loaded", self.path)
            return self._list


# --- adapters ----------------------------------------------------------------------------


class Adapter(Protocol):
    """``drivers.interfaces.Watchlist`` plus what the composite needs to know."""

    name: str
    required: bool

    async def check(self, mrz: MrzRecord) -> ListsResult: ...

    async def close(self) -> None: ...


class Unavailable(Exception):
    """This adapter could not make its check now (the reason is the message)."""


class _Base:
    kind: str = "watchlist"

    def __init__(self, name: str, required: bool = True) -> None:
        self.name = name
        # A pass registry that cannot answer leaves ``pass_checked`` false instead: the
        # decision then refers only the travellers who need a pass, not the citizens.
        self.required = required and self.kind == "watchlist"

    async def check(self, mrz: MrzRecord) -> ListsResult:
        t0 = time.monotonic()
        try:
            result = await self._check(mrz)
        except Exception as exc:  # a bug here must refer the traveller, not crash the gate
            if isinstance(exc, Unavailable):
                log.warning("%s %s unavailable: %s", self.kind, self.name, exc)
            else:
                log.exception("%s %s failed", self.kind, self.name)
            return ListsResult(
                unavailable=(self.name,) if self.required else (),
                elapsed_s=time.monotonic() - t0,
                details=(f"{self.name}: unavailable: {exc}",),
            )
        return replace(result, elapsed_s=time.monotonic() - t0)

    async def _check(self, mrz: MrzRecord) -> ListsResult:
        raise NotImplementedError

    async def close(self) -> None:
        return None


class _LocalList(_Base):
    """A check against a hashed list file, re-read when the file changes."""

    def __init__(self, name: str, path: Path, required: bool = True) -> None:
        super().__init__(name, required)
        self.file = ListFile(path)

    async def _list(self) -> HashedList:
        try:
            return await asyncio.to_thread(self.file.get)
        except ListFileError as exc:
            raise Unavailable(str(exc)) from None


class LocalWatchlist(_LocalList):
    """Stolen / lost documents and persons from a hashed list file."""

    async def _check(self, mrz: MrzRecord) -> ListsResult:
        lst = await self._list()
        hits: list[ReasonCode] = []
        keys = document_keys(lst.salt, mrz.issuing_state, mrz.document_number)
        if any(k in lst.stolen for k in keys):
            hits.append(ReasonCode.LIST_STOLEN_DOC)
        if any(k in lst.lost for k in keys):
            hits.append(ReasonCode.LIST_LOST_DOC)
        if mrz.date_of_birth is not None:
            key = person_key(lst.salt, mrz.surname, mrz.given_names, mrz.date_of_birth)
            if key in lst.person:
                hits.append(ReasonCode.LIST_PERSON)
        elif lst.person:  # the person check cannot be made: say so, keep the document hits
            return ListsResult(
                hits=tuple(hits),
                unavailable=(self.name,) if self.required else (),
                details=(f"{self.name}: no birth date, person check not made",),
            )
        return ListsResult(hits=tuple(hits), details=(f"{self.name}: checked",))


class LocalPassRegistry(_LocalList):
    """Registered passes from a hashed list file (document -> pass type, valid until)."""

    kind = "pass registry"

    async def _check(self, mrz: MrzRecord) -> ListsResult:
        lst = await self._list()
        keys = document_keys(lst.salt, mrz.issuing_state, mrz.document_number)
        record = next((lst.passes[k] for k in keys if k in lst.passes), None)
        return ListsResult(pass_record=record, pass_checked=True, details=(f"{self.name}: asked",))


class MemoryWatchlist(_Base):
    """Plain stolen document numbers in memory (``devices.lists: {type: sim}``)."""

    def __init__(self, name: str, stolen_documents: Iterable[str]) -> None:
        super().__init__(name, True)
        self.stolen = frozenset(norm_number(n) for n in stolen_documents)

    async def _check(self, mrz: MrzRecord) -> ListsResult:
        hit = norm_number(mrz.document_number) in self.stolen
        return ListsResult(hits=(ReasonCode.LIST_STOLEN_DOC,) if hit else ())


# --- HTTP: circuit breaker and the national service --------------------------------------


class CircuitBreaker:
    """Closed -> open after ``failure_threshold`` failures in a row; open -> half-open
    after ``reset_after_s``, when one trial request may go; its success closes the
    breaker, its failure opens it again. ``clock`` is injectable for tests.

    Hand-written: it is a dozen lines, and the libraries (pybreaker, aiobreaker) either
    do not take an injectable clock or are not maintained for asyncio.
    """

    def __init__(
        self,
        failure_threshold: int = 3,
        reset_after_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failure_threshold = failure_threshold
        self.reset_after_s = reset_after_s
        self.clock = clock
        self.failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> Literal["closed", "open", "half_open"]:
        if self._opened_at is None:
            return "closed"
        if self.clock() - self._opened_at >= self.reset_after_s:
            return "half_open"
        return "open"

    def allow(self) -> bool:
        state = self.state
        if state == "closed":
            return True
        if state == "half_open" and not self._trial:
            self._trial = True
            return True
        return False

    def success(self) -> None:
        self.failures = 0
        self._opened_at = None
        self._trial = False

    def failure(self) -> None:
        self.failures += 1
        if self._trial or self.failures >= self.failure_threshold:
            self._opened_at = self.clock()
        self._trial = False


HIT_CODES = {
    "stolen_document": ReasonCode.LIST_STOLEN_DOC,
    "lost_document": ReasonCode.LIST_LOST_DOC,
    "person": ReasonCode.LIST_PERSON,
}


class _HttpBase(_Base):
    def __init__(
        self,
        name: str,
        url: str,
        required: bool = True,
        timeout_s: float = 1.5,
        breaker: CircuitBreaker | None = None,
        verify: bool | ssl.SSLContext = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(name, required)
        self.timeout_s = timeout_s
        self.breaker = breaker or CircuitBreaker()
        self._client = httpx.AsyncClient(
            base_url=url,
            timeout=httpx.Timeout(timeout_s),
            verify=verify,
            transport=transport,
            headers={"accept": "application/json"},
        )

    async def _request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        if not self.breaker.allow():
            raise Unavailable("circuit open")
        healthy = False  # anything but an answer below 500 counts against the service,
        try:  # a cancellation by the composite's deadline too (else half-open would stick)
            # httpx times each phase; this bounds the whole exchange (a slow drip too)
            async with asyncio.timeout(self.timeout_s):
                resp = await self._client.request(method, path, json=body)
            healthy = resp.status_code < 500  # a 4xx is our problem, not the service's
        except (httpx.HTTPError, TimeoutError) as exc:
            raise Unavailable(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        finally:
            if healthy:
                self.breaker.success()
            else:
                self.breaker.failure()
        if resp.status_code >= 500:
            raise Unavailable(f"HTTP {resp.status_code}")
        return resp

    async def close(self) -> None:
        await self._client.aclose()


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        data = resp.json()
    except ValueError:
        raise Unavailable("answer is not JSON") from None
    if not isinstance(data, dict):
        raise Unavailable("answer is not a JSON object")
    return data


class HttpWatchlist(_HttpBase):
    """``POST {url}/v1/check`` with the document and person; answer ``{"hits": [...]}``."""

    async def _check(self, mrz: MrzRecord) -> ListsResult:
        body = {
            "document_number": norm_number(mrz.document_number),
            "issuing_state": norm_state(mrz.issuing_state),
            "nationality": norm_state(mrz.nationality),
            "surname": norm_name(mrz.surname),
            "given_names": norm_name(mrz.given_names),
            "date_of_birth": mrz.date_of_birth.isoformat() if mrz.date_of_birth else None,
        }
        resp = await self._request("POST", "/v1/check", body)
        if resp.status_code != 200:
            raise Unavailable(f"HTTP {resp.status_code}")
        hits = _json(resp).get("hits")
        if not isinstance(hits, list) or not all(h in HIT_CODES for h in hits):
            raise Unavailable(f"unexpected hits: {hits!r}")  # never guess a clear
        return ListsResult(
            hits=tuple(dict.fromkeys(HIT_CODES[h] for h in hits)),
            details=(f"{self.name}: checked",),
        )


class HttpPassRegistry(_HttpBase):
    """``GET {url}/v1/passes/{issuing_state}/{number}``: 200 with the pass, 404 for none."""

    kind = "pass registry"

    async def _check(self, mrz: MrzRecord) -> ListsResult:
        state = norm_state(mrz.issuing_state) or "-"
        number = norm_number(mrz.document_number)
        if not number:
            raise Unavailable("no document number")
        resp = await self._request("GET", f"/v1/passes/{state}/{number}")
        if resp.status_code == 404:
            return ListsResult(pass_checked=True, details=(f"{self.name}: no pass",))
        if resp.status_code != 200:
            raise Unavailable(f"HTTP {resp.status_code}")
        data = _json(resp)
        try:
            record = PassRecord(str(data["pass_type"]), dt.date.fromisoformat(data["valid_until"]))
        except (KeyError, TypeError, ValueError):
            raise Unavailable(f"unexpected pass record: {data!r}") from None
        return ListsResult(pass_record=record, pass_checked=True, details=(f"{self.name}: pass",))


class HttpEntryRecord(_HttpBase):
    """The central crossing record (``autogate ingest serve``): the last entry of a
    document, for the overstay check at departure. ``POST {url}/v1/last-entry``."""

    kind = "entry record"  # not ``required``: an outage leaves ``entry_checked`` false

    async def _check(self, mrz: MrzRecord) -> ListsResult:
        number = norm_number(mrz.document_number)
        if not number:
            raise Unavailable("no document number")
        body = {
            "document_number": number,
            "issuing_state": norm_state(mrz.issuing_state),
            "nationality": norm_state(mrz.nationality),
        }
        resp = await self._request("POST", "/v1/last-entry", body)
        if resp.status_code != 200:
            raise Unavailable(f"HTTP {resp.status_code}")
        data = _json(resp)
        ts = data.get("last_entry", "missing")
        if ts is None:
            return ListsResult(entry_checked=True, details=(f"{self.name}: no entry",))
        try:
            entry = dt.datetime.fromisoformat(str(ts).replace("Z", "+00:00")).date()
        except ValueError:
            raise Unavailable(f"unexpected last_entry: {ts!r}") from None  # never guess
        return ListsResult(
            last_entry=entry, entry_checked=True, details=(f"{self.name}: entry {entry}",)
        )


# --- the composite -----------------------------------------------------------------------


def merge(results: Sequence[ListsResult]) -> ListsResult:
    """One answer from many: every hit and every unavailable check; the pass valid longest."""
    records = [r.pass_record for r in results if r.pass_record is not None]
    entries = [r.last_entry for r in results if r.last_entry is not None]
    return ListsResult(
        last_entry=max(entries, default=None),
        entry_checked=any(r.entry_checked for r in results),
        hits=tuple(dict.fromkeys(h for r in results for h in r.hits)),
        unavailable=tuple(dict.fromkeys(u for r in results for u in r.unavailable)),
        pass_record=max(records, key=lambda p: p.valid_until, default=None),
        pass_checked=any(r.pass_checked for r in results),
        elapsed_s=max((r.elapsed_s for r in results), default=0.0),
        details=tuple(d for r in results for d in r.details),
    )


class CompositeWatchlist:
    """Asks every adapter at once; one that is late or raises counts as unavailable."""

    def __init__(self, adapters: Sequence[Adapter], timeout_s: float = 3.0, name: str = "lists"):
        self.name = name
        self.adapters = list(adapters)
        self.timeout_s = timeout_s

    async def check(self, mrz: MrzRecord) -> ListsResult:
        t0 = time.monotonic()
        tasks = [asyncio.create_task(a.check(mrz)) for a in self.adapters]
        done, pending = await asyncio.wait(tasks, timeout=self.timeout_s)
        for task in pending:
            task.cancel()
        results: list[ListsResult] = []
        for adapter, task in zip(self.adapters, tasks, strict=True):
            if task in done and task.exception() is None:
                results.append(task.result())
                continue
            why = "timeout" if task in pending else f"error: {task.exception()!r}"
            log.warning("list adapter %s: %s", adapter.name, why)
            results.append(
                ListsResult(
                    unavailable=(adapter.name,) if adapter.required else (),
                    details=(f"{adapter.name}: unavailable: {why}",),
                )
            )
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return replace(merge(results), elapsed_s=time.monotonic() - t0)

    async def close(self) -> None:
        for adapter in self.adapters:
            await adapter.close()


# --- wiring ------------------------------------------------------------------------------

ListsAdapter = _Base | CompositeWatchlist


def _tls_context(cfg: HttpListsConfig) -> ssl.SSLContext:
    """The service's CA (or the system's) and, when configured, the gate's own
    certificate: a national service must know which gate asks about a traveller."""
    ctx = ssl.create_default_context(cafile=cfg.ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cfg.cert_file is not None and cfg.key_file is not None:
        try:
            ctx.load_cert_chain(cfg.cert_file, cfg.key_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"lists {cfg.name}: cert_file/key_file: {exc}") from None
    return ctx


def build(
    cfg: SimListsConfig | LocalListsConfig | HttpListsConfig | CompositeListsConfig,
    gate_cfg: GateConfig | None = None,
) -> ListsAdapter:
    """The watchlist adapter ``devices.lists`` asks for (``gate_cfg`` is unused for now)."""
    if isinstance(cfg, SimListsConfig):
        return MemoryWatchlist("sim", cfg.stolen_documents)
    if isinstance(cfg, LocalListsConfig):
        local = LocalPassRegistry if cfg.service == "passes" else LocalWatchlist
        return local(cfg.name, cfg.path, cfg.required)
    if isinstance(cfg, HttpListsConfig):
        http: type[_HttpBase] = {
            "passes": HttpPassRegistry,
            "entries": HttpEntryRecord,
        }.get(cfg.service, HttpWatchlist)
        return http(
            cfg.name,
            cfg.url,
            cfg.required,
            cfg.timeout_s,
            CircuitBreaker(cfg.failure_threshold, cfg.reset_after_s),
            verify=_tls_context(cfg),
        )
    adapters = [build(a, gate_cfg) for a in cfg.adapters]
    return CompositeWatchlist(adapters, cfg.timeout_s)  # type: ignore[arg-type]
