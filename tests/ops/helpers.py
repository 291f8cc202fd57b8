"""Shared helpers of the ops tests: configs in temp dirs, keys, free ports, data scans."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

ROOT = Path(__file__).resolve().parents[2]

# what a stored face image starts with: JPEG SOI + a marker segment (JFIF/Exif/DQT/...),
# the JPEG 2000 file signature box and the bare JPEG 2000 codestream (SOC + SIZ)
IMAGE_MAGIC = {
    "jpeg": [b"\xff\xd8\xff" + bytes([m]) for m in (0xE0, 0xE1, 0xDB, 0xEE, 0xFE, 0xC0)],
    "jp2": [b"\x00\x00\x00\x0cjP  \r\n\x87\n"],
    "j2k": [b"\xff\x4f\xff\x51"],
}


def make_config(tmp: Path, **ops: Any) -> Path:
    cfg = yaml.safe_load((ROOT / "config" / "gate.example.yaml").read_text())
    cfg["storage"] = {"data_dir": str(tmp / "var"), "journal": str(tmp / "var" / "journal.jsonl")}
    # the example names its policy and checkpoints relative to its own folder
    cfg["policy"] = {"file": str(ROOT / "config" / "policy.example.yaml")}
    cfg["ops"]["audit"]["checkpoints"] = str(tmp / "var" / "checkpoints.jsonl")
    if ops:
        cfg["ops"] = ops
    path = tmp / "gate.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def write_signing_key(path: Path) -> Ed25519PrivateKey:
    key = Ed25519PrivateKey.generate()
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return key


def write_public_key(path: Path, key: Ed25519PrivateKey) -> Path:
    path.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return path


def write_aes_key(path: Path) -> bytes:
    key = os.urandom(32)
    path.write_text(key.hex())
    return key


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def has_image_magic(data: bytes) -> bool:
    return any(sig in data for sigs in IMAGE_MAGIC.values() for sig in sigs)


def image_hits(root: Path, extra: tuple[bytes, ...] = ()) -> list[tuple[Path, str]]:
    """Files under ``root`` that hold an image signature or one of ``extra``'s byte strings."""
    hits = []
    for path in root.rglob("*"):
        if not path.is_file():
            continue
        data = path.read_bytes()
        for kind, sigs in IMAGE_MAGIC.items():
            if any(sig in data for sig in sigs):
                hits.append((path, kind))
        for blob in extra:
            if blob in data:
                hits.append((path, "blob"))
    return hits
