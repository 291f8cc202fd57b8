"""``autogate ingest run | worker | migrate | query``."""

from __future__ import annotations

import argparse
import json
import logging
import signal
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

from gate import events
from gate.config import ConfigError

if TYPE_CHECKING:
    from autogate.ingest.store import Store

log = logging.getLogger("autogate.ingest")
EXIT_CONFIG = 2


def add_subcommands(sub: Any) -> None:
    p = sub.add_parser("ingest", help="the central crossing record (MQTT -> PostgreSQL/SQLite)")
    isub = p.add_subparsers(dest="ingest_command", required=True)

    run = isub.add_parser("run", help="N workers on the shared subscription, restarted if they die")
    run.add_argument("--config", required=True)
    run.add_argument("--workers", type=int, help="overrides the config's workers")
    run.set_defaults(func=cmd_run)

    w = isub.add_parser("worker", help="one worker (what `run` starts N of)")
    w.add_argument("--config", required=True)
    w.add_argument("--index", type=int, default=0, help="client id suffix: keeps its session")
    w.set_defaults(func=cmd_worker)

    m = isub.add_parser("migrate", help="bring the database schema to this version")
    m.add_argument("--config", required=True)
    m.set_defaults(func=cmd_migrate)

    s = isub.add_parser("serve", help="the entry service departure gates ask (overstay)")
    s.add_argument("--config", required=True)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=8766)
    s.set_defaults(func=cmd_serve)

    q = isub.add_parser("query", help="crossings and referrals of one document (read-only)")
    q.add_argument("--config", required=True)
    q.add_argument("--document", required=True, help="document number as printed")
    q.add_argument("--json", action="store_true", help="one JSON object per line")
    q.set_defaults(func=cmd_query)


def _config(path: str) -> Any:
    from autogate.ingest.config import load_ingest_config

    try:
        return load_ingest_config(path)
    except ConfigError as exc:
        print(f"config error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None


def cmd_worker(args: argparse.Namespace) -> int:
    from autogate.ingest.store import StoreError
    from autogate.ingest.worker import Worker

    cfg = _config(args.config)
    try:
        worker = Worker(cfg, args.index)
    except (StoreError, ConfigError) as exc:
        print(f"autogate ingest: cannot start: {exc}", file=sys.stderr)
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    worker.run(stop)
    c = worker.counters
    log.info(
        "ingest %s stopped: received %d, inserted %d, duplicates %d, rejected %d",
        worker.client_id,
        c.received,
        c.inserted,
        c.duplicates,
        c.rejected,
    )
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    """A small supervisor: one process per worker, so one crash takes no other down."""
    from autogate.ingest.store import Store, StoreError

    cfg = _config(args.config)
    try:  # migrate once before the workers race to do it
        store = Store(cfg.database)
        store.migrate()
        store.close()
    except StoreError as exc:
        print(f"autogate ingest: cannot start: {exc}", file=sys.stderr)
        return 1
    n = args.workers or cfg.workers
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())

    def spawn(i: int) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "autogate.cli", "ingest", "worker"]
        return subprocess.Popen([*cmd, "--config", args.config, "--index", str(i)])

    procs = {i: spawn(i) for i in range(n)}
    while not stop.wait(1.0):
        for i, p in procs.items():
            if p.poll() is not None:
                log.error("ingest worker %d exited with %s; restarting it", i, p.returncode)
                procs[i] = spawn(i)
    for p in procs.values():
        p.terminate()
    for p in procs.values():
        p.wait(10)
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from autogate.ingest.store import Store, StoreError

    cfg = _config(args.config)
    try:
        store = Store(cfg.database)
        applied = store.migrate()
        print(f"schema version {store.version()} (applied: {applied or 'none'})")
        store.close()
    except StoreError as exc:
        print(f"autogate ingest: {exc}", file=sys.stderr)
        return 1
    return 0


def _query_store(cfg: Any) -> tuple[bytes, Store] | None:
    """The document key and the read-only connection that answers queries; None (said on
    stderr) when either cannot be had."""
    from autogate.ingest.config import read_secret
    from autogate.ingest.store import Store, StoreError

    try:
        key = read_secret(cfg.document_key_file)
        return key, Store(cfg.query_database or cfg.database, read_only=True)
    except (StoreError, ConfigError) as exc:
        print(f"autogate ingest: {exc}", file=sys.stderr)
        return None


def cmd_serve(args: argparse.Namespace) -> int:
    """``POST /v1/last-entry`` on the read-only connection (autogate/ingest/entries.py)."""
    import uvicorn

    from autogate.ingest.entries import build_app

    cfg = _config(args.config)
    try:
        tls = _serve_tls(cfg, args.host)
    except ConfigError as exc:
        print(f"autogate ingest serve: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    opened = _query_store(cfg)
    if opened is None:
        return 1
    key, store = opened
    from autogate.http_deadline import REQUEST_TIMEOUT_S, protocol
    from autogate.logs import UVICORN_LOGGING

    # uvicorn's lines go through the masking handler (autogate.logs), not its own; a
    # request must arrive whole within REQUEST_TIMEOUT_S (autogate/http_deadline.py)
    uvicorn.run(
        build_app(store, key),
        host=args.host,
        port=args.port,
        http=protocol(REQUEST_TIMEOUT_S),
        **tls,
        **UVICORN_LOGGING,
    )
    store.close()
    return 0


def _serve_tls(cfg: Any, host: str) -> dict[str, Any]:
    """uvicorn's TLS arguments (client certificates required), checked here so a bad key
    is one line, not a traceback; plain HTTP only on loopback (behind a TLS proxy)."""
    import ipaddress
    import ssl

    tls = cfg.serve.tls
    if tls is None:
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConfigError(
                f"--host {host}: the entry service says whether a traveller is in the "
                "country; off loopback it needs serve.tls (certificate, key and the CA of "
                "the gates' client certificates)"
            )
        return {}
    try:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=tls.client_ca_file)
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"serve.tls: {exc}") from None
    return {
        "ssl_certfile": str(tls.cert_file),
        "ssl_keyfile": str(tls.key_file),
        "ssl_ca_certs": str(tls.client_ca_file),
        "ssl_cert_reqs": ssl.CERT_REQUIRED,
    }


def cmd_query(args: argparse.Namespace) -> int:
    """Looks up by the keyed hash: the record holds no document number in clear."""
    from autogate.ingest.records import is_document_number

    if not is_document_number(args.document):
        print("autogate ingest query: --document: 1-20 letters A-Z or digits", file=sys.stderr)
        return EXIT_CONFIG
    opened = _query_store(_config(args.config))
    if opened is None:
        return 1
    key, store = opened
    rows = lookup(store, events.hash_document_number(args.document.upper(), key))
    store.close()
    for r in rows:
        if args.json:
            print(json.dumps(r))
        else:
            print(
                f"{r['ts']}  {r['kind']:<8} {r['type']:<18} {r['site']}/{r['gate']}"
                f"  {r['direction'] or '-':<9} {r['nationality'] or '-'}"
                f"  {r['number_masked'] or ''}  {','.join(json.loads(r['reasons']))}"
            )
    if not rows:
        print("no record of this document", file=sys.stderr)
    return 0


def lookup(store: Any, number_hash: str) -> list[dict[str, Any]]:
    """Crossings and referrals of one document hash, oldest first."""
    cols = "ts, type, site, gate, direction, nationality, number_masked, reasons"
    rows = [
        {"kind": "crossing", **r}
        for r in store.query(f"SELECT {cols} FROM crossings WHERE number_hash = ?", [number_hash])
    ] + [
        {"kind": "referral", **r}
        for r in store.query(f"SELECT {cols} FROM referrals WHERE number_hash = ?", [number_hash])
    ]
    return sorted(rows, key=lambda r: r["ts"])
