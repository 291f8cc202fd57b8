"""A real Mosquitto for tests and the simulator: own config, password file, ACL, persistence, TLS.

Certificates are generated at test time with ``cryptography`` (a CA, the broker's server
certificate for 127.0.0.1, and one client certificate per account, CN = the account), so
nothing secret is in the repo. The broker listens on two free loopback ports: ``tls_port``
(TLS, client certificate required; the account is the certificate's CN,
``use_identity_as_username``, and no password is asked) and ``port`` (plain,
username/password, for test tools on this machine only), both under the same ACL (the
layout of ``config/mosquitto/acl``). Like the shipped ``config/mosquitto/mosquitto.conf``
it sets ``use_username_as_clientid``: a client's id is its account name, so one account
cannot take over another's session (and two processes must not share one account).
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from sim.procs import stop_process

MOSQUITTO = os.environ.get("MOSQUITTO", "/usr/sbin/mosquitto")
SITE = "kul1"
GATES = ("g01", "g02")
PASSWORDS = {
    "gate-kul1-g01": "pw-g01",
    "gate-kul1-g02": "pw-g02",
    "console": "pw-console",
    "monitor": "pw-monitor",
    "monitor2": "pw-monitor2",  # a second recorder: one account is one connection
    "ingest": "pw-ingest",  # the central record (autogate ingest): reads events only
    # one account per ingest worker (``ingest-{index}``): a client id is its account here
    **{f"ingest-{i}": "pw-ingest" for i in range(4)},
}
INGEST_ACCOUNTS = tuple(f"ingest-{i}" for i in range(4))
# as config/mosquitto/mosquitto.conf (tests/mqtt/test_broker_conf.py attacks both): no
# packet over 2 MiB (a sealed referral image is under 1.4 MB), TLS 1.2+ with AEAD suites
MAX_PACKET = 2 * 1024 * 1024
TLS_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def acl_text(site: str, gates: tuple[str, ...], *, bridge_state: str | None = None) -> str:
    """Gate role: publish only its own status/events/acks, read only its own commands.

    Console role: publish commands to any gate, read status, events and acks (never the
    command topics: their ids are for the gate), and delete a retained referral image (an
    empty retained publish: nothing may rest there). Monitor: read only.
    """
    blocks = []
    for g in gates:
        base = f"autogate/v1/{site}/{g}"
        blocks.append(
            f"user gate-{site}-{g}\n"
            f"topic write {base}/status\n"
            f"topic write {base}/event/#\n"
            f"topic write {base}/cmd-ack\n"
            f"topic write {base}/audit/checkpoint\n"
            f"topic read {base}/cmd/#\n"
        )
    blocks.append(
        "user console\ntopic write autogate/v1/+/+/cmd/#\n"
        "topic write autogate/v1/+/+/event/referral-image\n"
        "topic read autogate/v1/+/+/status\ntopic read autogate/v1/+/+/event/#\n"
        "topic read autogate/v1/+/+/cmd-ack\n"
    )
    # the monitor may also read a bridge's state notices (sim/bridge.py), if there is one
    sys_read = f"topic read $SYS/broker/connection/{bridge_state}/state\n" if bridge_state else ""
    blocks.append(f"user monitor\ntopic read autogate/v1/#\n{sys_read}")
    blocks.append("user monitor2\ntopic read autogate/v1/#\n")
    blocks += [f"user {u}\ntopic read autogate/v1/+/+/event/#\n" for u in INGEST_ACCOUNTS]
    return "\n".join(blocks)


# --- certificates ---------------------------------------------------------------------


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name | None,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool = False,
    server: bool = False,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer or name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    else:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if server:
        import ipaddress

        builder = builder.add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass(frozen=True)
class Certs:
    ca: Path
    server_cert: Path
    server_key: Path
    clients: dict[str, tuple[Path, Path]]  # name -> (cert, key)


def make_certs(directory: Path, clients: list[str]) -> Certs:
    """A CA, the broker's certificate and one client certificate per account in
    ``clients``, CN = the account: on the TLS listener the CN is the account."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_key = _key()
    ca = _cert("autogate test CA", ca_key, None, ca_key, ca=True)
    (directory / "ca.pem").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    srv_key = _key()
    srv = _cert("127.0.0.1", srv_key, ca.subject, ca_key, server=True)
    (directory / "server.pem").write_bytes(srv.public_bytes(serialization.Encoding.PEM))
    _write_key(srv_key, directory / "server.key")
    out: dict[str, tuple[Path, Path]] = {}
    for name in clients:
        k = _key()
        c = _cert(name, k, ca.subject, ca_key)
        (directory / f"{name}.pem").write_bytes(c.public_bytes(serialization.Encoding.PEM))
        _write_key(k, directory / f"{name}.key")
        out[name] = (directory / f"{name}.pem", directory / f"{name}.key")
    return Certs(directory / "ca.pem", directory / "server.pem", directory / "server.key", out)


# --- the broker -----------------------------------------------------------------------


@dataclass
class Broker:
    """One mosquitto process; ``kill()`` SIGKILLs it, ``start()`` brings it back on the same ports."""

    directory: Path
    certs: Certs
    port: int = field(default_factory=free_port)
    tls_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    gates: tuple[str, ...] = GATES  # gate ids of ``site`` with their own login and ACL block
    site: str = SITE
    acl: str | None = None  # the whole ACL instead of the site's (the centre's, sim/bridge.py)
    users: dict[str, str] = field(default_factory=dict)  # more accounts (bridges)
    extra_conf: str = ""  # appended to mosquitto.conf (a bridge's ``connection`` block)
    plain: bool = True  # False: the TLS listener only (the centre: every client on TLS)

    def __post_init__(self) -> None:
        d = self.directory
        d.mkdir(parents=True, exist_ok=True)
        passwd = d / "passwd"
        gates = {f"gate-{self.site}-{g}": f"pw-{g}" for g in self.gates}
        self.passwords = dict(PASSWORDS) | gates | self.users
        # one call for every account (mosquitto_passwd -U hashes a plain file in place):
        # a broker of 30 accounts starts in a moment, not in 30 process spawns
        passwd.write_text("".join(f"{u}:{pw}\n" for u, pw in self.passwords.items()))
        subprocess.run(["mosquitto_passwd", "-U", str(passwd)], check=True, capture_output=True)
        (d / "acl").write_text(
            self.acl if self.acl is not None else acl_text(self.site, self.gates)
        )
        root = "user root\n" if os.getuid() == 0 else ""
        (d / "mosquitto.conf").write_text(
            f"{root}"
            "per_listener_settings false\n"
            "allow_anonymous false\n"
            f"password_file {passwd}\n"
            f"acl_file {d / 'acl'}\n"
            "persistence true\n"
            f"persistence_location {d}/\n"
            "autosave_interval 1\n"
            "max_inflight_messages 0\n"
            "max_queued_messages 100000\n"
            f"max_packet_size {MAX_PACKET}\n"
            "log_dest stderr\n"
            "log_type error\n"
            "log_type warning\n"
            # a client's id is its account: nobody can take over another's session (a
            # listener option: after each listener line)
            + (
                f"listener {self.port} 127.0.0.1\nuse_username_as_clientid true\n"
                if self.plain
                else ""
            )
            + f"listener {self.tls_port} 127.0.0.1\n"
            # the account is the client certificate's CN, whatever username and password
            # come with it: one account's password with another's certificate is the
            # certificate's account (Mosquitto 2.0 skips the password file here)
            "use_identity_as_username true\n"
            "use_username_as_clientid true\n"
            f"cafile {self.certs.ca}\n"
            f"certfile {self.certs.server_cert}\n"
            f"keyfile {self.certs.server_key}\n"
            "require_certificate true\n"
            "tls_version tlsv1.2\n"
            f"ciphers {TLS_CIPHERS}\n"
            f"{self.extra_conf}"
        )

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None
        self.log = open(self.directory / "mosquitto.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [MOSQUITTO, "-c", str(self.directory / "mosquitto.conf")],
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"mosquitto exited: {(self.directory / 'mosquitto.log').read_text()}"
                )
            try:
                port = self.port if self.plain else self.tls_port
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("mosquitto did not start listening")

    def kill(self) -> None:
        """SIGKILL: no clean shutdown, no final save of the persistence file."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(5)
        self.log.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            stop_process(self.proc, 5)
            self.log.close()

    def wait_saved(self, timeout: float = 5.0) -> None:
        """Wait for the persistence file (autosave every second) so sessions survive a kill."""
        db = self.directory / "mosquitto.db"
        start = db.stat().st_mtime if db.exists() else 0.0
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if db.exists() and db.stat().st_mtime > start:
                return
            time.sleep(0.05)
        raise RuntimeError("mosquitto did not save its persistence file")
