"""The central record beside the bridged fleet: ``autogate ingest`` reading the centre.

Two worker processes (``autogate ingest worker``, one broker account each, over TLS with
the ingest service's client certificate) on the central Mosquitto's shared subscription, writing into a throw-away PostgreSQL cluster (durable
defaults, sim/postgres.py) or a SQLite file. Afterwards the rows give the
gate-to-database latency: the event's ``ts`` (the gate's clock) to its row's
``received_at`` (the worker's clock at the write), on the same machine.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sim.broker import PASSWORDS
from sim.fleet import DOCUMENT_KEY

WORKERS = 2
KEY = DOCUMENT_KEY  # the gates' (sim/fleet.py): the record's hashes are under the national key


class IngestRun:
    def __init__(
        self, directory: Path, database: str, broker_port: int, tls: tuple[Path, Path, Path]
    ) -> None:
        self.dir = directory
        self.database = database
        self.port = broker_port  # the centre's TLS listener
        # CA, the workers' client certificate and key paths, ``{index}`` in both: the
        # centre takes each worker's account (ingest-i) from its certificate
        self.tls = tls
        self.cluster: Any = None
        self.procs: list[subprocess.Popen[bytes]] = []
        self.url = ""

    def start(self) -> None:
        from autogate.ingest.store import Store

        self.dir.mkdir(parents=True, exist_ok=True)
        if self.database == "postgresql":
            from sim.postgres import Cluster

            self.cluster = Cluster(durable=True)
            self.cluster.start()
            self.url = self.cluster.createdb("fleet")
        else:
            self.url = f"sqlite:///{self.dir / 'record.sqlite'}"
        ca, cert, key = self.tls
        (self.dir / "key").write_bytes(KEY)
        (self.dir / "pw").write_text(PASSWORDS["ingest-0"])
        cfg = self.dir / "ingest.yaml"
        cfg.write_text(
            f"database: '{self.url}'\ndocument_key_file: {self.dir / 'key'}\n"
            f"broker: {{port: {self.port}, username: 'ingest-{{index}}',"
            f" password_file: {self.dir / 'pw'},"
            f" tls: {{ca_file: {ca}, cert_file: '{cert}', key_file: '{key}'}}}}\n"
            f"quarantine_dir: {self.dir / 'quarantine'}\n"
        )
        store = Store(self.url)
        store.migrate()
        store.close()
        for i in range(WORKERS):
            log = self.dir / f"worker-{i}.log"
            self.procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "autogate.cli", "ingest", "worker"]
                    + ["--config", str(cfg), "--index", str(i)],
                    stderr=log.open("wb"),
                )
            )
            deadline = time.monotonic() + 60
            while b"subscribed to" not in log.read_bytes():
                if self.procs[-1].poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"ingest worker {i} did not start: {log.read_text()}")
                time.sleep(0.05)

    def _rows(self) -> list[dict[str, Any]]:
        from autogate.ingest.store import Store

        store = Store(self.url, read_only=True)
        try:
            return [
                r
                for t in ("crossings", "referrals", "alarms")
                for r in store.query(f"SELECT event_id, site, ts, received_at FROM {t}")
            ]
        finally:
            store.close()

    def wait_rows(self, ids: set[str], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ids <= {r["event_id"] for r in self._rows()}:
                return True
            time.sleep(0.5)
        return False

    def stop(self, sent: dict[str, tuple[str, float]], uncut: set[str]) -> dict[str, Any]:
        """Stop the workers; the record's figures for the events the gates sent."""
        import datetime as dt

        from sim.national import _pct

        try:
            rows = [r for r in self._rows() if r["event_id"] in sent]
        finally:
            for p in self.procs:
                p.terminate()
            for p in self.procs:
                p.wait(20)
            if self.cluster is not None:
                self.cluster.stop()

        def ms(r: dict[str, Any]) -> float:
            at = dt.datetime.fromisoformat(r["received_at"].replace("Z", "+00:00"))
            ts = dt.datetime.fromisoformat(r["ts"].replace("Z", "+00:00"))
            return (at - ts).total_seconds() * 1000

        every = [ms(r) for r in rows]
        kept = [ms(r) for r in rows if r["site"] in uncut]
        return {
            "database": self.database,
            "rows": len(rows),
            "latency_ms": (_pct(every, 0.5), _pct(every, 0.95)),
            "latency_uncut_ms": (_pct(kept, 0.5), _pct(kept, 0.95)),
        }
