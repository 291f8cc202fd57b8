"""A gate without the console's image_key says so once, not at every referral (the
national fleet's output was flooded with one warning per referred traveller)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from autogate.daemon import Daemon
from autogate.wiring import build_devices, settings_from
from gate.actions import Publish
from gate.config import load_config
from gate.events import EventType
from tests.ops.helpers import make_config


def test_no_image_key_is_said_once_per_gate(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = load_config(make_config(tmp_path))
    devices, _ = build_devices(cfg)
    daemon = Daemon(cfg, devices, settings_from(cfg))
    try:
        assert daemon.image_key is None
        with caplog.at_level(logging.DEBUG, logger="autogate"):
            for n in range(5):
                daemon._send_images(Publish(EventType.REFERRAL_OPENED, txn_id=f"t{n}"))
    finally:
        daemon.journal.close()
    said = [r for r in caplog.records if "image_key" in r.getMessage()]
    warnings = [r for r in said if r.levelno >= logging.WARNING]
    assert len(warnings) == 1, [r.getMessage() for r in said]
    assert cfg.gate.id in warnings[0].getMessage()  # which gate lacks it
