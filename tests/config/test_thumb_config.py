"""The thumb section of the gate config (issue 19): optional, absent = no thumb channel;
drivers/finger's own keys are checked at load with one line naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from autogate.thumb import finger_config
from gate.config import ConfigError, NbisThumbConfig, SimThumbConfig, parse_config

GATE = "gate: {site: s1, id: g1}\n"


def test_no_thumb_section_is_no_thumb_channel() -> None:
    cfg = parse_config(GATE)
    assert cfg.devices.thumb is None and cfg.timeouts.thumb == 10.0
    assert finger_config(cfg) is None


def test_the_in_process_sim_and_the_nbis_channel() -> None:
    sim = parse_config(GATE + "devices: {thumb: {type: sim, threshold: 30}}").devices.thumb
    assert isinstance(sim, SimThumbConfig) and sim.threshold == 30
    text = GATE + "devices: {thumb: {type: nbis, reader: {type: sim}, finger: left_thumb}}"
    cfg = parse_config(text, "g.yaml", base=Path("/etc/autogate"))
    assert isinstance(cfg.devices.thumb, NbisThumbConfig)
    finger = finger_config(cfg, "g.yaml")
    assert finger is not None and finger.finger == "left_thumb" and finger.reader.type == "sim"


def test_a_relative_descriptor_is_relative_to_the_config_file() -> None:
    text = GATE + "devices: {thumb: {type: nbis, descriptor: models/t.json}}"
    finger = finger_config(parse_config(text, "g.yaml", base=Path("/etc/autogate")), "g.yaml")
    assert finger is not None and finger.descriptor == Path("/etc/autogate/models/t.json")


@pytest.mark.parametrize(
    ("thumb", "expected"),
    [
        ("{type: nbis, fingr: 1}", "g.yaml: devices.thumb.fingr: unknown key"),
        ("{type: nbis, reader: {type: usb}}", "g.yaml: devices.thumb.reader: Input tag 'usb'"),
        ("{type: nbis, finger: nose}", "g.yaml: devices.thumb.finger: Input should be"),
    ],
)
def test_a_bad_finger_key_is_one_line_naming_it(thumb: str, expected: str) -> None:
    cfg = parse_config(GATE + f"devices: {{thumb: {thumb}}}", "g.yaml")
    with pytest.raises(ConfigError) as err:
        finger_config(cfg, "g.yaml")
    assert str(err.value).startswith(expected) and "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("devices: {thumb: {type: usb}}", "g.yaml: devices.thumb: Input tag 'usb'"),
        (
            "devices: {thumb: {type: sim, treshold: 1}}",
            "g.yaml: devices.thumb.treshold: unknown key",
        ),
        ("timeouts: {thumb: 0}", "g.yaml: timeouts.thumb: Input should be greater than 0"),
    ],
)
def test_bad_thumb_settings_of_the_gate_config(text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(GATE + text, "g.yaml")
    assert str(err.value).startswith(expected), str(err.value)
