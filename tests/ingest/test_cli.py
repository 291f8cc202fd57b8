"""``autogate ingest migrate | query``: lookup by the keyed hash, read-only, config errors."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from autogate.cli import main
from autogate.ingest.records import to_record
from autogate.ingest.store import Store
from tests.ingest.helpers import KEY, crossing, raw, referral


def _cfg(tmp: Path, url: str) -> Path:
    (tmp / "key").write_bytes(KEY)
    path = tmp / "ingest.yaml"
    path.write_text(f"database: '{url}'\ndocument_key_file: {tmp / 'key'}\n")
    return path


def test_query_finds_one_document_by_its_number(tmp_path: Path, capsys: pytest.CaptureFixture):
    url = f"sqlite:///{tmp_path / 'record.sqlite'}"
    cfg = _cfg(tmp_path, url)
    assert main(["ingest", "migrate", "--config", str(cfg)]) == 0
    t0 = dt.datetime(2026, 9, 1, 8, 0, tzinfo=dt.UTC)
    msgs = [
        crossing("AB1234567", ts=t0),
        crossing("AB1234567", direction="departure", ts=t0 + dt.timedelta(days=20)),
        crossing("ZZ0000001", ts=t0),
        referral("AB1234567"),
    ]
    store = Store(url)
    store.write([to_record(*raw(m), KEY) for m in msgs])  # type: ignore[misc]
    store.close()
    capsys.readouterr()
    assert main(["ingest", "query", "--config", str(cfg), "--document", "ab1234567", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(r["kind"], r["direction"]) for r in rows] == [
        ("crossing", "arrival"),
        ("crossing", "departure"),
        ("referral", None),
    ]
    assert all(r["number_masked"] == "******567" for r in rows)


@pytest.mark.parametrize(
    "number", ["Ä1234567", "' OR '1'='1", "AB1234567; DROP TABLE crossings", "", "A" * 21]
)
def test_query_takes_only_a_document_number(
    tmp_path: Path, capsys: pytest.CaptureFixture, number: str
):
    """--document is hashed, never put into SQL; what is not a document number (letters
    outside ASCII crashed the hash with a traceback) is refused with a clear message."""
    url = f"sqlite:///{tmp_path / 'record.sqlite'}"
    cfg = _cfg(tmp_path, url)
    assert main(["ingest", "migrate", "--config", str(cfg)]) == 0
    store = Store(url)
    store.write([to_record(*raw(crossing("AB1234567")), KEY)])  # type: ignore[list-item]
    store.close()
    capsys.readouterr()
    assert main(["ingest", "query", "--config", str(cfg), "--document", number]) == 2
    out = capsys.readouterr()
    assert out.out == "" and "--document" in out.err
    assert Store(url, read_only=True).query("SELECT COUNT(*) AS n FROM crossings")[0]["n"] == 1


def test_bad_config_exits_2_naming_the_field(tmp_path: Path, capsys: pytest.CaptureFixture):
    path = tmp_path / "ingest.yaml"
    path.write_text("database: sqlite:///x\ndocument_key_file: /k\nworkers: 0\n")
    with pytest.raises(SystemExit) as exc:
        main(["ingest", "migrate", "--config", str(path)])
    assert exc.value.code == 2
    assert "workers" in capsys.readouterr().err


def test_a_key_written_twice_in_the_config_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture
):
    """YAML's loader kept the last ``database:`` without a word: after an edit, which
    record the workers wrote to depended on the line order."""
    path = tmp_path / "ingest.yaml"
    path.write_text(
        f"database: sqlite:///{tmp_path / 'a.sqlite'}\ndocument_key_file: /k\n"
        f"database: sqlite:///{tmp_path / 'b.sqlite'}\n"
    )
    with pytest.raises(SystemExit) as exc:
        main(["ingest", "migrate", "--config", str(path)])
    assert exc.value.code == 2
    assert "'database' is written twice" in capsys.readouterr().err
    assert not (tmp_path / "b.sqlite").exists()


def test_unknown_database_url_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture):
    cfg = _cfg(tmp_path, "mysql://nobody")
    assert main(["ingest", "migrate", "--config", str(cfg)]) == 1
    assert "expected sqlite:///PATH or postgresql://" in capsys.readouterr().err
