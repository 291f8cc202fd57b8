"""A pcscd of one's own: each rig (and each test session) gets a private reader stack.

The system pcscd and vpcd's fixed TCP port 35963 are one per machine: two rigs, or a
rig and any other vpcd card emulator, would insert cards into each other's reader.
Debian 12's pcscd (pcsc-lite 1.9.9) takes its reader list from ``-c DIR`` but always
binds ``/run/pcscd/pcscd.comm``; so, as root, it runs in a private mount namespace with
the rig's own folder bound over ``/run/pcscd`` (measured, ../shared/NOTES.md):

    unshare --mount --propagation private sh -c \
        'mkdir -p /run/pcscd && mount --bind RIG/run /run/pcscd && exec pcscd -f -c RIG/conf'

Its socket then appears on the host at ``RIG/run/pcscd.comm``; a client process set up
with ``PCSCLITE_CSOCK_NAME`` there (``client_env``) sees only this pcscd's two vpcd
slots, whose card emulators connect to ``port`` and ``port + 1``. The system's
``/run/pcscd`` is never touched. The PC/SC client library reads that variable once per
process, so one process talks to one pcscd: the daemon is its own process.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from sim.procs import stop_process

READER = "Virtual PCD 00 00"  # slot 0 of the private vpcd: cards connect to ``port``
VPCD_LIB = "/usr/lib/pcsc/drivers/serial/libifdvpcd.so"
PCSCD = "/usr/sbin/pcscd"

HOW_TO_FIX = (
    "the virtual chip needs pcscd and vsmartcard-vpcd (`./run setup` installs them: "
    "apt-get install pcscd vsmartcard-vpcd) and root for `unshare --mount`"
)


SYSTEM_SOCKET = Path("/run/pcscd/pcscd.comm")


def stale_socket(path: Path) -> bool:
    """True when ``path`` is a socket file nobody serves: a pcscd died and left it (clients
    would trust it and fail later, with nothing pointing at the cause)."""
    if not path.is_socket():
        return False
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(1.0)
        try:
            s.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            return True
        except OSError:
            return False  # busy or not ours to judge: leave it
    return False


def clear_stale(path: Path = SYSTEM_SOCKET) -> str | None:
    """Remove a stale pcscd socket and its pid file; say what was done, or None."""
    if not stale_socket(path):
        return None
    for leftover in (path, path.with_name("pcscd.pid")):
        leftover.unlink(missing_ok=True)
    return f"{path} was stale (no pcscd answers on it): removed it and pcscd.pid"


class PcscdError(RuntimeError):
    """The private reader stack could not start; the message says what to do."""


def _free_port_pair() -> int:
    """A TCP port p with p and p + 1 free on loopback (vpcd listens on both)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port >= 65535:
            continue
        with socket.socket() as s1, socket.socket() as s2:
            try:
                s1.bind(("127.0.0.1", port))
                s2.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise PcscdError("no two adjacent free TCP ports for vpcd")


def listening(port: int) -> bool:
    """True when something listens on TCP ``port`` (read from /proc: connecting would
    look like a card being inserted to vpcd)."""
    want = f":{port:04X}"
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if len(cols) > 3 and cols[1].endswith(want) and cols[3] == "0A":
                    return True
    return False


def problems() -> str | None:
    """Why a private pcscd cannot run here, or None."""
    missing = [p for p in (PCSCD, VPCD_LIB) if not Path(p).exists()]
    if missing:
        return f"{', '.join(missing)} missing: {HOW_TO_FIX}"
    if shutil.which("unshare") is None:
        return f"unshare (util-linux) missing: {HOW_TO_FIX}"
    if os.geteuid() != 0:
        return f"not root: {HOW_TO_FIX}"
    return None


class PrivatePcscd:
    """One pcscd with one vpcd (two slots) in a folder of its own, removed by ``stop``.

    The folder is a short one under /tmp: a socket path must fit in 108 bytes."""

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="autogate-pcscd-"))
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def socket_path(self) -> Path:
        return self.folder / "run" / "pcscd.comm"

    def client_env(self, env: dict[str, str] | None = None) -> dict[str, str]:
        """Environment for a process that must see this pcscd (and no other)."""
        return dict(os.environ if env is None else env, PCSCLITE_CSOCK_NAME=str(self.socket_path))

    def start(self, timeout: float = 10.0) -> PrivatePcscd:
        why = problems()
        if why:
            raise PcscdError(why)
        self.port = _free_port_pair()
        conf, run = self.folder / "conf", self.folder / "run"
        for d in (conf, run):
            d.mkdir(parents=True, exist_ok=True)
        (conf / "vpcd").write_text(
            'FRIENDLYNAME "Virtual PCD"\n'
            f"DEVICENAME   /dev/null:0x{self.port:04X}\n"
            f"LIBPATH      {VPCD_LIB}\n"
            f"CHANNELID    0x{self.port:04X}\n"
        )
        log = open(self.folder / "pcscd.log", "ab")  # noqa: SIM115 - owned by the process
        # /run/pcscd exists only once a system pcscd has run (a fresh container has none):
        # make the mount point; the system's pcscd would make the same folder
        script = (
            f'mkdir -p /run/pcscd && mount --bind "{run}" /run/pcscd && exec {PCSCD} -f -c "{conf}"'
        )
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = (self.folder / "pcscd.log").read_text(errors="replace")[-400:]
                raise PcscdError(f"private pcscd exited ({self.proc.returncode}): {tail}")
            if self.socket_path.exists() and listening(self.port):
                return self
            time.sleep(0.05)
        self.stop()
        raise PcscdError(
            f"private pcscd: no socket {self.socket_path} or vpcd on TCP {self.port} "
            f"after {timeout:.0f} s (log {self.folder / 'pcscd.log'}); {HOW_TO_FIX}"
        )

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PrivatePcscd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


if __name__ == "__main__":  # ``./run`` setup: python -m sim.pcscd --clear-stale
    import sys

    if sys.argv[1:] == ["--clear-stale"]:
        said = clear_stale()
        if said:
            print(f"run: {said}", file=sys.stderr)
        sys.exit(0)
    sys.exit("usage: python -m sim.pcscd --clear-stale")
