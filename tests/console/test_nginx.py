"""Issue 17 item 11: the shipped nginx example in front of the console, tested as shipped.

nginx (Debian package, installed by ./run) runs deploy/nginx/autogate-console.conf with
only its ports, certificate paths and upstream rewritten; the console runs as its own
process behind it, trusting X-Forwarded-For from 127.0.0.1 only.
"""

from __future__ import annotations

import re
import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gate.journal import iter_records
from sim.broker import free_port, make_certs
from tests.console.proc import OFFICERS, ROOT, ConsoleProcess, login

SHIPPED = ROOT / "deploy" / "nginx" / "autogate-console.conf"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


class Proxy:
    def __init__(self, tmp: Path, upstream: int) -> None:
        if not Path(NGINX).exists():
            raise RuntimeError("nginx is missing: ./run setup installs it (Debian package nginx)")
        certs = make_certs(tmp / "certs", [])
        self.ca, self.http, self.https = certs.ca, free_port(), free_port()
        while self.https == self.http:
            self.https = free_port()
        site = SHIPPED.read_text()
        site = re.sub(r"listen 80;", f"listen 127.0.0.1:{self.http};", site)
        site = re.sub(r"listen 443 ssl http2;", f"listen 127.0.0.1:{self.https} ssl http2;", site)
        site = re.sub(r"\n\s*listen \[::\]:\d+[^\n]*", "", site)
        site = site.replace("/etc/autogate/pki/console-web.pem", str(certs.server_cert))
        site = site.replace("/etc/autogate/pki/console-web.key", str(certs.server_key))
        site = site.replace("http://127.0.0.1:8080", f"http://127.0.0.1:{upstream}")
        site = site.replace("return 301 https://$host$request_uri;",
                            f"return 301 https://$host:{self.https}$request_uri;")  # fmt: skip
        (tmp / "site.conf").write_text(site)
        (tmp / "nginx.conf").write_text(
            "user root;\nworker_processes 1;\ndaemon off;\n"
            f"pid {tmp}/nginx.pid;\nerror_log {tmp}/error.log;\n"
            "events { worker_connections 64; }\n"
            "http {\n  access_log off;\n"
            + "".join(
                f"  {k}_temp_path {tmp}/{k};\n"
                for k in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
            )
            + f"  include {tmp}/site.conf;\n}}\n"
        )
        self.proc = subprocess.Popen([NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf")])
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.https), timeout=0.2):
                    return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError((tmp / "error.log").read_text()) from None
                time.sleep(0.05)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


@pytest.fixture()
def site(tmp_path: Path) -> Iterator[tuple[ConsoleProcess, Proxy]]:
    console = ConsoleProcess(
        tmp_path / "console",
        listen={"trusted_proxies": ["127.0.0.1/32"]},
        session={"secure_cookie": True},
    )
    proxy = Proxy(tmp_path / "nginx", console.port)
    yield console, proxy
    proxy.stop()
    console.stop()


def test_console_through_the_shipped_nginx(site: tuple[ConsoleProcess, Proxy]) -> None:
    console, proxy = site
    base = f"https://localhost:{proxy.https}"
    tls = ssl.create_default_context(cafile=str(proxy.ca))
    with httpx.Client(base_url=base, verify=tls, timeout=30) as c:
        r = c.get("/login")
        assert r.status_code == 200
        hsts = r.headers["strict-transport-security"]
        assert int(re.search(r"max-age=(\d+)", hsts).group(1)) >= 31536000  # type: ignore[union-attr]
        assert "includeSubDomains" in hsts
        # a client plants an address; the proxy replaces it with the one it saw
        planted = {"X-Forwarded-For": "203.0.113.7"}
        assert login(c, "alice", "wrong-password-1", headers=planted).status_code == 401
        r = login(c, "alice", OFFICERS["alice"][1], headers=planted)
        assert r.status_code == 200 and "secure" in r.headers["set-cookie"].lower()
        with c.stream("GET", "/api/stream") as s:  # the live view flows through unbuffered
            first = next(s.iter_lines())
            assert first.startswith("retry:")
    clients = {r["data"]["client"] for r in iter_records(console.audit) if "client" in r["data"]}
    assert clients == {"127.0.0.1"}
    plain = httpx.get(f"http://127.0.0.1:{proxy.http}/login", follow_redirects=False)
    assert plain.status_code == 301 and plain.headers["location"].startswith("https://")
