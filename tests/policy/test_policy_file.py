"""Policy files: the example loads; each flaw is refused with one line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gate.config import ConfigError, parse_config
from gate.policy_config import Policy, is_icao_code, load_policy, parse_policy, policy_for

from .helpers import BASE_POLICY

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "config" / "policy.example.yaml"


def test_example_policy_loads() -> None:
    p = load_policy(EXAMPLE)
    assert p.state == "MYS"
    assert [c.kind for c in p.categories] == ["citizen", "foreign_national", "pass_holder"]
    assert "D" in p.categories[1].nationalities  # written D, the ICAO code for Germany
    assert [c.biometric for c in p.categories] == ["face"] * 3


def test_face_decides_unless_a_category_says_otherwise() -> None:
    """Issue 19: a policy written before the thumb channel keeps the face rule."""
    p = parse_policy(BASE_POLICY, "p.yaml")
    assert {c.biometric for c in p.categories} == {"face"} and p.thumb.min_score is None
    data = yaml.safe_load(BASE_POLICY)
    data["categories"][0]["biometric"] = "face_then_thumb"
    data["categories"][1]["biometric"] = "both"
    p = parse_policy(yaml.safe_dump(data), "p.yaml")
    assert [c.biometric for c in p.categories][:2] == ["face_then_thumb", "both"]


def test_every_field_of_the_example_is_commented() -> None:
    """Each top-level key of the example has a comment right above it or on its line."""
    lines = EXAMPLE.read_text().splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith((" ", "#", "-")):
            assert lines[i - 1].startswith("#") or "#" in line, f"uncommented: {line}"


def _flaw(**changes: object) -> str:
    data = yaml.safe_load(BASE_POLICY)
    for dotted, value in changes.items():
        node = data
        *parents, leaf = dotted.split("__")
        for p in parents:
            node = node[int(p)] if p.isdigit() else node[p]
        if value is KeyError:
            del node[leaf]
        elif leaf.isdigit():
            node[int(leaf)] = value
        else:
            node[leaf] = value
    return yaml.safe_dump(data)


BAD = {
    "unknown key": (_flaw(max_travellers=3), "p.yaml: max_travellers: unknown key"),
    "unknown nested key": (_flaw(age__maximum=60), "p.yaml: age.maximum: unknown key"),
    "min age above max age": (
        _flaw(age={"min": 18, "max": 12}),
        "p.yaml: age: min (18) is above max (12)",
    ),
    "negative age": (_flaw(age={"min": -1}), "p.yaml: age.min: Input should be greater"),
    "no categories": (_flaw(categories=[]), "p.yaml: categories: empty, nobody"),
    "no documents": (_flaw(documents=[]), "p.yaml: documents: empty"),
    "bad nationality": (
        _flaw(categories__1__nationalities=["SGP", "ABC"]),
        "p.yaml: categories.1.nationalities.1: 'ABC' is not an ICAO 9303 country code",
    ),
    "lower-case code": (
        _flaw(categories__1__nationalities=["sgp"]),
        "p.yaml: categories.1.nationalities.0: 'sgp' is not an ICAO 9303 country code",
    ),
    "alpha-2 code": (
        _flaw(categories__1__nationalities=["SG"]),
        "p.yaml: categories.1.nationalities.0: 'SG' is not an ICAO 9303",
    ),
    "organisation as the state": (
        _flaw(state="UNO"),
        "p.yaml: state: 'UNO' is an organisation or status code, not a state",
    ),
    "stateless as the state": (_flaw(state="XXA"), "p.yaml: state: 'XXA' is an organisation"),
    "own state listed as foreign": (
        _flaw(categories__1__nationalities=["SGP", "MYS"]),
        "p.yaml: categories.1 (visa_exempt): MYS is the gate's own state, not foreign",
    ),
    "foreign category without nationalities": (
        _flaw(categories__1__nationalities=[]),
        "p.yaml: categories.1 (visa_exempt): a foreign_national category needs nationalities",
    ),
    "pass holders without pass types": (
        _flaw(categories__2__pass_types=[]),
        "p.yaml: categories.2 (pass_holder): a pass_holder category needs pass_types",
    ),
    "unknown category kind": (
        _flaw(categories__1__kind="tourist"),
        "p.yaml: categories.1.kind: Input should be 'citizen'",
    ),
    "duplicate category": (
        _flaw(categories__1__name="citizen"),
        "p.yaml: categories.1 (citizen): duplicate category name",
    ),
    "nobody in this direction": (
        _flaw(
            direction="departure",
            categories=[{"name": "c", "kind": "citizen", "directions": ["arrival"]}],
        ),
        "p.yaml: categories: no category may use the gate on departure",
    ),
    "bad document code": (
        _flaw(documents__0__codes=["P", "SPLP"]),
        "p.yaml: documents.0.codes.1: 'SPLP' is not an MRZ document code",
    ),
    "bad issuing state": (
        _flaw(documents__1__issuing_states=["INA"]),
        "p.yaml: documents.1.issuing_states.0: 'INA' is not an ICAO 9303 country code",
    ),
    "bad direction": (_flaw(direction="inbound"), "p.yaml: direction: Input should be"),
    "unknown biometric channel": (
        _flaw(categories__0__biometric="thumb"),
        "p.yaml: categories.0.biometric: Input should be 'face', 'face_then_thumb' or 'both'",
    ),
    "negative thumb threshold": (
        _flaw(thumb={"min_score": -1}),
        "p.yaml: thumb.min_score: Input should be greater",
    ),
    "wrong type": (_flaw(min_validity_days="one"), "p.yaml: min_validity_days: Input should be"),
    "not a mapping": ("- 1\n- 2\n", "p.yaml: top level must be a mapping, got list"),
    "broken YAML": ("age: {min: 1\n", "p.yaml: invalid YAML at line"),
}


@pytest.mark.parametrize(("text", "expected"), BAD.values(), ids=BAD.keys())
def test_bad_policy_refused_with_one_line(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_policy(text, "p.yaml")
    line = str(err.value)
    assert "\n" not in line
    assert line.startswith(expected), line


@pytest.mark.parametrize(
    "code",
    [
        "MYS",
        "D",
        "D<<",
        "GBD",
        "EUE",
        "UNO",
        "UNA",
        "UNK",
        "XXA",
        "XXB",
        "XXC",
        "XXX",
        "XOM",
        "XPO",
        "RKS",
    ],
)
def test_icao_codes_accepted(code: str) -> None:
    assert is_icao_code(code)
    parse_policy(_flaw(documents__0__issuing_states=[code]))


@pytest.mark.parametrize("code", ["ABC", "XXD", "EUR", "UN", "GER", "DE", "XYZ"])
def test_non_codes_refused(code: str) -> None:
    assert not is_icao_code(code)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing.yaml: file not found$"):
        load_policy(tmp_path / "missing.yaml")


def _gate(policy_file: Path | None, direction: str = "arrival") -> str:
    cfg = {"gate": {"site": "klia", "id": "g1", "direction": direction}}
    if policy_file is not None:
        cfg["policy"] = {"file": str(policy_file)}
    return yaml.safe_dump(cfg)


def test_gate_config_points_at_the_policy_file(tmp_path: Path) -> None:
    cfg = parse_config(_gate(EXAMPLE))
    assert policy_for(cfg) == load_policy(EXAMPLE)
    assert policy_for(parse_config(_gate(None, "departure"))) == Policy(direction="departure")


def test_policy_direction_must_match_the_gate(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"direction: arrival but the gate is departure"):
        policy_for(parse_config(_gate(EXAMPLE, "departure")))
    undirected = tmp_path / "p.yaml"
    undirected.write_text(_flaw(direction=KeyError))
    assert policy_for(parse_config(_gate(undirected, "departure"))).direction == "departure"


def test_old_inline_policy_keys_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"policy.min_age: unknown key"):
        parse_config(_gate(None) + "policy: {min_age: 12}\n")


def _lists(*adapters: dict[str, object]) -> str:
    lists = {"type": "composite", "adapters": list(adapters)}
    return _gate(None) + yaml.safe_dump({"devices": {"lists": lists}})


def test_lists_configs_in_the_gate_config(tmp_path: Path) -> None:
    local = {"type": "local", "path": str(tmp_path / "l.json")}
    http = {"type": "http", "url": "http://127.0.0.1:1/", "service": "passes"}
    cfg = parse_config(_lists(local, http))
    assert cfg.devices.lists.type == "composite"
    with pytest.raises(ConfigError, match=r"devices.lists.adapters.1.url: String should match"):
        parse_config(_lists(local, {**http, "url": "ftp://x"}))
    with pytest.raises(ConfigError, match=r"devices.lists: .*adapters: each needs its own name"):
        parse_config(_lists(local, {**http, "name": "local"}))
    with pytest.raises(ConfigError, match=r"devices.lists.adapters.0.service: Input should be"):
        parse_config(_lists({**local, "service": "both"}, http))
    with pytest.raises(ConfigError, match=r"devices.lists.adapters: List should have at least"):
        parse_config(_lists())
