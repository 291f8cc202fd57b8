"""uvicorn's HTTP/1.1 protocol with a deadline for each request's head and body.

uvicorn (0.55) starts no timer on a new connection and cancels its keep-alive timer on
any byte received, so a client that sends a request one byte every few seconds holds
a connection (and its memory) for ever: enough such clients keep the console from
officers, or the entry service from departure gates (slowloris). nginx in front of the
console (``deploy/nginx``) has ``client_header_timeout``; this closes the gap where
uvicorn listens itself (the console, ``autogate ingest serve``). No option of uvicorn does it,
hence the subclass: a timer armed when a connection opens and again when a response
is complete, cancelled only once the client's whole request has arrived.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

REQUEST_TIMEOUT_S = 10.0  # from a connection (or the last response) to a whole request


# the client's side of h11's state machine once its request head and body are in
_REQUEST_IN = (
    h11.DONE,
    h11.MUST_CLOSE,
    h11.CLOSED,
    h11.ERROR,
    h11.MIGHT_SWITCH_PROTOCOL,
    h11.SWITCHED_PROTOCOL,
)


class DeadlineH11Protocol(H11Protocol):
    """An ``H11Protocol`` that closes a connection whose request does not arrive whole
    within ``request_timeout_s``."""

    request_timeout_s = REQUEST_TIMEOUT_S

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state in _REQUEST_IN:
            self._disarm()  # the request is in: the application's time is its own

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm()  # the next request on this connection gets the same deadline

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.request_timeout_s, self._expired)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expired(self) -> None:
        self._deadline = None
        if self.transport.is_closing() or self.conn.their_state is h11.DONE:
            return
        peer = f"{self.client[0]}:{self.client[1]}" if self.client else "a client"
        log.warning("%s: no whole request in %ss, connection closed", peer, self.request_timeout_s)
        self.transport.close()


def protocol(request_timeout_s: float) -> type[DeadlineH11Protocol]:
    """The protocol class uvicorn is given (``http=``), with this deadline."""
    return type(
        "ConsoleH11Protocol", (DeadlineH11Protocol,), {"request_timeout_s": request_timeout_s}
    )
