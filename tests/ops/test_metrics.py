"""A gate run against the simulator, scraped like Prometheus would scrape it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from autogate.daemon import Daemon
from autogate.ops import Ops
from autogate.wiring import build_devices, settings_from
from gate.config import load_config
from sim.devices import DEFAULT_TRAVELLERS, SimTraveller, sim_mrz
from tests.ops.helpers import free_port, make_config, write_aes_key


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


async def test_metrics_of_a_simulated_session(tmp_path: Path) -> None:
    port = free_port()
    write_aes_key(tmp_path / "referral.key")
    cfg = load_config(
        make_config(
            tmp_path,
            metrics={"enabled": True, "port": port},
            privacy={"referral_key": str(tmp_path / "referral.key"), "retention_s": 3600},
        )
    )
    ops = Ops.build(cfg, env={})
    devices, hall = build_devices(cfg)
    daemon = Daemon(cfg, devices, settings_from(cfg), vault=ops.vault)
    ops.attach(daemon)
    hall.emits["bus"] = daemon.emit
    stop = asyncio.Event()
    runner = asyncio.ensure_future(daemon.run(stop))
    await ops.start(daemon, stop)
    try:
        await asyncio.wait_for(daemon.ready.wait(), 10)
        lookalike = SimTraveller("lookalike", sim_mrz("TAN", "AH KOW", "B11122233"), face_score=0.2)
        outcomes = [await hall.walk(t) for t in DEFAULT_TRAVELLERS]
        outcomes.append(await hall.walk(lookalike, decide_s=0.5))
        assert outcomes == ["crossed", "sent back", "sent back"]
        await asyncio.sleep(0.3)
        res = await asyncio.to_thread(httpx.get, f"http://127.0.0.1:{port}/metrics", timeout=5)
    finally:
        stop.set()
        await runner
        await ops.stop()
    assert res.status_code == 200
    m = samples(res.text)
    assert m[("autogate_crossings_total", (("decision", "accepted"), ("reason", "none")))] == 1
    assert (
        m[("autogate_crossings_total", (("decision", "referred"), ("reason", "doc_expired")))] == 1
    )
    assert (
        m[("autogate_crossings_total", (("decision", "referred"), ("reason", "face_no_match")))]
        == 1
    )
    assert m[("autogate_core_step_seconds_count", (("input", "Tick"),))] > 0
    assert m[("autogate_face_match_score_count", ())] == 2
    assert m[("autogate_face_match_score_bucket", (("le", "0.5"),))] == 1  # the lookalike
    assert m[("autogate_face_pad_score_count", ())] == 2
    assert m[("autogate_transaction_seconds_count", (("decision", "accepted"),))] == 1
    assert m[("autogate_gate_state", (("autogate_gate_state", "IDLE"),))] == 1
    assert m[("autogate_link_up", (("device", "barrier"),))] == 1
    assert m[("autogate_watchdog_ok", ())] == 1
    assert m[("autogate_core_loop_age_seconds", ())] < 1
    assert m[("autogate_journal_seq", ())] > 10
    assert (
        m[("autogate_published_events_total", (("leaf", "event/crossing"), ("result", "ok")))] == 1
    )
    # the lookalike's portrait and frame, sealed until the officer's case is past retention
    assert m[("autogate_referral_biometrics_held", ())] == 2
    # the stdout bus has no outbox: no made-up depth
    assert not any(name.startswith("autogate_outbox") for name, _ in m)


async def test_link_down_and_outbox_from_a_bus_that_reports_it(tmp_path: Path) -> None:
    from autogate.metrics import Metrics
    from gate import inputs as i

    cfg = load_config(make_config(tmp_path))
    devices, _ = build_devices(cfg)

    class OutboxBus(type(devices.bus)):  # type: ignore[misc]
        def depth(self) -> int:
            return 7

        def oldest_age(self) -> float:
            return 42.0

    devices.bus = OutboxBus()
    daemon = Daemon(cfg, devices, settings_from(cfg))
    metrics = Metrics()
    metrics.bind(daemon)
    daemon.observers.append(metrics)
    daemon._step(i.Started())
    daemon._step(i.LinkLost("barrier", "no answer from slave 1"))
    daemon.journal.close()
    from prometheus_client import generate_latest

    m = samples(generate_latest(metrics.registry).decode())
    assert m[("autogate_link_up", (("device", "barrier"),))] == 0
    assert m[("autogate_link_up", (("device", "chip"),))] == 1
    assert m[("autogate_gate_state", (("autogate_gate_state", "OUT_OF_SERVICE"),))] == 1
    assert m[("autogate_outbox_depth", ())] == 7
    assert m[("autogate_outbox_oldest_age_seconds", ())] == 42


def test_dashboard_uses_only_metrics_the_gate_exports() -> None:
    import json
    import re
    from types import SimpleNamespace

    from autogate.metrics import Metrics
    from tests.ops.helpers import ROOT

    bus = SimpleNamespace(depth=lambda: 0, oldest_age=lambda: 0.0)
    daemon = SimpleNamespace(
        alive_at=1.0,
        journal=SimpleNamespace(head=lambda: SimpleNamespace(seq=1)),
        vault=SimpleNamespace(held=lambda: []),
        dev=SimpleNamespace(bus=bus),
    )
    metrics = Metrics()
    metrics.bind(daemon)
    exported: set[str] = set()
    for fam in metrics.registry.collect():
        suffixes = {"counter": ["_total"], "histogram": ["_bucket", "_count", "_sum"]}
        exported |= {fam.name + s for s in suffixes.get(fam.type, [""])}
    dashboard = json.loads((ROOT / "deploy" / "grafana" / "autogate.json").read_text())
    used: set[str] = set()
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            used |= set(re.findall(r"autogate_[a-z_]+", target["expr"]))
    assert used and used <= exported, used - exported
    assert len(used) >= 14
