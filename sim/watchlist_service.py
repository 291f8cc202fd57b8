"""A stand-in for the national watchlist and pass registry service, for tests and demos.

It speaks the API ``drivers/watchlist.py`` expects (``POST /v1/check``,
``GET /v1/passes/{state}/{number}``, ``GET /health``, and the central record's
``POST /v1/last-entry`` of ``autogate/ingest/entries.py``) and can misbehave on demand:

- ``normal``: answers at once;
- ``slow``: waits ``delay_s`` before answering (the gate's deadline should fire);
- ``failing``: answers HTTP 500;
- ``down``: accepts the connection and closes it without a word.

``stop()`` closes the port altogether (connection refused). The server is the standard
library's threading HTTP server in a background thread: no event loop of its own, so
it runs beside the gate's asyncio loop in the same test process.

Run standalone: ``python -m sim.watchlist_service --port 8765 --stolen MYS:A1234567``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

Mode = Literal["normal", "slow", "failing", "down"]
PASS_PATH = re.compile(r"^/v1/passes/([A-Z<-]{1,3})/([A-Z0-9]{1,20})$")


@dataclass
class Registry:
    """What the service knows, in plain form (it plays the authority, not the gate)."""

    stolen: set[tuple[str, str]] = field(default_factory=set)  # (issuing state, number)
    lost: set[tuple[str, str]] = field(default_factory=set)
    persons: set[tuple[str, str, str]] = field(default_factory=set)  # surname, given, birth
    passes: dict[tuple[str, str], tuple[str, dt.date]] = field(default_factory=dict)
    entries: dict[str, dt.datetime] = field(default_factory=dict)  # number -> last entry

    def hits(self, q: dict[str, Any]) -> list[str]:
        doc = (str(q.get("issuing_state", "")), str(q.get("document_number", "")))
        person = (str(q.get("surname", "")), str(q.get("given_names", "")), q.get("date_of_birth"))
        found = []
        if doc in self.stolen:
            found.append("stolen_document")
        if doc in self.lost:
            found.append("lost_document")
        if person in self.persons:
            found.append("person")
        return found


class WatchlistService:
    def __init__(self, registry: Registry | None = None, host: str = "127.0.0.1", port: int = 0):
        self.registry = registry or Registry()
        self.mode: Mode = "normal"
        self.delay_s = 2.0
        self.requests = 0
        self._stopping = threading.Event()  # wakes slow handlers on stop()
        self._lock = threading.Lock()
        self._host, self._port = host, port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    def set_mode(self, mode: Mode, delay_s: float | None = None) -> None:
        self.mode = mode
        if delay_s is not None:
            self.delay_s = delay_s

    def start(self) -> WatchlistService:
        """Listen (again, on the same port after a ``stop()``) and serve in a thread."""
        self._stopping.clear()
        server = ThreadingHTTPServer((self._host, self._port), self._handler_class())
        server.daemon_threads = True
        server.block_on_close = False  # a slow handler must not hold up stop()
        self._port = server.server_address[1]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="watchlist-sim"
        )
        self._thread.daemon = True
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> WatchlistService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # one write per answer and no Nagle: headers and body in separate segments
            # otherwise meet the peer's delayed ACK and every answer stalls ~40 ms
            disable_nagle_algorithm = True
            wbufsize = 1 << 16

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return  # quiet in tests

            def _misbehave(self) -> bool:
                with service._lock:
                    service.requests += 1
                mode = service.mode
                if mode == "slow":
                    service._stopping.wait(service.delay_s)
                elif mode == "failing":
                    self._send(500, {"error": "internal"})
                    return True
                elif mode == "down":
                    self.close_connection = True
                    self.connection.close()
                    return True
                return False

            def _send(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client gave up (its deadline)
                    self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802
                if self._misbehave():
                    return
                if self.path == "/health":
                    return self._send(200, {"status": "ok"})
                m = PASS_PATH.match(self.path)
                if not m:
                    return self._send(404, {"error": "not found"})
                record = service.registry.passes.get((m[1], m[2]))
                if record is None:
                    return self._send(404, {"error": "no pass"})
                self._send(200, {"pass_type": record[0], "valid_until": record[1].isoformat()})

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length)
                if self._misbehave():
                    return
                if self.path not in ("/v1/check", "/v1/last-entry"):
                    return self._send(404, {"error": "not found"})
                try:
                    query = json.loads(raw)
                    if not isinstance(query, dict):
                        raise ValueError("not an object")
                except ValueError:
                    return self._send(400, {"error": "bad request"})
                if self.path == "/v1/last-entry":
                    entry = service.registry.entries.get(str(query.get("document_number")))
                    ts = entry.isoformat().replace("+00:00", "Z") if entry else None
                    return self._send(200, {"last_entry": ts})
                self._send(200, {"hits": service.registry.hits(query)})

        return Handler


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8765)
    p.add_argument("--mode", default="normal", choices=["normal", "slow", "failing", "down"])
    p.add_argument("--delay-s", type=float, default=2.0)
    p.add_argument("--stolen", action="append", default=[], help="STATE:NUMBER")
    p.add_argument("--lost", action="append", default=[], help="STATE:NUMBER")
    p.add_argument("--person", action="append", default=[], help="SURNAME:GIVEN NAMES:YYYY-MM-DD")
    p.add_argument(
        "--pass", dest="passes", action="append", default=[], help="STATE:NUMBER:TYPE:YYYY-MM-DD"
    )
    a = p.parse_args(argv)
    reg = Registry(
        stolen={tuple(s.split(":", 1)) for s in a.stolen},  # type: ignore[misc]
        lost={tuple(s.split(":", 1)) for s in a.lost},  # type: ignore[misc]
        persons={tuple(s.split(":", 2)) for s in a.person},  # type: ignore[misc]
        passes={
            (st, n): (t, dt.date.fromisoformat(d))
            for st, n, t, d in (s.split(":", 3) for s in a.passes)
        },
    )
    svc = WatchlistService(reg, a.host, a.port)
    svc.set_mode(a.mode, a.delay_s)
    svc.start()
    print(f"watchlist service on {svc.url} ({a.mode})", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        svc.stop()


if __name__ == "__main__":
    main()
