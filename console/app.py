"""The console's ASGI app (Starlette): pages, the live stream, images and commands.

Nothing answers without a session except the login page, its script and style sheet,
and the two login endpoints. Every POST needs the session's CSRF token in
``X-CSRF-Token`` (and, when the browser sends one, an ``Origin`` of this host). A body
is read only up to ``MAX_BODY`` and only as strict JSON (``gate.strictjson``); a crash
answers a bare JSON 500 with the security headers, never a page of Starlette's. Live
updates go out as server-sent events: a full snapshot on connect, then one message per
changed gate; ``EventSource`` reconnects by itself and the page shows a banner meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import logging
import math
import re
import time
import traceback
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Protocol
from urllib.parse import urlsplit

from itsdangerous import BadSignature, URLSafeTimedSerializer
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from console.audit import Audit, AuditUnavailable
from console.auth import ALLOWED, Officers, Role, Session, Sessions, Throttle, same_token
from console.mqtt import Signer
from console.state import Hall
from gate import strictjson
from gate.events import EventError, validate
from gate.inputs import Command
from gate.referral_image import LEAF as IMAGE_LEAF

log = logging.getLogger("autogate.console")

SESSION_COOKIE = "ag_session"
LOGIN_COOKIE = "ag_login"
# Over HTTPS the cookies carry the __Host- prefix: a browser then takes them only when set
# Secure, by this very host, for path / and no Domain, so neither a sibling subdomain
# nor a network attacker over plain HTTP can plant a session of their own in an
# officer's browser (the officer would act under the attacker's login). A lab console
# without TLS (secure_cookie: false) cannot use the prefix.
HOST_PREFIX = "__Host-"
LOGIN_TOKEN_AGE_S = 600
PUBLIC_STATIC = {"login.js", "style.css"}
STATIC_TYPES = {".js": "text/javascript", ".css": "text/css", ".html": "text/html"}
KEEPALIVE_S = 10.0
QUEUE_LIMIT = 2000
STATS_S = 1.0  # the hall's counts and last hour go out at most this often
# the ids a gate gives transactions and alarms ({boot}-{n}, {boot}-a{n}); fullmatch, as
# the schema's "$" lets a trailing newline through
BOUND_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")
# signed commands per officer and window: each costs the gate a nonce (a full store
# refuses every command), an fsync'd journal record and an ack; an officer clicks a few
# times a minute, a script posts hundreds a second
COMMANDS_PER_WINDOW = 20
COMMAND_WINDOW_S = 10.0
MAX_BODY = 16 * 1024  # logins and commands are small JSON (nginx: client_max_body_size 16k)

SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self'; connect-src 'self'; script-src 'self'; "
        "style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class CommandPublisher(Protocol):
    def publish_command(self, cmd: dict[str, Any]) -> None: ...

    def clear_retained(self, topic: str) -> None: ...


@dataclass
class Console:
    """Everything the app needs; ``console.cli`` builds it from the config file."""

    hall: Hall
    officers: Officers
    audit: Audit
    signer: Signer
    publisher: CommandPublisher
    secret: bytes
    max_age_s: int = 8 * 3600
    secure_cookie: bool = True
    throttle: Throttle = field(default_factory=lambda: Throttle(5, 300))
    clock: Callable[[], float] = time.time
    broker_up: bool = False
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    on_start: Callable[[asyncio.AbstractEventLoop], None] | None = None

    @property
    def session_cookie(self) -> str:
        return (HOST_PREFIX if self.secure_cookie else "") + SESSION_COOKIE

    @property
    def login_cookie(self) -> str:
        return (HOST_PREFIX if self.secure_cookie else "") + LOGIN_COOKIE

    on_stop: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.sessions = Sessions(self.max_age_s)
        self.cookies = URLSafeTimedSerializer(self.secret, salt="autogate-console-session")
        self.login_tokens = URLSafeTimedSerializer(self.secret, salt="autogate-console-login")
        self.streams: dict[asyncio.Queue[str], Session] = {}
        self.sent_by: dict[str, deque[float]] = {}  # officer -> when commands were signed
        self.throttled_at: dict[str, float] = {}  # officer -> last journalled refusal
        self._stats_due: asyncio.TimerHandle | None = None

    # --- broker side (called on the event loop) ----------------------------------------

    def on_message(self, topic: str, raw: bytes, retained: bool = False) -> None:
        if not raw:
            return  # an empty message clears a retained one (ours, below): nothing to show
        gate = self.hall.ingest(topic, raw, self.clock(), retained)
        if retained and topic.endswith("/" + IMAGE_LEAF):
            # a face must not rest on the broker: refused above, and deleted there now
            self.alert("broker.retained_image", f"retained referral image on {topic} deleted")
            with contextlib.suppress(ConnectionError, AttributeError):
                self.publisher.clear_retained(topic)
        for g, cmd in self.hall.take_acks():
            ack = cmd["ack"]
            self.audit.record(
                "command.ack",
                cmd["officer"],
                gate=g,
                command=cmd["command"],
                command_id=cmd["command_id"],
                accepted=ack["accepted"],
                detail=ack["detail"],
            )
        for g, cmd, detail in self.hall.take_forged():
            self.alert(
                "command.forged_copy",
                f"gate {g} answered command {cmd['command_id']} ({cmd['command']}) twice: "
                f"someone else sent a copy with its id ({detail[:120]}); the console's "
                "broker account is in other hands?",
                cmd["officer"],
                gate=g,
                command_id=cmd["command_id"],
            )
        if gate is not None:
            self.push_gate(gate)

    def on_link(self, up: bool) -> None:
        self.broker_up = up
        self._broadcast("link", {"broker": up})

    def push_gate(self, gate: str) -> None:
        self._broadcast("gate", self.hall.view(gate).snapshot(self.clock()))
        self._stats_soon()

    def _stats_soon(self) -> None:
        """Hall counts and the last hour, at most once per STATS_S (they sum all gates)."""
        if self._stats_due is not None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # called outside the loop (tests): send now
            self._push_stats()
            return
        self._stats_due = loop.call_later(STATS_S, self._push_stats)

    def _push_stats(self) -> None:
        self._stats_due = None
        self._broadcast("stats", self.hall.stats(self.clock()))

    def alert(self, kind: str, text: str, officer: str = "", **data: Any) -> None:
        """A security alarm: logged, journalled, and shown to every supervisor online."""
        log.warning("ALERT %s: %s", kind, text)
        self.audit.record(kind, officer, text=text, **data)
        self._broadcast("alert", {"kind": kind, "text": text}, roles={Role.SUPERVISOR})

    def _broadcast(self, event: str, data: Any, roles: set[Role] | None = None) -> None:
        frame = f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"
        for q, session in list(self.streams.items()):
            if roles is not None and session.role not in roles:
                continue
            try:
                q.put_nowait(frame)
            except asyncio.QueueFull:  # a stuck page: drop it, it reconnects to a snapshot
                self.streams.pop(q, None)
                with contextlib.suppress(asyncio.QueueFull):
                    q.put_nowait("")

    # --- sessions ----------------------------------------------------------------------

    def session_of(self, request: Request) -> Session | None:
        cookie = request.cookies.get(self.session_cookie)
        if not cookie:
            return None
        try:
            sid = self.cookies.loads(cookie, max_age=self.max_age_s)
        except BadSignature:
            return None
        return self.live(str(sid))

    def live(self, sid: str) -> Session | None:
        """The session if it still stands for the officer as they are now: one disabled,
        demoted, promoted or given a new password since login has no session any more."""
        session = self.sessions.get(sid)
        if session is None:
            return None
        officer = self.officers.get(session.officer)
        if officer is None or (officer.role, officer.hash) != (session.role, session.credential):
            self.sessions.end_officer(session.officer)
            return None
        return session


Handler = Callable[[Request, Console, Session], Awaitable[Response]]


def client_address(
    request: Request, trusted: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> str:
    """The client's address: the peer's, or, when the peer is a configured proxy, the
    nearest X-Forwarded-For hop that is not one of ours (anything further left the
    client could have written itself)."""
    peer = request.client.host if request.client else "unknown"

    def ours(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    if not trusted or not ours(peer):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",")]
    for hop in reversed([h for h in hops if h]):
        if not ours(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer  # garbage from the proxy's side: count it on the proxy
    return peer


def _origin_ok(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _deny(status: int, why: str) -> JSONResponse:
    return JSONResponse({"error": why}, status_code=status)


class BadBody(Exception):
    """A request body the console will not read: too large (413) or not strict JSON (400)."""

    def __init__(self, status: int, why: str) -> None:
        super().__init__(why)
        self.status, self.why = status, why

    def response(self) -> JSONResponse:
        return _deny(self.status, self.why)


async def read_json(request: Request) -> Any:
    """The body as strict JSON (None when empty), read at most ``MAX_BODY`` bytes far:
    a declared length over it is refused unread, a chunked body as soon as it passes it.
    Starlette's ``request.json()`` read any size into memory, and a nested body raised
    RecursionError (a 500) where it should be a 400."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY:
        raise BadBody(413, f"body over {MAX_BODY} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY:
            raise BadBody(413, f"body over {MAX_BODY} bytes")
        chunks.append(chunk)
    if not size:
        return None
    try:
        return strictjson.loads(b"".join(chunks))
    except strictjson.StrictJsonError as exc:
        raise BadBody(400, f"body is not JSON: {exc}") from None


def guarded(handler: Handler, *, page: bool = False, write: bool = False) -> Any:
    """Wrap an endpoint: a live session always, CSRF token and origin for writes."""

    async def endpoint(request: Request) -> Response:
        console: Console = request.app.state.console
        session = console.session_of(request)
        if session is None:
            if page:
                return RedirectResponse("/login", status_code=303)
            return _deny(401, "login required")
        if write:
            if not _origin_ok(request):
                return _deny(403, "cross-origin request refused")
            if not same_token(request.headers.get("x-csrf-token"), session.csrf):
                return _deny(403, "missing or wrong CSRF token")
        return await handler(request, console, session)

    return endpoint


def _static(name: str) -> Response:
    try:
        body = resources.files("console.static").joinpath(name).read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return _deny(404, "not found")
    ext = name[name.rfind(".") :]
    return Response(body, media_type=STATIC_TYPES.get(ext, "application/octet-stream"))


# --- public: login -----------------------------------------------------------------------


async def login_page(request: Request) -> Response:
    return _static("login.html")


async def public_static(request: Request) -> Response:
    name = request.path_params["name"]
    if name in PUBLIC_STATIC:
        return _static(name)
    console: Console = request.app.state.console
    if console.session_of(request) is None:
        return _deny(401, "login required")
    if "/" in name or name.startswith(".") or name[name.rfind(".") :] not in STATIC_TYPES:
        return _deny(404, "not found")  # the page's files only, not the package's .py
    return _static(name)


async def login_token(request: Request) -> Response:
    """A pre-login CSRF token (double submit: signed cookie + header)."""
    import secrets

    console: Console = request.app.state.console
    token = secrets.token_urlsafe(24)
    resp = JSONResponse({"csrf": token})
    resp.set_cookie(
        console.login_cookie,
        console.login_tokens.dumps(token),
        max_age=LOGIN_TOKEN_AGE_S,
        httponly=True,
        secure=console.secure_cookie,
        samesite="strict",
    )
    return resp


async def login(request: Request) -> Response:
    console: Console = request.app.state.console
    if not _origin_ok(request):
        return _deny(403, "cross-origin request refused")
    try:
        expected = console.login_tokens.loads(
            request.cookies.get(console.login_cookie, ""), max_age=LOGIN_TOKEN_AGE_S
        )
    except BadSignature:
        expected = None
    if not same_token(request.headers.get("x-csrf-token"), expected):
        return _deny(403, "missing or wrong CSRF token")
    try:
        body = await read_json(request)
        name, password = str(body["name"]), str(body["password"])
    except BadBody as exc:
        return exc.response()
    except (KeyError, TypeError):
        return _deny(400, "expected JSON {name, password}")
    name = name.strip().lower()[:64]
    client = client_address(request, console.trusted_proxies)
    # reserved before the (slow) hash: concurrent guesses see each other
    verdict = console.throttle.attempt(name, client)
    if not verdict.allowed:
        wait = math.ceil(verdict.retry_after)
        log.warning("login throttled: %r from %s (%s, %d s)", name, client, verdict.why, wait)
        console.audit.record("login.throttled", name, client=client, retry_after_s=wait)
        resp = _deny(429, f"too many failed logins for {verdict.why}; try again in {wait} s")
        resp.headers["Retry-After"] = str(wait)
        _guessing(console, name, client)
        return resp
    officer = None
    try:
        officer = await asyncio.to_thread(console.officers.check, name, password)
    finally:
        if officer is None:
            console.throttle.failed(name, client)
    if officer is None:
        log.warning("login failed: %r from %s", name, client)
        console.audit.record("login.failed", name, client=client)
        _guessing(console, name, client)
        return _deny(401, "wrong name or password")
    console.throttle.succeeded(name, client)
    previous = _cookie_sid(console, request)
    if previous is not None:  # a new login replaces the browser's session, not beside it
        console.sessions.end(previous)
    session = console.sessions.start(officer)
    console.audit.record("login", officer.name, role=officer.role.value, client=client)
    resp = JSONResponse({"officer": officer.name, "role": officer.role.value, "csrf": session.csrf})
    resp.set_cookie(
        console.session_cookie,
        console.cookies.dumps(session.sid),
        max_age=console.max_age_s,
        httponly=True,
        secure=console.secure_cookie,
        samesite="strict",
    )
    resp.delete_cookie(console.login_cookie, secure=console.secure_cookie)
    return resp


def _cookie_sid(console: Console, request: Request) -> str | None:
    """The session id the request's cookie names, if the cookie is ours (live or not)."""
    try:
        return str(console.cookies.loads(request.cookies.get(console.session_cookie, "")))
    except BadSignature:
        return None


def _guessing(console: Console, name: str, client: str) -> None:
    tries = console.throttle.guessing(name)
    if tries is not None:
        console.alert(
            "login.guessing",
            f"{tries} failed or refused logins for {name!r} within "
            f"{int(console.throttle.window)} s: someone may be guessing its password",
            name,
            client=client,
        )


# --- behind a session ----------------------------------------------------------------------


async def hall_page(request: Request, console: Console, session: Session) -> Response:
    return _static("hall.html")


async def me(request: Request, console: Console, session: Session) -> Response:
    allowed = sorted(c.value for c in ALLOWED[session.role])
    return JSONResponse(
        {
            "officer": session.officer,
            "role": session.role.value,
            "csrf": session.csrf,
            "allowed": allowed,
            "site": console.hall.site,
        }
    )


async def logout(request: Request, console: Console, session: Session) -> Response:
    console.sessions.end(session.sid)
    console.audit.record("logout", session.officer)
    resp = JSONResponse({"ok": True})
    resp.delete_cookie(console.session_cookie, secure=console.secure_cookie)
    return resp


async def hall_json(request: Request, console: Console, session: Session) -> Response:
    now = console.clock()
    return JSONResponse(
        {
            "broker": console.broker_up,
            "gates": console.hall.snapshot(now),
            "stats": console.hall.stats(now),
        }
    )


async def stream(request: Request, console: Console, session: Session) -> Response:
    queue: asyncio.Queue[str] = asyncio.Queue(QUEUE_LIMIT)
    console.streams[queue] = session
    sid = session.sid

    async def frames() -> AsyncIterator[str]:
        try:
            now = console.clock()
            snap = {
                "broker": console.broker_up,
                "gates": console.hall.snapshot(now),
                "stats": console.hall.stats(now),
            }
            yield f"retry: 1000\nevent: hall\ndata: {json.dumps(snap, separators=(',', ':'))}\n\n"
            while True:
                try:
                    frame = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    frame = ": keepalive\n\n"
                if not frame or console.live(sid) is None:
                    return  # dropped as too slow, logged out, expired, disabled or changed
                yield frame
        finally:
            console.streams.pop(queue, None)

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def image(request: Request, console: Console, session: Session) -> Response:
    gate, txn, which = (request.path_params[k] for k in ("gate", "txn", "which"))
    images = console.hall.open_images(gate, txn)
    data = None
    if images is not None:
        data = {"portrait": images.portrait, "frame": images.frame}.get(which)
    if data is None:
        return _deny(404, "no open referral with that image")
    console.audit.record("images.viewed", session.officer, gate=gate, txn_id=txn, image=which)
    return Response(
        bytes(data),  # a transient copy for the socket; the held buffer is wiped on close
        media_type="image/jpeg",
        headers={"Cache-Control": "no-store, max-age=0", "Pragma": "no-cache"},
    )


async def command(request: Request, console: Console, session: Session) -> Response:
    gate = request.path_params["gate"]
    try:
        cmd = Command(request.path_params["command"])
    except ValueError:
        return _deny(404, "unknown command")
    if gate not in console.hall.gates:
        return _deny(404, "unknown gate")
    if cmd not in ALLOWED[session.role]:
        console.audit.record(
            "command.refused",
            session.officer,
            gate=gate,
            command=cmd.value,
            role=session.role.value,
        )
        return _deny(403, f"{cmd.value} needs the supervisor role")
    wait = _command_wait(console, session.officer)
    if wait is not None:
        resp = _deny(429, f"more than {COMMANDS_PER_WINDOW} commands in {COMMAND_WINDOW_S:g} s")
        resp.headers["Retry-After"] = str(math.ceil(wait))
        return resp
    view = console.hall.view(gate)
    offered = view.offered()
    if offered is not None and cmd.value not in offered:
        # the gate's last status says it would refuse: do not send what it will refuse
        why = f"gate {gate} in {view.state} does not accept {cmd.value}"
        console.audit.record(
            "command.refused", session.officer, gate=gate, command=cmd.value, detail=why
        )
        return _deny(409, why)
    # A decision is bound to what the officer saw: the referral (release, send back) or
    # the alarm (reset) the page showed, sent in the body and signed into the command.
    # Never filled in from the console's own view: by the time the click arrives that may
    # be a later traveller's referral or a newer alarm; the gate refuses any other.
    txn_id = alarm_id = None
    bound = {
        Command.RELEASE: "txn_id",
        Command.SEND_BACK: "txn_id",
        Command.RESET_ALARM: "alarm_id",
    }
    field = bound.get(cmd)
    if field is not None:
        try:
            body = await read_json(request)
        except BadBody as exc:
            return exc.response()
        named = body.get(field) if isinstance(body, dict) else None
        if not isinstance(named, str) or not named:
            what = "referral" if field == "txn_id" else "alarm"
            return _deny(409, f"{cmd.value}: name the {what} it is for ({field})")
        if BOUND_ID.fullmatch(named) is None:
            return _deny(400, f"{cmd.value}: {field} is not an id the gate makes")
        if field == "txn_id":
            txn_id = named
        else:
            alarm_id = named
    signed = console.signer.sign(gate, cmd, session.officer, txn_id, alarm_id)
    try:  # what the gate would refuse as malformed (and raise an alarm over) is not sent
        validate(signed)
    except EventError as exc:
        return _deny(400, f"not a valid command: {exc}")
    console.audit.record(
        "command.sent",
        session.officer,
        gate=gate,
        command=cmd.value,
        command_id=signed["command_id"],
        txn_id=txn_id or (view.referral["txn_id"] if view.referral else None),
        alarm_id=alarm_id,
        gate_state=view.state,
    )
    try:
        console.publisher.publish_command(signed)
    except ConnectionError as exc:
        console.audit.record(
            "command.failed", session.officer, command_id=signed["command_id"], detail=str(exc)
        )
        return _deny(503, str(exc))
    console.hall.command_sent(gate, signed)
    console.push_gate(gate)
    return JSONResponse({"command_id": signed["command_id"]}, status_code=202)


def _command_wait(console: Console, officer: str) -> float | None:
    """None if ``officer`` may have one more command signed now (and count it), else the
    seconds to wait; the first refusal of a window is journalled (not each: a script
    would turn the journal's fsyncs against the console)."""
    now = console.clock()
    sent = console.sent_by.setdefault(officer, deque())
    while sent and sent[0] <= now - COMMAND_WINDOW_S:
        sent.popleft()
    if len(sent) < COMMANDS_PER_WINDOW:
        sent.append(now)
        return None
    wait = sent[0] + COMMAND_WINDOW_S - now
    if console.throttled_at.get(officer, -math.inf) <= now - COMMAND_WINDOW_S:
        console.throttled_at[officer] = now
        console.audit.record(
            "command.throttled", officer, limit=COMMANDS_PER_WINDOW, window_s=COMMAND_WINDOW_S
        )
    return wait


class SecurityHeaders:
    """Pure ASGI (no buffering, so the event stream flows): adds the headers above."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_with_headers(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for k, v in SECURITY_HEADERS.items():
                    if k.lower().encode() not in present:
                        headers.append((k.lower().encode(), v.encode()))
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except AuditUnavailable as exc:
            # nothing was done (a command not journalled is not sent): say why, 503
            if started:
                raise
            await _deny(503, f"{exc}: nothing was done")(scope, receive, send_with_headers)
        except Exception as exc:
            # Starlette's own 500 page is made outside this middleware (no CSP, no
            # no-store): answer here. The message is withheld from the log line too: an
            # exception may quote a traveller's record.
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error(
                "%s on %s %s (message withheld)\n%s",
                type(exc).__name__,
                scope.get("method"),
                scope.get("path"),
                frames,
            )
            if started:
                raise
            await _deny(500, "internal error")(scope, receive, send_with_headers)


# the endpoints behind a session, listed once so tests can walk all of them
PROTECTED: list[tuple[str, str, Handler, bool]] = [
    ("GET", "/", hall_page, False),
    ("GET", "/api/me", me, False),
    ("GET", "/api/hall", hall_json, False),
    ("GET", "/api/stream", stream, False),
    ("GET", "/api/gates/{gate}/referral/{txn}/{which}", image, False),
    ("POST", "/api/gates/{gate}/cmd/{command}", command, True),
    ("POST", "/api/logout", logout, True),
]


def create_app(console: Console) -> Starlette:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if console.on_start is not None:
            console.on_start(asyncio.get_running_loop())
        yield
        for q in list(console.streams):
            with contextlib.suppress(asyncio.QueueFull):
                q.put_nowait("")
        if console.on_stop is not None:
            console.on_stop()

    routes = [
        Route("/login", login_page),
        Route("/static/{name}", public_static),
        Route("/api/login-token", login_token),
        Route("/api/login", login, methods=["POST"]),
    ]
    for method, path, handler, write in PROTECTED:
        routes.append(
            Route(path, guarded(handler, page=path == "/", write=write), methods=[method])
        )
    app = Starlette(routes=routes, middleware=[Middleware(SecurityHeaders)], lifespan=lifespan)
    app.state.console = console
    return app
