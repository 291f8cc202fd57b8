"""A throw-away PostgreSQL cluster for tests, benchmarks and the fleet (Debian ``postgresql``).

initdb + pg_ctl in a private temp dir, listening only on a unix socket in that dir (so
it never meets the system's cluster or another engineer's); as root the server runs as
the ``postgres`` user through ``runuser``. If it cannot start, ``PgError`` says what to do.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from sim.broker import free_port


class PgError(RuntimeError):
    pass


def _bindir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise PgError(
            "PostgreSQL is not installed: install the Debian package `postgresql` "
            "(./run setup does it)"
        )
    return Path(found[-1]).parent


class Cluster:
    def __init__(self, *, durable: bool = False) -> None:
        self.bin = _bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="autogate-pg-"))
        self.port = free_port()
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.sock.mkdir()
        self.durable = durable
        self._as: list[str] = []
        if os.getuid() == 0:
            if shutil.which("runuser") is None:
                raise PgError("running as root without runuser: cannot start PostgreSQL")
            os.chmod(self.dir, 0o755)
            shutil.chown(self.dir, "postgres")
            shutil.chown(self.sock, "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *cmd: str) -> None:
        try:
            subprocess.run([*self._as, *cmd], check=True, capture_output=True, timeout=120)
        except subprocess.CalledProcessError as exc:
            out = (exc.stderr or b"").decode(errors="replace")[-800:]
            raise PgError(f"{cmd[0]} failed: {out}") from None

    def start(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres")
        opts = f"-p {self.port} -k {self.sock} -c listen_addresses=''"
        if not self.durable:  # tests: the crash-safety of PostgreSQL itself is not under test
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-o",
            opts,
            "-l",
            str(self.dir / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )

    def pid(self) -> int:
        """The postmaster's process id (its children are the backends)."""
        return int((self.data / "postmaster.pid").read_text().split()[0])

    def url(self, db: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@/{db}?host={self.sock}&port={self.port}"

    def createdb(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def stop(self) -> None:
        subprocess.run(
            [*self._as, str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop"],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.dir, ignore_errors=True)
