"""Sites bridged to a centre, for real: one site's WAN link cut mid-run and restored.

Real Mosquittos (one per site and a central one, TLS bridges with cleansession false),
real gate daemons with their outboxes. Every wait is on a condition with a wide
deadline, never a fixed sleep that has to be long enough, so a loaded machine makes the
run slower, not red.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from pathlib import Path

from sim.bridge import LinkProxy
from sim.national import Centre, run_national


def test_a_cut_site_loses_nothing_and_takes_commands_after(tmp_path: Path) -> None:
    """2 sites x 2 gates, a 4 s cut, and the central record fed from the centre."""
    report = asyncio.run(
        run_national(2, 2, seconds=10, run=tmp_path, link_cut_s=4, ingest="sqlite")
    )
    print(report.table())
    assert report.sent > 10
    assert report.lost == 0, report.table()
    assert report.received == report.sent
    assert report.duplicates >= 0  # de-duplicated by event_id: counted, never received twice
    # the cut bit: events of the cut site waited for the link
    assert report.held_max_s > 1.0, report.table()
    # commands from the centre reach the cut site's gate after the link returned, and its
    # answers come back up
    assert [(c, ok) for c, ok, _ in report.commands] == [
        ("out_of_service", True),
        ("in_service", True),
    ]
    assert report.command_copies == 1  # a command does not come back up the bridge
    # autogate ingest on the central broker recorded every event once
    assert report.ingest is not None and report.ingest["rows"] == report.sent


def test_the_centre_counts_a_redelivered_event_once() -> None:
    centre = Centre()
    body = json.dumps({"event_id": "e1", "schema": "crossing/1"}).encode()
    for _ in range(2):  # the bridge sends again what lost its PUBACK at the cut
        centre.on_message("autogate/v1/s01/g01/event/crossing", body)
    centre.on_message("autogate/v1/s01/g01/event/crossing", body.replace(b"e1", b"e2"))
    assert set(centre.arrivals) == {"e1", "e2"}
    assert centre.messages - len(centre.arrivals) == 1


def test_a_cut_link_drops_bytes_and_a_restored_one_relays() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        link = LinkProxy(server.getsockname()[1])
        link.start()
        got: list[bytes] = []
        accepted = threading.Event()

        def serve() -> None:
            while True:
                conn, _ = server.accept()
                accepted.set()
                with conn:
                    while data := conn.recv(100):
                        got.append(data)

        threading.Thread(target=serve, daemon=True).start()
        try:
            with socket.create_connection(("127.0.0.1", link.port)) as c:
                c.sendall(b"before")
                assert accepted.wait(10)
                deadline = time.monotonic() + 10
                while b"before" not in b"".join(got):
                    assert time.monotonic() < deadline
                    time.sleep(0.01)
                link.cut()
                c.sendall(b"during")
                link.restore()  # the connection held across the cut is closed
                c.settimeout(10)
                with contextlib.suppress(ConnectionResetError):
                    assert c.recv(10) == b""
            with socket.create_connection(("127.0.0.1", link.port)) as c:
                c.sendall(b"after")
                c.shutdown(socket.SHUT_WR)
                c.settimeout(10)
                c.recv(10)
            deadline = time.monotonic() + 10  # the relay hands it on in its own time
            while b"after" not in b"".join(got) and time.monotonic() < deadline:
                time.sleep(0.01)
        finally:
            link.stop()
        assert b"during" not in b"".join(got)
        assert b"before" in b"".join(got) and b"after" in b"".join(got)
