"""docs/watchlist-api.openapi.yaml is the contract: the sim service answers by it, and the
gate's HTTP adapters ask by it (an agency builds its gateway from this document)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml

from drivers.watchlist import HttpPassRegistry, HttpWatchlist
from gate.mrz import parse_mrz
from sim.watchlist_service import Registry, WatchlistService

SPEC = yaml.safe_load(
    (Path(__file__).resolve().parents[2] / "docs" / "watchlist-api.openapi.yaml").read_text()
)
TD3 = (
    "P<UTOERIKSSON<<ANNA<MARIA<<<<<<<<<<<<<<<<<<<",
    "L898902C36UTO7408122F1204159ZE184226B<<<<<10",
)


def _schema(schema: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI 3.1 schema is JSON Schema 2020-12; refs point into the document."""
    return {**schema, "components": SPEC["components"]}


def _check(schema: dict[str, Any], value: Any) -> None:
    jsonschema.validate(
        value,
        _schema(schema),
        cls=jsonschema.Draft202012Validator,
        format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
    )


def _operation(method: str, path: str) -> tuple[str, dict[str, Any]]:
    """The documented template and operation for a concrete request path."""
    for template, item in SPEC["paths"].items():
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path) and method.lower() in item:
            return template, item[method.lower()]
    raise AssertionError(f"{method} {path} is not in the OpenAPI document")


def _conforms(method: str, path: str, resp: httpx.Response) -> str:
    template, op = _operation(method, path)
    documented = op["responses"]
    assert str(resp.status_code) in documented, f"{method} {path}: {resp.status_code} undocumented"
    media = documented[str(resp.status_code)]["content"]["application/json"]
    assert resp.headers["content-type"].startswith("application/json")
    _check(media["schema"], resp.json())
    for param in op.get("parameters", []):
        names = re.findall(r"\{([^}]+)\}", template)
        values = dict(zip(names, path.split("/")[-len(names) :], strict=True))
        _check(param["schema"], values[param["name"]])
    return template


@pytest.fixture
def service() -> Iterator[WatchlistService]:
    reg = Registry()
    reg.stolen.add(("UTO", "L898902C3"))
    reg.passes[("IND", "Z9876543")] = ("EP", dt.date(2027, 6, 30))
    with WatchlistService(reg) as svc:
        yield svc


def test_the_sim_service_answers_by_the_document(service: WatchlistService) -> None:
    body = {
        "document_number": "L898902C3",
        "issuing_state": "UTO",
        "nationality": "UTO",
        "surname": "ERIKSSON",
        "given_names": "ANNA MARIA",
        "date_of_birth": "1974-08-12",
    }
    _check(SPEC["components"]["schemas"]["CheckRequest"], body)
    seen = set()
    with httpx.Client(base_url=service.url) as client:
        for method, path, payload, status in [
            ("GET", "/health", None, 200),
            ("POST", "/v1/check", body, 200),
            ("POST", "/v1/check", {**body, "document_number": "X1"}, 200),
            ("POST", "/v1/check", [1, 2], 400),
            ("GET", "/v1/passes/IND/Z9876543", None, 200),
            ("GET", "/v1/passes/MYS/A12345678", None, 404),
            ("GET", "/v1/passes/-/A12345678", None, 404),
        ]:
            resp = client.request(method, path, json=payload)
            assert resp.status_code == status, (path, resp.text)
            seen.add(_conforms(method, path, resp))
        assert client.post("/v1/check", json=body).json()["hits"] == ["stolen_document"]
        service.set_mode("failing")
        for method, path in (("POST", "/v1/check"), ("GET", "/v1/passes/IND/Z9876543")):
            resp = client.request(method, path, json=body if method == "POST" else None)
            assert resp.status_code == 500
            _conforms(method, path, resp)
    assert seen == set(SPEC["paths"])  # every documented path was exercised


def test_the_gate_asks_by_the_document() -> None:
    """What the gate's adapters send matches the documented request."""
    asked: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(request)
        if request.url.path == "/v1/check":
            return httpx.Response(200, json={"hits": []})
        return httpx.Response(404, json={"error": "no pass"})

    mrz = parse_mrz(list(TD3), today=dt.date(2010, 1, 1))
    transport = httpx.MockTransport(answer)

    async def ask() -> None:
        for adapter in (
            HttpWatchlist("national", "http://lists", transport=transport),
            HttpPassRegistry("passes", "http://lists", transport=transport),
        ):
            await adapter.check(mrz)
            await adapter.close()

    asyncio.run(ask())
    assert [r.url.path for r in asked] == ["/v1/check", "/v1/passes/UTO/L898902C3"]
    _, check = _operation("POST", "/v1/check")
    schema = check["requestBody"]["content"]["application/json"]["schema"]
    _check(schema, json.loads(asked[0].content))
    _, op = _operation("GET", asked[1].url.path)
    for param, value in zip(op["parameters"], asked[1].url.path.split("/")[-2:], strict=True):
        _check(param["schema"], value)
