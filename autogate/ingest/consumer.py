"""An MQTT 5 subscriber that takes messages in batches and acknowledges a batch at once.

Why not paho here (the gates and the console keep it): an ingest worker spends its CPU per
message, and paho reads each packet with three or four ``recv`` calls, builds a
``MQTTMessage`` and runs its callback machinery per message, then queues each PUBACK
through a socket pair to its loop thread: about 130 µs of the worker's 155-200 µs per
event (docs/bench-ingest.md). No maintained Python client reads in bulk and leaves the
acknowledgement of a whole batch to the caller. So the packets are encoded and decoded by
``mqtt5`` (a sans-I/O MQTT 5 codec in Rust, ~1 µs a packet) and this module is only the
small client around it: connect (TCP or TLS), subscribe, read what the socket holds in
one ``recv``, keep the connection alive, and send a batch's PUBACKs in one write, when
the caller says the batch is durable.

One thread owns a ``Consumer``; nothing here is thread-safe, nothing needs to be.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from dataclasses import dataclass
from typing import TypeVar

import mqtt5

READ_SIZE = 1 << 18
P = TypeVar("P")


class ConsumerError(Exception):
    """The connection failed or was refused; the message says why (for the log)."""


class SessionTakenOver(ConsumerError):
    """The broker closed this session because another client took its client id."""


@dataclass(frozen=True, slots=True)
class Message:
    mid: int  # packet id (0 for QoS 0)
    qos: int
    topic: str
    payload: bytes
    generation: int  # which connection delivered it: only that one may acknowledge it


def tls_context(ca_file: str, cert_file: str | None, key_file: str | None) -> ssl.SSLContext:
    """Verify the broker against our CA (host name included); our certificate if given."""
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_file)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file:
        ctx.load_cert_chain(cert_file, key_file)
    return ctx


class Consumer:
    """``connect()``, then ``receive()`` batches and ``ack()`` them; ``close()``."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        subscription: str,
        *,
        username: str | None = None,
        password: str | None = None,
        tls: ssl.SSLContext | None = None,
        session_expiry_s: int = 0,
        keepalive_s: int = 30,
        receive_max: int = 2000,
    ) -> None:
        self.host, self.port = host, port
        self.client_id = client_id
        self.subscription = subscription
        self.username, self.password = username, password
        self.tls = tls
        self.session_expiry_s = session_expiry_s
        self.keepalive_s = keepalive_s
        self.receive_max = max(1, min(65535, receive_max))
        self.generation = 0
        self._sock: socket.socket | None = None
        self._buf = bytearray()
        self._pending: list[Message] = []  # decoded, not yet handed out
        self._control: list[object] = []  # CONNACK, SUBACK, PINGRESP as they come
        self._last_sent = 0.0
        self._last_heard = 0.0

    @property
    def connected(self) -> bool:
        return self._sock is not None

    # --- connection ---------------------------------------------------------------------

    def connect(self, timeout: float = 10.0) -> bool:
        """Connect, resume the session and subscribe; True if the broker had our session."""
        self.close()
        try:
            raw = socket.create_connection((self.host, self.port), timeout=timeout)
        except OSError as exc:
            raise ConsumerError(f"cannot reach {self.host}:{self.port}: {exc}") from None
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            sock = (
                self.tls.wrap_socket(raw, server_hostname=self.host)
                if self.tls is not None
                else raw
            )
        except (OSError, ssl.SSLError) as exc:
            raw.close()
            raise ConsumerError(f"TLS with {self.host}:{self.port} failed: {exc}") from None
        self._sock = sock
        self._buf.clear()
        self._pending.clear()
        self.generation += 1
        try:
            self._send(
                mqtt5.ConnectPacket(
                    self.client_id,
                    username=self.username,
                    password=self.password.encode() if self.password is not None else None,
                    clean_start=False,
                    keep_alive=self.keepalive_s,
                    session_expiry_interval=self.session_expiry_s,
                    receive_max=self.receive_max,
                ).write()
            )
            connack = self._expect(mqtt5.ConnAckPacket, timeout)
            if connack.reason_code != mqtt5.ConnAckReasonCode.SUCCESS:
                raise ConsumerError(f"broker refused the connection: {connack.reason_code.name}")
            self._send(
                mqtt5.SubscribePacket(
                    1, [mqtt5.TopicFilter(self.subscription, max_qos=mqtt5.QoS.AT_LEAST_ONCE)]
                ).write()
            )
            suback = self._expect(mqtt5.SubAckPacket, timeout)
            code = suback.reason_codes[0] if suback.reason_codes else None
            if code is None or int(code) >= 0x80:
                name = code.name if code is not None else "no reason code"
                raise ConsumerError(f"subscription {self.subscription} refused: {name}")
        except BaseException:
            self.close()
            raise
        return bool(connack.session_present)

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            finally:
                self._sock = None

    def disconnect(self) -> None:
        """A clean DISCONNECT (the session stays for ``session_expiry_s``), then close."""
        if self._sock is not None:
            with contextlib.suppress(ConsumerError):
                self._send(mqtt5.DisconnectPacket().write())
        self.close()

    # --- messages -----------------------------------------------------------------------

    def receive(self, max_n: int, wait_s: float, idle_s: float = 0.2) -> list[Message]:
        """Up to ``max_n`` messages: waits ``idle_s`` for the first, then at most ``wait_s``
        more to fill the batch. Raises ``ConsumerError`` when the connection is lost."""
        now = time.monotonic()
        deadline = now + idle_s
        filled_by: float | None = now + wait_s if self._pending else None
        while len(self._pending) < max_n:
            now = time.monotonic()
            until = filled_by if filled_by is not None else deadline
            if now >= until:
                break
            self._keepalive(now)
            if not self._read(min(until - now, self._ping_due(now))):
                continue
            if self._pending and filled_by is None:
                filled_by = time.monotonic() + wait_s
        out, self._pending = self._pending[:max_n], self._pending[max_n:]
        return out

    def ack(self, messages: list[Message]) -> int:
        """PUBACK every QoS 1 message of this connection in one write; the number sent.
        Messages of an earlier connection are skipped: the broker sends them again."""
        due = [m.mid for m in messages if m.qos == 1 and m.generation == self.generation]
        if due and self._sock is not None:
            self._send(b"".join(mqtt5.PubAckPacket(mid).write() for mid in due))
            return len(due)
        return 0

    # --- the socket ---------------------------------------------------------------------

    def _send(self, data: bytes) -> None:
        if self._sock is None:
            raise ConsumerError("not connected")
        try:
            self._sock.settimeout(30)
            self._sock.sendall(data)
        except (OSError, ssl.SSLError) as exc:
            self.close()
            raise ConsumerError(f"send failed: {exc}") from None
        self._last_sent = time.monotonic()

    def _read(self, timeout: float) -> bool:
        """One ``recv`` (what the socket holds, up to 256 KiB) and every whole packet in it.
        False on a timeout."""
        if self._sock is None:
            raise ConsumerError("not connected")
        try:
            self._sock.settimeout(max(0.001, timeout))
            data = self._sock.recv(READ_SIZE)
        except (TimeoutError, ssl.SSLWantReadError):
            return False
        except (OSError, ssl.SSLError) as exc:
            self.close()
            raise ConsumerError(f"connection lost: {exc}") from None
        if not data:
            self.close()
            raise ConsumerError("connection closed by the broker")
        self._last_heard = time.monotonic()
        self._buf += data
        self._decode()
        return True

    def _decode(self) -> None:
        view = memoryview(self._buf)
        at = 0
        try:
            while at < len(view):
                try:
                    packet, n = mqtt5.read(view[at:])
                except IndexError:  # an incomplete packet: the rest comes with the next read
                    break
                except ValueError as exc:
                    self.close()
                    raise ConsumerError(f"malformed packet from the broker: {exc}") from None
                at += n
                self._handle(packet)
        finally:
            view.release()
            del self._buf[:at]

    def _handle(self, packet: object) -> None:
        if isinstance(packet, mqtt5.PublishPacket):
            self._pending.append(
                Message(
                    packet.packet_id or 0,
                    int(packet.qos),
                    packet.topic,
                    packet.payload,
                    self.generation,
                )
            )
        elif isinstance(packet, mqtt5.DisconnectPacket):
            self.close()
            code = packet.reason_code
            if code == mqtt5.DisconnectReasonCode.SESSION_TAKEN_OVER:
                raise SessionTakenOver("the broker says another client took this session")
            raise ConsumerError(f"the broker disconnected us: {code.name}")
        elif isinstance(packet, mqtt5.PingRespPacket | mqtt5.SubAckPacket | mqtt5.ConnAckPacket):
            self._control.append(packet)
        # anything else (PUBACK of nothing we sent, AUTH) has no meaning for a subscriber

    def _expect(self, kind: type[P], timeout: float) -> P:
        """Read until a control packet of ``kind`` arrives (messages queue meanwhile)."""
        self._control = []
        deadline = time.monotonic() + timeout
        while True:
            for p in self._control:
                if isinstance(p, kind):
                    self._control = []
                    return p
            left = deadline - time.monotonic()
            if left <= 0:
                self.close()
                raise ConsumerError(f"no {kind.__name__.removesuffix('Packet')} within {timeout} s")
            self._read(left)

    # --- keepalive ----------------------------------------------------------------------

    def ping_if_due(self) -> None:
        """A PINGREQ if one is due, for a caller busy elsewhere (a database that is down):
        the session stays connected; what the broker sends meanwhile waits in the socket."""
        if self._sock is not None and time.monotonic() - self._last_sent >= self.keepalive_s:
            self._send(mqtt5.PingReqPacket().write())
            self._last_heard = time.monotonic()  # its answer is read with the next batch

    def _ping_due(self, now: float) -> float:
        return max(0.001, self._last_sent + self.keepalive_s - now)

    def _keepalive(self, now: float) -> None:
        """PINGREQ when we have said nothing for ``keepalive_s``; a broker silent for twice
        that is gone (a dead link gives no error until then)."""
        if now - self._last_sent >= self.keepalive_s:
            self._send(mqtt5.PingReqPacket().write())
        if self._last_heard and now - self._last_heard > 2 * self.keepalive_s:
            self.close()
            raise ConsumerError(f"the broker said nothing for {2 * self.keepalive_s} s")
