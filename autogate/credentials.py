"""Keys from systemd credentials (``LoadCredential=``) or plain files, with clear errors.

systemd copies each credential into a private, read-only directory it names in
``$CREDENTIALS_DIRECTORY``; the unit never sees the key's original path and the key
never sits in the environment. Outside systemd (tests, a developer's shell) a config
value that is a path is read as a file.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import os
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_private_key, load_pem_public_key


class CredentialError(Exception):
    """A key the config names but that is absent or unusable: the gate must not start."""


def locate(name: str) -> Path:
    """A credential's file: ``$CREDENTIALS_DIRECTORY/name`` first, else ``name`` as a path."""
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and "/" not in name:
        candidate = Path(creds) / name
        if candidate.exists():
            return candidate
    path = Path(name)
    if path.exists():
        return path
    where = f" (not in $CREDENTIALS_DIRECTORY={creds})" if creds else ""
    raise CredentialError(
        f"credential {name!r} not found{where}: set LoadCredential={name}:<file> in the unit"
    )


def read(name: str) -> bytes:
    path = locate(name)
    try:
        return path.read_bytes()
    except OSError as exc:
        raise CredentialError(f"credential {name!r}: cannot read {path}: {exc.strerror}") from None


def signing_key(name: str) -> Ed25519PrivateKey:
    """The Ed25519 key that signs journal checkpoints (PEM, PKCS#8)."""
    try:
        key = load_pem_private_key(read(name), password=None)
    except (ValueError, TypeError) as exc:
        raise CredentialError(f"credential {name!r}: not a PEM private key ({exc})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise CredentialError(f"credential {name!r}: not an Ed25519 key")
    return key


def public_key(path: str | Path) -> Ed25519PublicKey:
    """A checkpoint verification key: PEM public key, or the private key's PEM."""
    data = Path(path).read_bytes()
    try:
        key = load_pem_public_key(data)
    except ValueError:
        try:
            key = load_pem_private_key(data, password=None).public_key()
        except (ValueError, TypeError) as exc:
            raise CredentialError(f"{path}: not a PEM Ed25519 key ({exc})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise CredentialError(f"{path}: not an Ed25519 key")
    return key


def aes_key(name: str) -> bytes:
    """A 256-bit AES key given raw (32 bytes), as hex (64 chars) or as base64."""
    data = read(name)
    if len(data) == 32:
        return data
    text = data.strip().decode("ascii", errors="replace")
    candidates = []
    with contextlib.suppress(ValueError):
        candidates.append(bytes.fromhex(text))
    with contextlib.suppress(ValueError, binascii.Error):
        candidates.append(base64.b64decode(text, validate=True))
    for key in candidates:
        if len(key) == 32:
            return key
    raise CredentialError(
        f"credential {name!r}: need a 32-byte AES-256 key (raw, hex or base64), "
        f"got {len(data)} bytes"
    )
