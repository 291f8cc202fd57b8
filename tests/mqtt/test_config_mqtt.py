"""MqttBusConfig: one flaw per case must be a one-line ConfigError naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.bus import MqttBus, build
from drivers.errors import DeviceError
from gate.config import ConfigError, MqttBusConfig, parse_config

BASE = "gate: {site: kul1, id: g01}\ndevices:\n  bus: {type: mqtt, %s}\n"


def test_minimal_mqtt_bus_config_and_build(tmp_path: Path) -> None:
    cfg = parse_config(BASE % "host: broker.local" + f"storage: {{data_dir: {tmp_path}}}\n")
    bus_cfg = cfg.devices.bus
    assert isinstance(bus_cfg, MqttBusConfig)
    assert (bus_cfg.port, bus_cfg.outbox_sync, bus_cfg.tls) == (8883, "full", None)
    bus = build(bus_cfg, cfg)
    assert isinstance(bus, MqttBus)
    assert bus.outbox_path == tmp_path / "outbox.sqlite"


@pytest.mark.parametrize(
    ("flaw", "field"),
    [
        ("hots: x", "devices.bus.hots"),
        ("port: 0", "devices.bus.port"),
        ("tls: {ca_file: ca.pem, cert_file: c.pem}", "devices.bus.tls"),
        ("command_keys: [{id: c1}]", "devices.bus.command_keys.0"),
        ("command_keys: [{id: c1, public_key: a}, {id: c1, public_key: b}]", "devices.bus"),
        ("password_file: pw", "devices.bus"),
        ("outbox_sync: sometimes", "devices.bus.outbox_sync"),
        ("clock_skew_s: 0", "devices.bus.clock_skew_s"),
    ],
)
def test_flaws_are_config_errors(flaw: str, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(BASE % flaw)
    assert f": {field}:" in str(err.value)


def test_build_reports_unreadable_secrets_and_bad_keys(tmp_path: Path) -> None:
    cfg = parse_config(BASE % f"username: u, password_file: {tmp_path / 'missing'}")
    with pytest.raises(DeviceError, match="missing"):
        build(cfg.devices.bus, cfg)  # type: ignore[arg-type]
    cfg = parse_config(BASE % "command_keys: [{id: c1, public_key: bm90IGEga2V5}]")
    with pytest.raises(DeviceError, match="c1"):
        build(cfg.devices.bus, cfg)  # type: ignore[arg-type]
