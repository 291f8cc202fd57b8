"""A deterministic EAC test PKI for the virtual chip and the tests: two CVCA generations
joined by a link certificate, a domestic DV, a valid and an expired inspection-system
certificate, and the terminal's key.

Keys are derived from fixed labels (``ec.derive_private_key``), so the same certificates'
keys and bodies come out on every run; ECDSA signatures are randomised by OpenSSL, which
changes nothing a test checks. ``python -m sim.eac_pki DIR`` writes the trust folder
the gate's configuration points at: ``DIR/<issuing state>/*.cvcert`` and ``terminal.pem``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import random
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from drivers.icao import cvc

STATE = "UTO"  # the issuing state of the virtual chip's Holder
OID = cvc.ID_TA_ECDSA + ".3"  # id-TA-ECDSA-SHA-256
OID_RSA = cvc.ID_TA_RSA + ".2"  # id-TA-RSA-v1-5-SHA-256
CURVE = ec.BrainpoolP256R1()
RIGHTS = cvc.READ_DG3 | cvc.READ_DG4


def key(label: str) -> ec.EllipticCurvePrivateKey:
    """A private key fixed by ``label``."""
    n = 0xA9FB57DBA1EEA9BC3E660A909D838D718C397AA3B561A6F7901E0E82974856A7
    d = int.from_bytes(hashlib.sha256(b"autogate eac " + label.encode()).digest(), "big")
    return ec.derive_private_key(d % (n - 1) + 1, CURVE)


@dataclass(frozen=True)
class EACPKI:
    cvca_old: cvc.CVC  # self-signed, the key older chips trust
    cvca: cvc.CVC  # self-signed, the current generation
    link: cvc.CVC  # the current CVCA key signed by the old one
    dv: cvc.CVC
    is_cert: cvc.CVC
    is_expired: cvc.CVC
    terminal_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    def certificates(self) -> dict[str, cvc.CVC]:
        return {
            "cvca_old": self.cvca_old,
            "cvca": self.cvca,
            "link": self.link,
            "dv": self.dv,
            "is": self.is_cert,
            "is_expired": self.is_expired,
        }


def issue(
    signer: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    car: str,
    holder: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey,
    chr_: str,
    role: int,
    start: dt.date,
    end: dt.date,
    rights: int = RIGHTS,
) -> cvc.CVC:
    oid = OID if isinstance(holder, ec.EllipticCurvePrivateKey) else OID_RSA
    pub = cvc.public_key_of(holder, oid, with_domain=role == cvc.ROLE_CVCA)
    body = cvc.build_body(car, chr_, pub, role, rights, start, end)
    return cvc.assemble(body, cvc.sign(signer, oid, body))


def rsa_key(label: str, bits: int = 2048) -> rsa.RSAPrivateKey:
    """An RSA key fixed by ``label``: primes from a seeded generator (Miller-Rabin)."""
    rng = random.Random(hashlib.sha256(b"autogate eac rsa " + label.encode()).digest())

    def probable_prime(n: int) -> bool:
        if n % 2 == 0 or any(n % p == 0 for p in _SMALL_PRIMES):
            return False
        d, r = n - 1, 0
        while d % 2 == 0:
            d, r = d // 2, r + 1
        for _ in range(40):
            x = pow(rng.randrange(2, n - 2), d, n)
            if x in (1, n - 1):
                continue
            for _ in range(r - 1):
                x = pow(x, 2, n)
                if x == n - 1:
                    break
            else:
                return False
        return True

    def prime() -> int:
        while True:
            c = rng.getrandbits(bits // 2) | (3 << (bits // 2 - 2)) | 1
            if probable_prime(c) and math.gcd(65537, c - 1) == 1:
                return c

    p, q = prime(), prime()
    d = pow(65537, -1, (p - 1) * (q - 1))
    pub = rsa.RSAPublicNumbers(65537, p * q)
    nums = rsa.RSAPrivateNumbers(
        p, q, d, d % (p - 1), d % (q - 1), pow(q, -1, p), pub
    )  # fmt: skip
    return nums.private_key()


_SMALL_PRIMES = [p for p in range(3, 2000) if all(p % k for k in range(2, int(p**0.5) + 1))]


@lru_cache(maxsize=2)
def make(kind: str = "ecdsa") -> EACPKI:
    """The test PKI; ``kind`` "rsa": the same chain with RSA keys (id-TA-RSA-v1-5-SHA-256)."""
    if kind == "rsa":
        old, new, dv, term = (rsa_key(n) for n in ("cvca 1", "cvca 2", "dv", "is"))
    else:
        old, new, dv, term = key("cvca 1"), key("cvca 2"), key("dv"), key("is")  # type: ignore[assignment]
    c1, c2, d, i = "UTCVCA00001", "UTCVCA00002", "UTDVGATE00001", "UTISGATE00001"
    y = dt.date
    return EACPKI(
        cvca_old=issue(old, c1, old, c1, cvc.ROLE_CVCA, y(2022, 1, 1), y(2034, 12, 31)),
        cvca=issue(new, c2, new, c2, cvc.ROLE_CVCA, y(2025, 1, 1), y(2037, 12, 31)),
        link=issue(old, c1, new, c2, cvc.ROLE_CVCA, y(2025, 1, 1), y(2037, 12, 31)),
        dv=issue(new, c2, dv, d, cvc.ROLE_DV_DOMESTIC, y(2026, 1, 1), y(2036, 12, 31)),
        is_cert=issue(dv, d, term, i, cvc.ROLE_IS, y(2026, 1, 1), y(2035, 12, 31)),
        is_expired=issue(dv, d, term, "UTISGATE00000", cvc.ROLE_IS, y(2025, 6, 1), y(2025, 12, 31)),
        terminal_key=term,
    )


def write_trust(
    folder: Path, pki: EACPKI | None = None, *, expired: bool = False, kind: str = "ecdsa"
) -> Path:
    """The gate's EAC trust folder for the test state; ``expired``: the IS certificate
    configured is the expired one."""
    pki = pki or make(kind)
    d = folder / STATE
    d.mkdir(parents=True, exist_ok=True)
    certs = pki.certificates()
    keep = "is" if not expired else "is_expired"
    for name, cert in certs.items():
        if name in ("is", "is_expired") and name != keep:
            continue
        (d / f"{name}.cvcert").write_bytes(cert.raw)
    pem = pki.terminal_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (d / "terminal.pem").write_bytes(pem)
    return folder


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m sim.eac_pki DIR", file=sys.stderr)
        return 2
    print(write_trust(Path(args[0])))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
