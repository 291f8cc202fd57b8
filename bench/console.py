"""Benchmark: one console, a hall of simulated gates publishing at once, latency in the browser.

Real peers: mosquitto (password file + ACL), the console as its own process
(``python -m console.cli console --config ...``, so its CPU and memory are its own),
headless Chromium showing the hall with ``?bench=1``. Every tick all gates publish a
retained status at the same instant (a burst of N messages), walking through a crossing:
DOC_CHECK, ENTRY_OPEN, IN_MANTRAP, EXIT_OPEN, then IDLE with a ``crossing.accepted``;
every 10th traveller is referred instead (referral + two JPEGs), resolved by timeout on
the next cycle. The page records, for every gate card it renders, ``Date.now()`` minus the
status's own ``ts`` (same host clock): event-to-screen latency, publish to painted frame.

    /work/main/.venv/bin/python bench/console.py [--gates 50] [--seconds 20] [--hz 2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey  # noqa: E402

from console.auth import Officers  # noqa: E402
from gate.actions import EventType  # noqa: E402
from gate.reasons import ReasonCode  # noqa: E402
from sim.broker import PASSWORDS, SITE, free_port  # noqa: E402
from tests.console.gatesim import SimGate  # noqa: E402
from tests.console.helpers import DOCUMENT, jpeg  # noqa: E402
from tests.console.live import chrome, gate_user, hall_broker  # noqa: E402

CYCLE = ["DOC_CHECK", "ENTRY_OPEN", "IN_MANTRAP", "EXIT_OPEN", "IDLE"]
TICKS = 1 / 100  # os clock ticks per second is 100 on Linux


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICKS  # utime + stime


def proc_mem_mb(pid: int) -> tuple[float, float]:
    vals = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            vals[key] = int(rest.split()[0]) / 1024
    return vals["VmRSS"], vals["VmHWM"]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--gates", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--hz", type=float, default=2.0, help="status bursts per second")
    args = ap.parse_args()
    gates = [f"g{n:02d}" for n in range(1, args.gates + 1)]
    tmp = Path(tempfile.mkdtemp(prefix="bench-console-"))
    broker = hall_broker(tmp, gates)
    key = tmp / "sign.pem"
    key.write_bytes(
        Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp / "secret").write_text("b" * 48)
    (tmp / "pw").write_text(PASSWORDS["console"])
    Officers(tmp / "officers.json").add("bench", "bench-password-1", "officer")
    port = free_port()
    (tmp / "console.yaml").write_text(
        f"site: {SITE}\ngates: [{', '.join(gates)}]\n"
        f"broker: {{port: {broker.port}, password_file: {tmp / 'pw'}}}\n"
        f"signing: {{key_file: {key}}}\n"
        f"officers_file: {tmp / 'officers.json'}\naudit_file: {tmp / 'audit.jsonl'}\n"
        f"session: {{secret_file: {tmp / 'secret'}, secure_cookie: true}}\n"
        f"listen: {{port: {port}}}\n"
    )
    console = subprocess.Popen(
        [sys.executable, "-m", "console.cli", "console", "--config", str(tmp / "console.yaml")],
        cwd=ROOT,
        stderr=subprocess.DEVNULL,
    )
    sims: list[SimGate] = []
    driver = None
    try:
        sims = [SimGate(SITE, g, broker.port, *gate_user(g)) for g in gates]
        for s in sims:
            s.status("IDLE")
        driver = chrome(tmp / "chrome")
        base = f"http://localhost:{port}"
        for _ in range(100):
            try:
                driver.get(base + "/login")
                break
            except Exception:
                time.sleep(0.1)
        driver.find_element("id", "name").send_keys("bench")
        driver.find_element("id", "password").send_keys("bench-password-1")
        driver.find_element("id", "signin").click()

        def wait_live(bench: bool) -> None:
            deadline = time.monotonic() + 30
            js = (
                "return !!document.body && document.body.dataset.live === '1'"
                " && location.pathname === '/'"
                + (" && location.search === '?bench=1'" if bench else "")
            )
            while not driver.execute_script(js):
                assert time.monotonic() < deadline, "page did not go live"
                time.sleep(0.05)

        wait_live(bench=False)  # signed in: the hall page is up
        driver.get(base + "/?bench=1")
        wait_live(bench=True)
        portrait, frame = jpeg((190, 150, 125)), jpeg((150, 120, 100))

        def tick(i: int) -> int:
            sent = 0
            for n, s in enumerate(sims):
                step = (i + n) % len(CYCLE)
                if CYCLE[step] == "IDLE":
                    if s.txn is not None:  # last traveller was referred: resolved by timeout
                        s.publish(EventType.REFERRAL_RESOLVED, s.txn, resolution="timeout")
                        s.txn = None
                        sent += 1
                    elif ((i + n) // len(CYCLE)) % 10 == 9:
                        s.refer((ReasonCode.FACE_NO_MATCH,), DOCUMENT, portrait, frame, match=0.4)
                        sent += 3
                        continue
                    else:
                        s.cross()
                        sent += 1
                s.status(CYCLE[step])
                sent += 1
            return sent

        # warm-up, then measure
        for i in range(int(args.hz * 3)):
            tick(i)
            time.sleep(1 / args.hz)
        driver.execute_script("window.__lat = []; window.__broker = []")
        cpu0, t0 = proc_cpu_s(console.pid), time.monotonic()
        sent, i = 0, 1000
        next_at = time.monotonic()
        while time.monotonic() - t0 < args.seconds:
            sent += tick(i)
            i += 1
            next_at += 1 / args.hz
            time.sleep(max(0.0, next_at - time.monotonic()))
        time.sleep(1.0)  # let the last burst reach the screen
        wall = time.monotonic() - t0
        cpu = proc_cpu_s(console.pid) - cpu0
        rss, hwm = proc_mem_mb(console.pid)
        lat = driver.execute_script("return window.__lat")
        assert lat, "no latency samples recorded by the page"
        leg = driver.execute_script("return window.__broker")
        expected = int(args.seconds * args.hz) * args.gates
    finally:
        if driver is not None:
            driver.quit()
        for s in sims:
            s.close()
        console.terminate()
        console.wait(10)
        broker.stop()
    print(
        f"{args.gates} gates, a burst of {args.gates} status messages {args.hz:g} times a second "
        f"for {args.seconds:g} s ({sent} messages incl. events and images)\n"
    )
    print("| metric | value |")
    print("| --- | --- |")
    print(f"| status updates seen on screen (of {expected} published) | {len(lat)} |")
    print(f"| event-to-screen latency p50 | {statistics.median(lat):.0f} ms |")
    print(f"| event-to-screen latency p95 | {pct(lat, 0.95):.0f} ms |")
    print(f"| event-to-screen latency max | {max(lat):.0f} ms |")
    print(
        f"| of which gate → broker → console p50 / p95 | "
        f"{statistics.median(leg):.0f} ms / {pct(leg, 0.95):.0f} ms |"
    )
    print(f"| console CPU (one core = 100 %) | {100 * cpu / wall:.1f} % |")
    print(f"| console memory RSS (peak) | {rss:.0f} MB ({hwm:.0f} MB) |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
