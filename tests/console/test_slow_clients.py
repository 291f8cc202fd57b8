"""A client that sends its request a byte at a time (slowloris) held a console connection
for ever: uvicorn arms no timer on a new connection and cancels its keep-alive timer on
any byte. Every request must now arrive whole within ``listen.request_timeout_s``."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.console.proc import ConsoleProcess

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def console(tmp_path: Path) -> Iterator[ConsoleProcess]:
    c = ConsoleProcess(tmp_path / "console", listen={"request_timeout_s": 1.0})
    try:
        yield c
    finally:
        c.stop()


def _trickle(sock: socket.socket, parts: list[bytes], every_s: float, for_s: float) -> float:
    """Send ``parts`` one by one until the server closes; seconds until it did (or ``for_s``)."""
    t0 = time.monotonic()
    sock.settimeout(every_s)
    for part in parts:
        try:
            sock.sendall(part)
            if sock.recv(4096) == b"":
                return time.monotonic() - t0
        except TimeoutError:
            pass  # nothing said: still open
        except (BrokenPipeError, ConnectionResetError):
            return time.monotonic() - t0
        if time.monotonic() - t0 > for_s:
            break
    return for_s


def test_a_request_head_sent_a_line_at_a_time_is_cut_off(console: ConsoleProcess) -> None:
    head = [b"GET /api/login-token HTTP/1.1\r\n"] + [b"X-Pad-%d: a\r\n" % n for n in range(60)]
    with socket.create_connection(("127.0.0.1", console.port)) as s:
        closed_after = _trickle(s, head, every_s=0.25, for_s=8.0)
    assert closed_after < 4.0, "the console kept a trickling client"
    assert console.proc.poll() is None


def test_a_silent_connection_is_cut_off(console: ConsoleProcess) -> None:
    with socket.create_connection(("127.0.0.1", console.port)) as s:
        s.settimeout(5.0)
        t0 = time.monotonic()
        assert s.recv(1) == b""
        assert time.monotonic() - t0 < 4.0


def test_the_second_request_on_a_connection_has_the_same_deadline(
    console: ConsoleProcess,
) -> None:
    with socket.create_connection(("127.0.0.1", console.port)) as s:
        s.sendall(b"GET /api/login-token HTTP/1.1\r\nHost: console\r\n\r\n")
        s.settimeout(5.0)
        assert s.recv(4096).startswith(b"HTTP/1.1 200")
        head = [b"GET /api/login-token HTTP/1.1\r\n"] + [b"X-Pad: a\r\n"] * 60
        closed_after = _trickle(s, head, every_s=0.25, for_s=8.0)
    assert closed_after < 4.0


def test_officers_are_served_meanwhile(console: ConsoleProcess) -> None:
    slow = [socket.create_connection(("127.0.0.1", console.port)) for _ in range(20)]
    try:
        for s in slow:
            s.sendall(b"GET / HTTP/1.1\r\n")
        with console.client() as c:
            assert c.get("/api/login-token").status_code == 200
    finally:
        for s in slow:
            s.close()
