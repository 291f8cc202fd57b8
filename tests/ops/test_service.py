"""The daemon as systemd runs it: READY, STATUS and WATCHDOG on $NOTIFY_SOCKET; bad starts."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from autogate.notify import Notifier, Watchdog
from tests.ops.helpers import ROOT, free_port, make_config, write_signing_key


@pytest.fixture
def notify_socket() -> Iterator[tuple[socket.socket, str]]:
    """A unix datagram socket bound where systemd's would be (short path: 108-byte limit)."""
    d = tempfile.mkdtemp(prefix="ag-", dir="/tmp")
    path = os.path.join(d, "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    try:
        yield sock, path
    finally:
        sock.close()
        shutil.rmtree(d, ignore_errors=True)


def receive(sock: socket.socket, seconds: float) -> list[str]:
    """Every message that arrives within ``seconds``."""
    out: list[str] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            out.append(sock.recv(4096).decode())
        except TimeoutError:
            continue
    return out


def wait_for(sock: socket.socket, needle: str, seconds: float) -> list[str]:
    seen: list[str] = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            msg = sock.recv(4096).decode()
        except TimeoutError:
            continue
        seen.append(msg)
        if needle in msg:
            return seen
    raise AssertionError(f"no {needle!r} within {seconds}s; got {seen}")


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=os.environ | env,
    )


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(10)


def test_ready_status_and_watchdog_then_silence_when_the_core_hangs(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    cfg = make_config(tmp_path)
    trigger = tmp_path / "hang-now"
    proc = start(
        ["-m", "tests.ops.stuck_core", str(trigger), "run", "--config", str(cfg)],
        # WATCHDOG_PID is left out: the helper's pid is only known once it runs
        {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"},
    )
    try:
        ready = wait_for(sock, "READY=1", 30)[-1]
        assert "STATUS=IDLE" in ready
        pings = [m for m in receive(sock, 1.2) if m == "WATCHDOG=1"]
        assert len(pings) >= 3  # every 0.2 s (half of WatchdogSec=0.4 s)
        trigger.touch()  # the next core step blocks forever
        receive(sock, 0.5)  # pings queued before the hang, and the step in flight
        late = [m for m in receive(sock, 1.5) if m == "WATCHDOG=1"]
        assert late == [], "watchdog pings went on while the core loop was stuck"
        assert proc.poll() is None  # hung, not dead: only systemd's watchdog can tell
    finally:
        stop(proc)


def test_sigterm_sends_stopping_and_exits_cleanly(
    tmp_path: Path, notify_socket: tuple[socket.socket, str]
) -> None:
    sock, path = notify_socket
    cfg = make_config(tmp_path)
    proc = start(["-m", "autogate.cli", "run", "--config", str(cfg)], {"NOTIFY_SOCKET": path})
    try:
        seen = wait_for(sock, "READY=1", 30)
        ready = next(m for m in seen if "READY=1" in m)
        assert f"MAINPID={proc.pid}" in ready and "STATUS=IDLE" in ready
        proc.send_signal(signal.SIGTERM)
        wait_for(sock, "STOPPING=1", 10)
        assert proc.wait(20) == 0
    finally:
        stop(proc)


def test_watchdog_stops_pinging_when_the_core_loop_is_stale_but_the_event_loop_runs(
    notify_socket: tuple[socket.socket, str],
) -> None:
    """A core loop hung on an await leaves ``alive_at`` stale while asyncio still runs."""
    sock, path = notify_socket
    notifier = Notifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "2000000"})
    alive = [100.0]
    changes: list[bool] = []
    wd = Watchdog(notifier, lambda: alive[0], stale_s=5.0, on_change=changes.append)
    assert wd.stale_s == 2.0 and wd.period == 1.0  # never staler than WatchdogSec
    assert wd.check(now=101.0)
    assert receive(sock, 0.3) == ["WATCHDOG=1"]
    assert not wd.check(now=102.5)
    msgs = receive(sock, 0.3)
    assert msgs == ["STATUS=core loop stuck for 2.5 s"]
    alive[0] = 103.0
    assert wd.check(now=103.1)
    assert receive(sock, 0.3) == ["WATCHDOG=1"]
    assert changes == [True, False, True]


def test_no_pings_for_another_process() -> None:
    """systemd names the process it watches; a child that inherited the env stays quiet."""
    env = {"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}
    assert Notifier(env).watchdog_s is None
    assert Notifier({"WATCHDOG_USEC": "1000000"}).enabled is False


def run_cli(cfg: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autogate.cli", "run", "--config", str(cfg)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ | (env or {}),
        timeout=60,
    )


def test_missing_signing_credential_stops_before_any_device(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    cfg = make_config(tmp_path, audit={"signing_key": "audit-signing-key"})
    res = run_cli(cfg, {"CREDENTIALS_DIRECTORY": str(creds)})
    assert res.returncode == 3
    assert "credential 'audit-signing-key' not found" in res.stderr
    assert "LoadCredential=audit-signing-key" in res.stderr
    assert not (tmp_path / "var" / "journal.jsonl").exists()  # the daemon never started


def test_unusable_referral_key_stops_the_start(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "referral-key").write_text("too short")
    write_signing_key(creds / "audit-signing-key")
    cfg = make_config(
        tmp_path,
        audit={"signing_key": "audit-signing-key"},
        privacy={"referral_key": "referral-key"},
    )
    res = run_cli(cfg, {"CREDENTIALS_DIRECTORY": str(creds)})
    assert res.returncode == 3 and "need a 32-byte AES-256 key" in res.stderr


def test_metrics_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        cfg = make_config(tmp_path, metrics={"enabled": True, "port": port})
        res = run_cli(cfg)
    assert res.returncode == 3
    assert f"metrics endpoint 127.0.0.1:{port}" in res.stderr and "in use" in res.stderr
    assert not (tmp_path / "var" / "journal.jsonl").exists()


def test_metrics_must_listen_on_loopback(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, metrics={"enabled": True, "host": "0.0.0.0"})
    res = run_cli(cfg)
    assert res.returncode == 2 and "loopback" in res.stderr


@pytest.mark.parametrize(
    "damage",
    ['{"backend": "dlib"', '{"backend": "dlib", "weights": {}, "threshold": -1}'],
    ids=["truncated", "threshold that matches everyone"],
)
def test_a_damaged_model_file_stops_the_start_with_one_line_naming_it(
    tmp_path: Path, damage: str
) -> None:
    """A device that cannot be built (here the face matcher's descriptor) is a start
    that cannot happen: exit 3 and one line naming the file, not a traceback."""
    import yaml

    bad = tmp_path / "face-descriptor.json"
    bad.write_text(damage)
    cfg = make_config(tmp_path)
    data = yaml.safe_load(cfg.read_text())
    data["devices"]["face"] = {"type": "dlib", "descriptor": str(bad)}
    cfg.write_text(yaml.safe_dump(data))
    res = run_cli(cfg)
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 3, res.stderr
    said = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith('{"ts"')]
    assert len(said) == 1 and str(bad) in said[0] and said[0].startswith("autogate: cannot start")


def test_a_device_that_cannot_start_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    """A serial document reader whose port no retry can open (a malformed URL): exit 3
    with one line naming the port. (An absent port is out of service until it appears,
    tests/mrz/test_serial_mrz.py.)"""
    import yaml

    cfg = make_config(tmp_path)
    data = yaml.safe_load(cfg.read_text())
    data["devices"]["scanner"] = {"type": "serial_mrz", "port": "nosuch://mrz-reader"}
    cfg.write_text(yaml.safe_dump(data))
    res = run_cli(cfg)
    assert "Traceback" not in res.stderr, res.stderr
    assert res.returncode == 3, res.stderr
    said = [ln for ln in res.stderr.splitlines() if ln.strip() and not ln.startswith('{"ts"')]
    assert len(said) == 1 and "nosuch://mrz-reader" in said[0], said
