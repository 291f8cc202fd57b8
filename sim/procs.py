"""Stopping the services a rig starts (Mosquitto, pcscd, the console, ingest workers)."""

from __future__ import annotations

import subprocess


def stop_process(
    proc: subprocess.Popen[bytes] | subprocess.Popen[str] | None, grace_s: float = 10
) -> None:
    """SIGTERM, then SIGKILL after ``grace_s``: a service that ignores the polite request
    must not keep a port or a socket from the next rig."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
