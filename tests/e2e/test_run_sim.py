"""`autogate run --sim` end to end, as a subprocess: events out, journal, restart, SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from gate.actions import EventType
from gate.events import topic_leaf, validate
from gate.journal import Journal, verify

ROOT = Path(__file__).resolve().parents[2]


def make_config(tmp: Path) -> Path:
    cfg = yaml.safe_load((ROOT / "config" / "gate.example.yaml").read_text())
    cfg["storage"] = {"data_dir": str(tmp / "var"), "journal": str(tmp / "var" / "journal.jsonl")}
    # the example names its policy and checkpoints relative to its own folder
    cfg["policy"] = {"file": str(ROOT / "config" / "policy.example.yaml")}
    cfg["ops"]["audit"]["checkpoints"] = str(tmp / "var" / "checkpoints.jsonl")
    path = tmp / "gate.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_sim(cfg: Path) -> list[dict]:
    res = subprocess.run(
        [sys.executable, "-m", "autogate.cli", "run", "--sim", "--config", str(cfg)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def test_one_accepted_and_one_referred_traveller(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    events = run_sim(cfg)
    by_type: dict[str, list[dict]] = {}
    images = [e for e in events if e["topic"] == "event/referral-image"]
    events = [e for e in events if e["topic"] != "event/referral-image"]
    assert all(set(i) == {"topic", "bytes"} for i in images)  # images never printed
    for e in events:
        topic = e.pop("topic")
        validate(e)  # every message matches its shipped JSON Schema
        assert topic == topic_leaf(EventType(e["type"]))
        assert e["gate"] == "gate-01" and e["site"] == "klia-t1-arr"
        assert len(e["event_id"]) == 36
        by_type.setdefault(e["type"], []).append(e)

    (accepted,) = by_type["crossing.accepted"]
    assert accepted["reasons"] == [] and accepted["decision"] == "accepted"
    # a crossing carries only a masked and hashed document number
    assert accepted["document"]["number_masked"].endswith("678")
    assert "document_number" not in accepted["document"] and "surname" not in accepted["document"]

    (referred,) = by_type["referral.opened"]
    assert referred["reasons"] == ["doc_expired"]
    assert referred["stage"] == "document"
    assert referred["document"]["surname"] == "LIM"  # the officer needs the name
    (resolved,) = by_type["referral.resolved"]
    assert resolved["resolution"] == "send_back"
    assert by_type["command.ack"][0]["accepted"] is True
    assert accepted["txn_id"] != referred["txn_id"]
    states = [e["state"] for e in by_type["gate.status"]]
    for s in ("IDLE", "DOC_CHECK", "ENTRY_OPEN", "IN_MANTRAP", "EXIT_OPEN", "REFERRED"):
        assert s in states

    journal = tmp_path / "var" / "journal.jsonl"
    assert verify(journal).ok
    kinds = [json.loads(line)["kind"] for line in journal.read_text().splitlines()]
    assert kinds[0] == "daemon.start" and kinds[-1] == "daemon.stop"
    assert "portrait" not in journal.read_text()


def test_restart_reports_the_half_crossing_and_does_not_resume_it(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    journal_path = tmp_path / "var" / "journal.jsonl"
    j = Journal(journal_path, fsync=False)  # a daemon that died mid-crossing left this
    j.append("daemon.start", {"boot": "dead"}, "2026-11-25T09:00:00Z")
    j.append("txn.start", {"txn_id": "dead-000001"}, "2026-11-25T09:00:01Z")
    j.append("state", {"from": "ENTRY_OPEN", "to": "IN_MANTRAP"}, "2026-11-25T09:00:02Z")
    j.close()
    events = run_sim(cfg)
    first_aborted = next(e for e in events if e["type"] == "crossing.aborted")
    assert first_aborted["txn_id"] == "dead-000001"
    assert first_aborted["reasons"] == ["gate_restart"]
    assert verify(journal_path).ok


def test_sigterm_closes_doors_and_exits_cleanly(tmp_path: Path) -> None:
    cfg = make_config(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "autogate.cli", "run", "--config", str(cfg)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    try:
        assert proc.stdout is not None
        first = json.loads(proc.stdout.readline())
        assert first["type"] == "gate.status" and first["state"] == "IDLE"
        time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    records = [
        json.loads(line) for line in (tmp_path / "var" / "journal.jsonl").read_text().splitlines()
    ]
    assert records[-1]["kind"] == "daemon.stop"
    closed = {r["data"]["door"] for r in records if r["data"].get("why") == "shutdown"}
    assert closed == {"entry", "exit"}
    assert verify(tmp_path / "var" / "journal.jsonl").ok
