"""Sites bridged to a centre: the bridge section, the central ACL, and a WAN link to cut.

A site's Mosquitto bridges its subtree to the central Mosquitto exactly as
docs/operations.md "Bridges to the centre" says: TLS with the bridge's own client
certificate (and its own account), QoS 1, ``cleansession false``, events and status up
(``autogate/v1/<site>/# out 1``), commands down (``autogate/v1/<site>/+/cmd/# in 1``).
The central ACL lets each bridge account write only its own site's subtree and read
only its own site's commands.

``LinkProxy`` stands for the WAN between a site and the centre: a TCP relay on loopback
that the bridge dials instead of the centre. ``cut()`` is a firewall DROP: every byte
both ways is swallowed and new connections are held without an answer, so the bridge
finds out only by its keepalive, as over a real dead link (messages in flight at the
cut lose their PUBACK and are sent again: the centre's duplicates). ``restore()``
resets the connections held across the cut (they would have timed out on a real link)
and relays again. It was chosen over restarting the site broker without its bridge
because a WAN cut must not touch the site: its gates stay connected to their broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

from sim.broker import INGEST_ACCOUNTS, free_port

KEEPALIVE_S = 5  # Mosquitto's minimum: a dead link is noticed within ~1.5 x this


@dataclass(frozen=True)
class BridgeTLS:
    ca: Path
    cert: Path
    key: Path


def bridge_account(site: str) -> str:
    return f"bridge-{site}"


def bridge_section(site: str, port: int, tls: BridgeTLS, password: str) -> str:
    """The ``connection`` block appended to a site broker's mosquitto.conf."""
    name = bridge_account(site)
    return (
        f"\nconnection {name}\n"
        f"address 127.0.0.1:{port}\n"
        f"bridge_cafile {tls.ca}\n"
        f"bridge_certfile {tls.cert}\n"
        f"bridge_keyfile {tls.key}\n"
        f"remote_username {name}\n"
        f"remote_password {password}\n"
        f"remote_clientid {name}\n"
        f"local_clientid {name}-local\n"
        "cleansession false\n"
        f"keepalive_interval {KEEPALIVE_S}\n"
        "restart_timeout 1 3\n"  # the production default (5 30) is slower to come back
        "notifications true\n"
        "notifications_local_only true\n"  # the centre's ACL gives bridges no $SYS
        f"topic autogate/v1/{site}/# out 1\n"
        f"topic autogate/v1/{site}/+/cmd/# in 1\n"
    )


def central_acl(sites: list[str]) -> str:
    """The centre's ACL: one block per site's bridge, then the national roles."""
    blocks = [
        f"user {bridge_account(s)}\n"
        f"topic write autogate/v1/{s}/#\n"
        f"topic read autogate/v1/{s}/+/cmd/#\n"
        for s in sites
    ]
    blocks.append("user console\ntopic write autogate/v1/+/+/cmd/#\ntopic read autogate/v1/#\n")
    blocks.append("user monitor\ntopic read autogate/v1/#\n")
    blocks += [f"user {u}\ntopic read autogate/v1/+/+/event/#\n" for u in INGEST_ACCOUNTS]
    return "\n".join(blocks)


class LinkProxy:
    """A TCP relay to ``target_port`` in a thread of its own; ``cut()`` / ``restore()``."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self.up = True
        self.cuts = 0
        self._conns: set[asyncio.StreamWriter] = set()
        self._held: set[asyncio.StreamWriter] = set()
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"link-{self.port}", daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("link proxy did not start")

    def cut(self) -> None:
        self._call(self._cut)

    def restore(self) -> None:
        self._call(self._restore)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)

    # --- the relay's own loop ----------------------------------------------------------

    def _call(self, fn: object) -> None:
        done = threading.Event()

        def run() -> None:
            try:
                fn()  # type: ignore[operator]
            finally:
                done.set()

        self._loop.call_soon_threadsafe(run)
        if not done.wait(10):
            raise RuntimeError("link proxy did not answer")

    def _cut(self) -> None:
        self.up = False
        self.cuts += 1
        self._held |= self._conns  # open connections now go nowhere

    def _restore(self) -> None:
        for w in self._held:
            with contextlib.suppress(Exception):
                w.transport.abort()
        self._held.clear()
        self.up = True

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        async def serve() -> asyncio.Server:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", self.port))
            return await asyncio.start_server(self._accept, sock=sock)

        server = self._loop.run_until_complete(serve())
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for w in self._conns:
                w.transport.abort()
            # the relays end on their own once their sockets are gone (a cancelled one
            # would be reported by asyncio's stream callback as an error)
            pending = asyncio.all_tasks(self._loop)
            if pending:
                self._loop.run_until_complete(asyncio.wait(pending, timeout=5))
            for t in asyncio.all_tasks(self._loop):
                t.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:  # dropped: the dialler waits for an answer that never comes
            self._conns.add(writer)
            self._held.add(writer)
            await self._swallow(reader)
            self._conns.discard(writer)
            writer.transport.abort()
            return
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        for w in (writer, up_w):
            w.transport.get_extra_info("socket").setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1
            )
        self._conns |= {writer, up_w}
        await asyncio.gather(
            self._pipe(reader, up_w, writer), self._pipe(up_r, writer, up_w), return_exceptions=True
        )
        self._conns -= {writer, up_w}

    async def _pipe(
        self, src: asyncio.StreamReader, dst: asyncio.StreamWriter, src_w: asyncio.StreamWriter
    ) -> None:
        """Relay until either side closes; while cut, what is read is dropped."""
        try:
            while data := await src.read(65536):
                if self.up and dst not in self._held:
                    dst.write(data)
                    await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            for w in (dst, src_w):
                with contextlib.suppress(Exception):
                    w.transport.abort()

    @staticmethod
    async def _swallow(reader: asyncio.StreamReader) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while await reader.read(65536):
                pass
