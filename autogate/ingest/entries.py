"""The central record's entry service: "when did this document last enter?" over HTTP.

Departure gates ask it through ``drivers.watchlist.HttpEntryRecord`` (fail closed):
``POST /v1/last-entry`` with ``{"document_number", "issuing_state", "nationality"}``
answers ``{"last_entry": "<ts>"}`` for the last accepted arrival not followed by a
departure, or ``{"last_entry": null}``. The number travels in the body over TLS (never in
a URL or an access log) and is hashed here with the national key before the lookup; the
service reads through a read-only connection (``query_database``: ``autogate_reader``).
The body is read as one JSON text (``gate.strictjson``): a second ``document_number``,
UTF-16 or a BOM is a 400, never an answer about one of the readings.
"""

from __future__ import annotations

import threading
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from autogate.ingest.records import is_document_number
from autogate.ingest.store import Store
from gate import events, strictjson

MAX_BODY = 4096


def last_entry(store: Store, number_hash: str) -> str | None:
    """The ts of the last accepted arrival of this document, if no departure followed."""
    rows = store.query(
        "SELECT ts, direction FROM crossings WHERE number_hash = ? AND type = ?"
        " AND direction IN ('arrival', 'departure') ORDER BY ts DESC LIMIT 1",
        [number_hash, "crossing.accepted"],
    )
    if not rows or rows[0]["direction"] != "arrival":
        return None
    return str(rows[0]["ts"])


def build_app(store: Store, key: bytes) -> Starlette:
    lock = threading.Lock()  # one connection, asked from the threadpool

    def lookup(request_body: dict[str, Any]) -> JSONResponse:
        number = request_body.get("document_number")
        if not is_document_number(number):
            return JSONResponse({"error": "document_number: 1-20 letters or digits"}, 400)
        with lock:
            ts = last_entry(store, events.hash_document_number(number.upper(), key))
        return JSONResponse({"last_entry": ts})

    async def endpoint(request: Request) -> JSONResponse:
        raw = b""
        async for chunk in request.stream():  # bounded: a lookup is a few dozen bytes
            raw += chunk
            if len(raw) > MAX_BODY:
                return JSONResponse({"error": f"body larger than {MAX_BODY} bytes"}, 413)
        try:  # one reading only: a second document_number must not pick the answer
            body = strictjson.loads(raw, max_bytes=MAX_BODY, max_depth=4)
        except strictjson.StrictJsonError as exc:
            return JSONResponse({"error": f"body is not one JSON text: {exc}"}, 400)
        if not isinstance(body, dict):
            return JSONResponse({"error": "body is not a JSON object"}, 400)
        from starlette.concurrency import run_in_threadpool

        return await run_in_threadpool(lookup, body)

    async def health(_request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/v1/last-entry", endpoint, methods=["POST"]),
            Route("/health", health, methods=["GET"]),
        ]
    )
