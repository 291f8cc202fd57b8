"""Signed checkpoints catch a journal rewritten from the start; rotation keeps the chain."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from autogate.audit import Checkpointer
from gate import checkpoint
from gate.journal import Journal, journal_files, verify, verify_all

ROOT = Path(__file__).resolve().parents[2]


def write_key(path: Path, key: Ed25519PrivateKey) -> Path:
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    return path


def write_pub(path: Path, key: Ed25519PrivateKey) -> Path:
    path.write_bytes(key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return path


def fill(j: Journal, start: int, n: int, tag: str = "real") -> None:
    for k in range(start, start + n):
        j.append("event", {"n": k, "tag": tag}, f"2026-11-25T10:00:{k % 60:02d}Z")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """``autogate audit verify`` in-process (argparse and all); ``cli_subprocess`` once."""
    import argparse
    import contextlib
    import io

    from autogate.audit import add_verify_arguments, cmd_verify

    parser = argparse.ArgumentParser()
    parser.add_argument("file")
    add_verify_arguments(parser)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cmd_verify(parser.parse_args(list(args)))
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def cli_subprocess(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autogate.cli", "audit", "verify", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def signed(tmp_path: Path, key: Ed25519PrivateKey) -> tuple[Path, Path, Path]:
    """A journal with checkpoints signed at seq 5 and 10, and the public key file."""
    jpath = tmp_path / "journal.jsonl"
    j = Journal(jpath, fsync=False)
    cps = tmp_path / "checkpoints.jsonl"
    signer = Checkpointer(key, cps, "klia", "g1", j.head, clock=lambda: 1_790_000_000.0)
    fill(j, 0, 5)
    assert signer.write() is not None
    assert signer.write() is None  # head did not move: nothing new to sign
    fill(j, 5, 5)
    signer.write()
    j.close()
    return jpath, cps, write_pub(tmp_path / "gate.pub", key)


def test_intact_journal_is_anchored_by_its_checkpoints(signed: tuple[Path, Path, Path]) -> None:
    jpath, cps, pub = signed
    res = cli_subprocess(str(jpath), "--checkpoints", str(cps), "--public-key", str(pub))
    assert res.returncode == 0, res.stdout + res.stderr
    assert "anchored by 2 signed checkpoints" in res.stdout


def test_journal_rewritten_from_the_start_is_detected(
    signed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    jpath, cps, pub = signed
    jpath.unlink()
    forged = Journal(jpath, fsync=False)  # a fresh, self-consistent chain
    fill(forged, 0, 12, tag="forged")
    forged.close()
    assert verify(jpath).ok  # the hash chain alone cannot tell
    res = cli(str(jpath), "--checkpoints", str(cps), "--public-key", str(pub))
    assert res.returncode == 1
    assert "NOT ANCHORED" in res.stdout and "rewritten" in res.stdout


def test_truncated_journal_is_detected(signed: tuple[Path, Path, Path]) -> None:
    jpath, cps, pub = signed
    rows = jpath.read_text().splitlines()[:7]
    jpath.write_text("\n".join(rows) + "\n")
    res = cli(str(jpath), "--checkpoints", str(cps), "--public-key", str(pub))
    assert res.returncode == 1 and "covers seq=10" in res.stdout


def test_forged_checkpoint_signature_fails(signed: tuple[Path, Path, Path], tmp_path: Path) -> None:
    jpath, cps, pub = signed
    rows = [json.loads(r) for r in cps.read_text().splitlines()]
    rows[1]["hash"] = "f" * 64  # the attacker "re-anchors" to their forged head
    cps.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    res = cli(str(jpath), "--checkpoints", str(cps), "--public-key", str(pub))
    assert res.returncode == 1 and "signature does not verify" in res.stdout


def test_checkpoints_signed_by_another_key_fail(
    signed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    jpath, cps, _ = signed
    other = write_pub(tmp_path / "other.pub", Ed25519PrivateKey.generate())
    res = cli(str(jpath), "--checkpoints", str(cps), "--public-key", str(other))
    assert res.returncode == 1 and "signature does not verify" in res.stdout


def test_bad_checkpoint_inputs_are_clear_errors(
    signed: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    jpath, cps, pub = signed
    res = cli(str(jpath), "--checkpoints", str(cps))
    assert res.returncode == 2 and "--public-key" in res.stderr
    garbage = tmp_path / "garbage.jsonl"
    garbage.write_text('{"schema": "something else"}\n')
    res = cli(str(jpath), "--checkpoints", str(garbage), "--public-key", str(pub))
    assert res.returncode == 1 and "line 1: not an audit checkpoint" in res.stdout
    notkey = tmp_path / "notkey.pem"
    notkey.write_text("hello")
    res = cli(str(jpath), "--checkpoints", str(cps), "--public-key", str(notkey))
    assert res.returncode == 2 and "not a PEM Ed25519 key" in res.stderr


def test_check_journal_is_pure_and_reports_signature_first(key: Ed25519PrivateKey) -> None:
    from gate.journal import Head

    cp = checkpoint.sign(key, Head(3, "a" * 64), "s", "g", "2026-11-25T10:00:00Z")
    records = [{"seq": 1, "hash": "x"}, {"seq": 2, "hash": "y"}, {"seq": 3, "hash": "a" * 64}]
    assert checkpoint.check_journal(records, [cp], key.public_key()).ok
    tampered = checkpoint.parse(cp.to_json() | {"seq": 2})
    res = checkpoint.check_journal(records, [tampered], key.public_key())
    assert not res.ok and "signature" in res.problem


def test_rotation_keeps_one_chain_across_files(tmp_path: Path) -> None:
    jpath = tmp_path / "journal.jsonl"
    j = Journal(jpath, fsync=False, rotate_bytes=4096)
    fill(j, 0, 100)
    j.close()
    files = journal_files(jpath)
    assert len(files) > 3 and files[-1] == jpath
    first = json.loads(files[1].read_text().splitlines()[0])
    assert first["seq"] > 1  # a continuation file, chained to its predecessor
    cv = verify_all(jpath)
    assert cv.ok and cv.verdict.records == 100 and cv.verdict.head.seq == 100
    # reopening resumes the chain, also right after a rotation left the live file empty
    j = Journal(jpath, fsync=False, rotate_bytes=4096)
    assert j.head().seq == 100
    fill(j, 100, 1)
    j.close()
    assert verify_all(jpath).verdict.records == 101
    res = cli(str(jpath))
    assert res.returncode == 0 and "101 records in" in res.stdout


def test_rotation_detects_a_removed_middle_file(tmp_path: Path) -> None:
    jpath = tmp_path / "journal.jsonl"
    j = Journal(jpath, fsync=False, rotate_bytes=4096)
    fill(j, 0, 100)
    j.close()
    journal_files(jpath)[1].unlink()
    cv = verify_all(jpath)
    assert not cv.ok and "missing" in cv.verdict.problem
    res = cli(str(jpath))
    assert res.returncode == 1 and "BROKEN" in res.stdout


def test_ops_section_is_optional_and_checked() -> None:
    from gate.config import ConfigError, parse_config

    cfg = parse_config("gate: {site: s, id: g}\n")
    assert cfg.ops.metrics.enabled is False and cfg.ops.audit.signing_key is None
    with pytest.raises(ConfigError, match="ops.audit.rotate_bytes"):
        parse_config("gate: {site: s, id: g}\nops: {audit: {rotate_bytes: 10}}\n")
    with pytest.raises(ConfigError, match="ops.privacy.retentoin_s: unknown key"):
        parse_config("gate: {site: s, id: g}\nops: {privacy: {retentoin_s: 10}}\n")


def started_gate(tmp_path: Path, key: Ed25519PrivateKey, rotate: int | None = None):  # type: ignore[no-untyped-def]
    """A gate config with a signing key, a journal and two checkpoints made as the daemon would."""
    from gate.config import parse_config

    write_key(tmp_path / "signing.pem", key)
    audit = {"signing_key": str(tmp_path / "signing.pem"), "checkpoints": str(tmp_path / "cps")}
    if rotate:
        audit["rotate_bytes"] = rotate
    cfg = parse_config(
        "gate: {site: s, id: g}\n"
        f"storage: {{data_dir: {tmp_path}, journal: {tmp_path}/journal.jsonl}}\n"
        f"ops: {{audit: {json.dumps(audit)}}}\n"
    )
    j = Journal(cfg.storage.journal, fsync=False, rotate_bytes=rotate)
    signer = Checkpointer(key, tmp_path / "cps", "s", "g", j.head)
    fill(j, 0, 60)
    signer.write()
    fill(j, 60, 60)
    signer.write()
    fill(j, 120, 5)  # records after the last checkpoint (a crash before the next one)
    j.close()
    return cfg


@pytest.mark.parametrize("rotate", [None, 4096])
def test_start_accepts_a_journal_that_holds_its_last_checkpoint(
    tmp_path: Path, key: Ed25519PrivateKey, rotate: int | None
) -> None:
    from autogate.ops import Ops

    cfg = started_gate(tmp_path, key, rotate)
    assert (len(journal_files(cfg.storage.journal)) > 1) == (rotate is not None)
    Ops.build(cfg, env={}).close()


def test_start_refuses_a_journal_rewritten_from_the_start(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    from autogate.ops import Ops, OpsError

    cfg = started_gate(tmp_path, key)
    cfg.storage.journal.unlink()
    forged = Journal(cfg.storage.journal, fsync=False)
    fill(forged, 0, 200, tag="forged")
    forged.close()
    with pytest.raises(OpsError, match="seq=120 differs .* rewritten; keep both files"):
        Ops.build(cfg, env={})


def test_start_refuses_a_truncated_or_replaced_journal(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    from autogate.ops import Ops, OpsError

    cfg = started_gate(tmp_path, key)
    rows = cfg.storage.journal.read_text().splitlines()[:100]
    cfg.storage.journal.write_text("\n".join(rows) + "\n")
    with pytest.raises(OpsError, match="ends before seq=120"):
        Ops.build(cfg, env={})
    cfg.storage.journal.unlink()
    with pytest.raises(OpsError, match="no journal record seq=120"):
        Ops.build(cfg, env={})


def test_start_refuses_a_checkpoint_whose_signature_fails(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    from autogate.ops import Ops, OpsError

    cfg = started_gate(tmp_path, key)
    cps = tmp_path / "cps"
    rows = [json.loads(r) for r in cps.read_text().splitlines()]
    rows[-1]["seq"] = 125
    cps.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    with pytest.raises(OpsError, match="signature does not verify"):
        Ops.build(cfg, env={})


def test_checkpoint_message_matches_its_shipped_schema(
    tmp_path: Path, key: Ed25519PrivateKey
) -> None:
    from gate import events

    j = Journal(tmp_path / "j.jsonl", fsync=False)
    fill(j, 0, 3)
    signer = Checkpointer(key, tmp_path / "cps", "kul1", "g01", j.head)
    cp = signer.write()
    assert cp is not None
    events.validate(signer.payload(cp))
    bad = signer.payload(cp) | {"document_number": "A12345678"}
    with pytest.raises(events.EventError):
        events.validate(bad)


def test_interrupted_transaction_is_found_across_a_rotation(tmp_path: Path) -> None:
    from autogate.daemon import interrupted_transaction

    jpath = tmp_path / "journal.jsonl"
    j = Journal(jpath, fsync=False, rotate_bytes=4096)
    fill(j, 0, 30)
    j.append("txn.start", {"txn_id": "b1-000007"}, "2026-11-25T10:00:00Z")
    files = len(journal_files(jpath))
    while len(journal_files(jpath)) == files:  # until the file holding txn.start rotates
        j.append("door", {"command": "OpenDoor", "door": "entry"}, "2026-11-25T10:00:01Z")
    j.append("state", {"from": "ENTRY_OPEN", "to": "IN_MANTRAP"}, "2026-11-25T10:00:02Z")
    j.close()
    assert "b1-000007" not in jpath.read_text()  # its start sits in a rotated file
    assert interrupted_transaction(jpath) == "b1-000007"
