"""The audit journal detects an edited, deleted or reordered record."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gate.journal import Journal, verify

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    path = tmp_path / "journal.jsonl"
    j = Journal(path, fsync=False)
    for n in range(6):
        j.append("event", {"n": n, "type": "crossing.accepted"}, f"2026-11-25T10:00:0{n}Z")
    j.close()
    return path


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def write(path: Path, rows: list[str]) -> None:
    path.write_text("\n".join(rows) + "\n")


def cli(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autogate.cli", "audit", "verify", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )


def test_intact_journal_verifies(journal: Path) -> None:
    v = verify(journal)
    assert v.ok and v.records == 6 and v.head.seq == 6
    res = cli(journal)
    assert res.returncode == 0 and "6 records" in res.stdout


def test_reopened_journal_continues_the_chain(journal: Path) -> None:
    j = Journal(journal, fsync=False)
    assert j.head().seq == 6
    j.append("event", {"n": 6}, "2026-11-25T10:01:00Z")
    j.close()
    assert verify(journal).ok and verify(journal).records == 7


def test_edited_record_is_detected(journal: Path) -> None:
    rows = lines(journal)
    rec = json.loads(rows[2])
    rec["data"]["type"] = "referral.opened"
    rows[2] = json.dumps(rec)
    write(journal, rows)
    v = verify(journal)
    assert not v.ok and v.line == 3 and "edited" in v.problem
    res = cli(journal)
    assert res.returncode == 1 and "line 3" in res.stdout


def test_edited_record_with_recomputed_hash_is_detected(journal: Path) -> None:
    from gate.journal import record_hash

    rows = lines(journal)
    rec = json.loads(rows[2])
    rec["data"]["n"] = 99
    rec["hash"] = record_hash(rec)
    rows[2] = json.dumps(rec)
    write(journal, rows)
    v = verify(journal)
    assert not v.ok and v.line == 4 and "chain" in v.problem


def test_deleted_record_is_detected(journal: Path) -> None:
    rows = lines(journal)
    del rows[3]
    write(journal, rows)
    v = verify(journal)
    assert not v.ok and v.line == 4 and "seq=4 missing" in v.problem


def test_reordered_records_are_detected(journal: Path) -> None:
    rows = lines(journal)
    rows[1], rows[4] = rows[4], rows[1]
    write(journal, rows)
    v = verify(journal)
    assert not v.ok and v.line == 2


def test_garbage_line_is_detected(journal: Path) -> None:
    rows = lines(journal)
    rows.insert(2, "not json at all")
    write(journal, rows)
    v = verify(journal)
    assert not v.ok and v.line == 3 and "not a JSON record" in v.problem


def test_cli_missing_file_exits_2(tmp_path: Path) -> None:
    assert cli(tmp_path / "none.jsonl").returncode == 2


def test_a_record_read_two_ways_is_an_edit(journal: Path) -> None:
    """A record's hash covers what Python parsed, which keeps the last of duplicate keys:
    a line edited to say ``"type":"referral.opened"`` in front of its real ``data`` still
    verified, while anyone reading the line (an examiner, ``grep``, a first-key parser)
    saw the inserted value. One line, one meaning: a duplicate key is an edit."""
    rows = lines(journal)
    assert '"data":{' in rows[2]
    rows[2] = rows[2].replace('"data":{', '"data":{"n":99,"type":"referral.opened"},"data":{', 1)
    write(journal, rows)
    v = verify(journal)
    assert not v.ok and v.line == 3, v
    res = cli(journal)
    assert res.returncode == 1 and "line 3" in res.stdout


def test_a_signed_checkpoint_read_two_ways_is_refused() -> None:
    """The same for a signed checkpoint line: a ``seq`` in front of the signed one."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from gate.checkpoint import CheckpointError, load_lines, sign
    from gate.journal import Head

    cp = sign(
        Ed25519PrivateKey.generate(), Head(7, "a" * 64), "kul1", "g01", "2026-11-25T10:00:00Z"
    )
    line = json.dumps(cp.to_json(), separators=(",", ":"))
    assert load_lines(line)[0].seq == 7  # the control
    with pytest.raises(CheckpointError):
        load_lines(line.replace("{", '{"seq":9000,', 1))


TAMPERED_SEQ = {
    "text": json.dumps({"seq": "abc", "hash": "x"}),
    "list": json.dumps({"seq": [7], "hash": "x"}),
    "5000 digits": '{"seq": ' + "9" * 5000 + ', "hash": "x"}',  # past int()'s digit limit
    "hash not text": json.dumps({"seq": 7, "hash": {"a": 1}}),
}


@pytest.mark.parametrize("case", TAMPERED_SEQ)
def test_a_tampered_line_is_reported_and_never_stops_the_start(journal: Path, case: str) -> None:
    """A line with a seq or hash of the wrong type (an edit, a bad disk block) was a
    ValueError / TypeError when the daemon opened its journal: the lane could not start.
    It is evidence for ``verify`` to report; the chain goes on from the last record."""
    write(journal, [*lines(journal), TAMPERED_SEQ[case]])
    j = Journal(journal, fsync=False)
    assert j.head().seq == 6
    j.append("event", {"after": True}, "2026-11-25T10:01:00Z")
    j.close()
    v = verify(journal)
    assert not v.ok and v.line == 7
    res = cli(journal)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr


def test_a_torn_last_line_does_not_swallow_the_next_record(journal: Path) -> None:
    """Power lost in the middle of a write leaves a last line without its newline; the
    first record after the restart was appended to it and lost with it."""
    journal.write_bytes(journal.read_bytes()[:-25])  # the sixth record, torn
    j = Journal(journal, fsync=False)
    record = j.append("event", {"after": "restart"}, "2026-11-25T10:01:00Z")
    j.close()
    rows = lines(journal)
    assert json.loads(rows[-1]) == record  # whole, on its own line
    assert record["seq"] == 6  # continues the last complete record
    v = verify(journal)
    assert not v.ok and v.line == 6 and "not a JSON record" in v.problem  # the torn line
