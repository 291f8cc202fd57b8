"""Each rig's own pcscd: two at once, each client sees only its own readers and cards."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from sim.pcscd import READER, PrivatePcscd, problems

LIST_AND_READ = """
import sys
from drivers.chip import PcscTransport, list_readers
print(sorted(list_readers()))
if len(sys.argv) > 1:
    tr = PcscTransport(sys.argv[1])
    tr.connect(5.0)
    print("card")
    tr.close()
"""


def _client(pcscd: PrivatePcscd, *args: str) -> list[str]:
    res = subprocess.run(
        [sys.executable, "-c", LIST_AND_READ, *args],
        env=pcscd.client_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return [res.stdout.strip(), res.stderr.strip()[-300:]]


def test_this_machine_can_run_a_private_pcscd() -> None:
    """Inside the test command a missing pcscd, vpcd or root fails, never skips."""
    assert problems() is None, problems()


def test_two_private_pcscds_side_by_side() -> None:
    from sim.chip import VirtualChip, VpcdCard

    with PrivatePcscd() as a, PrivatePcscd() as b:
        assert a.port != b.port and a.socket_path != b.socket_path
        for pcscd in (a, b):
            out, err = _client(pcscd)
            assert out == str(["Virtual PCD 00 00", "Virtual PCD 00 01"]), err
        # a card in a's reader is seen through a and not through b
        chip = VirtualChip()
        with VpcdCard(chip, port=a.port) as card:
            assert card.connected.wait(5)
            out, err = _client(a, READER)
            assert out.endswith("card"), err
            out, err = _client(b, READER)
            assert not out.endswith("card")
        folders = (a.folder, b.folder)
    time.sleep(0.1)
    assert not any(f.exists() for f in folders)  # each removed its own folder


def test_a_socket_left_by_a_dead_pcscd_is_stale_and_cleared(tmp_path: Path) -> None:
    import socket

    from sim.pcscd import clear_stale, stale_socket

    run = tmp_path / "run"
    run.mkdir()
    sock_path, pid = run / "pcscd.comm", run / "pcscd.pid"
    live = socket.socket(socket.AF_UNIX)
    live.bind(str(sock_path))
    live.listen()
    assert not stale_socket(sock_path) and clear_stale(sock_path) is None  # served: kept
    live.close()  # the server died; its file stays, as pcscd's does
    pid.write_text("12345\n")
    assert sock_path.exists() and stale_socket(sock_path)
    assert "stale" in (clear_stale(sock_path) or "")
    assert not sock_path.exists() and not pid.exists()
    assert not stale_socket(run / "absent.comm")


FRESH_MACHINE = """
import sys
from pathlib import Path
from sim.pcscd import PrivatePcscd
assert not Path("/run/pcscd").exists()
with PrivatePcscd() as p:
    print("started", p.socket_path.exists())
"""


def test_a_machine_where_pcscd_never_ran_has_no_run_pcscd_and_still_starts_one() -> None:
    """A fresh machine (a container, pcscd installed but never started) has no /run/pcscd to
    bind over: the private pcscd makes the mount point itself. Played in a mount namespace
    of its own whose /run is an empty tmpfs, so the host's /run is not touched."""
    script = f"mount -t tmpfs tmpfs /run && exec \"{sys.executable}\" -c '{FRESH_MACHINE}'"
    res = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=Path(__file__).parents[2],
    )
    assert res.stdout.strip() == "started True", res.stderr[-600:]
