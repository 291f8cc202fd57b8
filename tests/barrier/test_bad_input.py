"""Bad input: wrong ports, wrong ids, wrong maps, exception replies, bad config. Clear errors,
fail-safe (doors never commanded open), nothing crashes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from drivers.barrier import ModbusBarrier, build, check_port
from drivers.errors import DeviceError
from drivers.regmap import RegisterMap, load_regmap
from gate.config import ConfigError, GateConfig, parse_config
from gate.inputs import DeviceFault, Door, DoorChanged, DoorFault, LinkLost, LinkRestored
from sim.barrier import SimController

from .conftest import Recorder, make_cfg


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/dev/ttyNOPE9", "serial port /dev/ttyNOPE9 does not exist"),
        ("/dev/null", "/dev/null is not a serial device (not a tty)"),
        ("/etc/hostname", "/etc/hostname is not a serial device (not a character device)"),
        ("/tmp", "/tmp is not a serial device (not a character device)"),
    ],
)
async def test_unusable_port_is_reported_not_raised(path: str, message: str) -> None:
    with pytest.raises(
        DeviceError, match="barrier: " + message.replace("(", r"\(").replace(")", r"\)")
    ):
        check_port(path)
    rec = Recorder()
    b = ModbusBarrier(make_cfg(path), load_regmap("generic-2door"))
    await b.start(rec)  # returns after the first attempt; keeps retrying in the background
    try:
        assert rec.events == [LinkLost("barrier", message)]
        with pytest.raises(DeviceError, match="cannot open entry: link to the controller is down"):
            await b.open(Door.ENTRY)  # fail-safe: refused at once, not a door fault
        assert not rec.of(DoorFault)
        await asyncio.sleep(0.3)  # several backoff rounds: still one report per outage
        assert len(rec.of(LinkLost)) == 1
    finally:
        await b.close()
        await b.close()  # idempotent


async def test_port_that_appears_later_is_picked_up(tmp_path: Path) -> None:
    """A USB adapter plugged in after start: the backoff loop finds it."""
    link = tmp_path / "ttyGATE"
    rec = Recorder()
    async with SimController(travel_s=0.0) as sim:
        b = ModbusBarrier(make_cfg(str(link)), load_regmap("generic-2door"))
        await b.start(rec)
        try:
            assert isinstance(rec.events[0], LinkLost)
            link.symlink_to(sim.port)
            await rec.wait_for(lambda e: isinstance(e, LinkRestored))
            await b.open(Door.ENTRY)
            assert sim.door_open_commanded(Door.ENTRY)
        finally:
            await b.close()


async def test_wrong_slave_id_is_silence(sim: SimController) -> None:
    rec = Recorder()
    b = ModbusBarrier(make_cfg(sim.port, slave_id=7), load_regmap("generic-2door"))
    await b.start(rec)
    try:
        assert rec.events == [
            LinkLost("barrier", "read firmware version: no reply from slave 7 in 0.25s, 3 tries")
        ]
        assert sim.requests == 0  # the controller ignored every frame not addressed to it
    finally:
        await b.close()


def _shifted(regmap: RegisterMap) -> RegisterMap:
    """The map of another model: inputs where this controller has none."""
    data = regmap.model_dump()
    data["discrete_inputs"]["tamper"] = 300
    return RegisterMap.model_validate(data)


async def test_illegal_address_is_a_device_fault(sim: SimController) -> None:
    rec = Recorder()
    b = ModbusBarrier(make_cfg(sim.port), _shifted(load_regmap("generic-2door")))
    await b.start(rec)
    try:
        assert rec.events == [
            DeviceFault("barrier", "read inputs: controller exception 2 (ILLEGAL_ADDRESS)")
        ]
        assert not b.link_up
        with pytest.raises(DeviceError):
            await b.open(Door.ENTRY)
        assert not sim.door_open_commanded(Door.ENTRY)
    finally:
        await b.close()


async def test_exception_reply_to_a_command(sim: SimController, rec: Recorder) -> None:
    data = load_regmap("generic-2door").model_dump()
    data["coils"]["exit_open"] = 999  # this controller has no such coil
    b = ModbusBarrier(make_cfg(sim.port), RegisterMap.model_validate(data))
    await b.start(rec)
    try:
        with pytest.raises(
            DeviceError,
            match=r"open command not delivered: open exit: controller exception 2 \(ILLEGAL_ADDRESS\)",
        ):
            await b.open(Door.EXIT)
        assert not rec.of(DoorFault)
        await b.open(Door.ENTRY)  # the rest of the controller still works
        assert sim.door_open_commanded(Door.ENTRY)
    finally:
        await b.close()


async def test_controller_failing_mid_run_then_recovering(
    sim: SimController, rec: Recorder
) -> None:
    b = ModbusBarrier(make_cfg(sim.port), load_regmap("generic-2door"))
    await b.start(rec)
    try:
        real_action = sim._action

        async def failing(*args):  # type: ignore[no-untyped-def]
            from pymodbus.constants import ExcCodes

            return ExcCodes.DEVICE_FAILURE

        sim._server.context.devices[1].action = failing  # type: ignore[union-attr]
        fault = await rec.wait_for(lambda e: isinstance(e, DeviceFault))
        assert "controller exception 4 (DEVICE_FAILURE)" in fault.detail
        sim._server.context.devices[1].action = real_action  # type: ignore[union-attr]
        await rec.wait_for(lambda e: isinstance(e, LinkRestored))
    finally:
        await b.close()


async def test_garbage_only_line() -> None:
    """Something that is not our controller keeps babbling on the port."""
    async with SimController() as sim:
        await sim._stop_server()  # nobody answers; only noise arrives
        rec = Recorder()
        b = ModbusBarrier(make_cfg(sim.port), load_regmap("generic-2door"))
        noise = asyncio.create_task(_babble(sim))
        try:
            await b.start(rec)
            lost = rec.of(LinkLost)[0]
            assert "read firmware version:" in lost.detail
        finally:
            noise.cancel()
            await b.close()


async def _babble(sim: SimController) -> None:
    while True:
        sim.inject_noise(20, toward="driver")
        await asyncio.sleep(0.02)


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(DeviceError, match="register map .*nosuch.yaml not found .known: "):
        load_regmap("nosuch")


def test_bad_register_map_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        (Path(__file__).resolve().parents[2] / "config/barrier-models/generic-2door.yaml")
        .read_text()
        .replace("tamper: 8", "tamper: 7")
    )
    with pytest.raises(DeviceError, match="discrete_inputs: .*address used twice.*7"):
        load_regmap(path=bad)


def _gate(barrier: str) -> str:
    return f"gate: {{site: s1, id: g1}}\ndevices:\n  barrier:\n{barrier}"


def test_config_selects_modbus_and_builds() -> None:
    cfg = parse_config(_gate("    type: modbus_rtu\n    port: /dev/ttyUSB0\n    baudrate: 9600\n"))
    b = build(cfg.devices.barrier, cfg)  # type: ignore[arg-type]
    assert (
        isinstance(b, ModbusBarrier) and b.cfg.baudrate == 9600 and b.map.model == "generic-2door"
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("    type: modbus_rtu\n", "devices.barrier.port: Field required"),
        ("    type: modbus_rtu\n    port: /dev/x\n    slave_id: 0\n", "slave_id"),
        ("    type: modbus_rtu\n    port: /dev/x\n    parity: X\n", "parity"),
        ("    type: modbus_rtu\n    port: /dev/x\n    baud: 9600\n", "baud: unknown key"),
        ("    type: modbus_rtu\n    port: /dev/x\n    watchdog_s: 0.1\n", "watchdog_s"),
        ("    type: modbus_rtu\n    port: /dev/x\n    backoff_min_s: 9\n", "backoff_min_s"),
        ("    type: modbus_rtu\n    port: /dev/x\n    model: ../etc\n", "model"),
    ],
)
def test_bad_barrier_config(body: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(_gate(body))


def test_build_with_unknown_model_fails_early() -> None:
    cfg = GateConfig.model_validate(
        {
            "gate": {"site": "s1", "id": "g1"},
            "devices": {"barrier": {"type": "modbus_rtu", "port": "/dev/x", "model": "nosuch"}},
        }
    )
    with pytest.raises(DeviceError, match="nosuch"):
        build(cfg.devices.barrier, cfg)  # type: ignore[arg-type]


async def test_a_busy_reply_to_a_command_is_a_fault_that_clears(
    sim: SimController, rec: Recorder
) -> None:
    """A controller that answers one door command with an exception (06 busy) fails that
    command: the daemon reports the fault, the lane goes out of service. Nothing said
    when the controller took that door's commands again, so the fault stayed until a
    restart; the next command to the same door that is carried out says LinkRestored."""
    b = ModbusBarrier(make_cfg(sim.port), load_regmap("generic-2door"))
    await b.start(rec)
    real_action = sim._action
    busy = {"left": 1}

    async def busy_once(function_code, *args):  # type: ignore[no-untyped-def]
        from pymodbus.constants import ExcCodes

        if function_code == 5 and busy["left"]:
            busy["left"] -= 1
            return ExcCodes.DEVICE_BUSY
        return await real_action(function_code, *args)

    try:
        await rec.wait_for(lambda e: isinstance(e, DoorChanged))
        sim._server.context.devices[1].action = busy_once  # type: ignore[union-attr]
        with pytest.raises(DeviceError, match="not delivered"):
            await b.open(Door.EXIT)
        assert not rec.of(LinkRestored)
        await b.close_door(Door.EXIT)  # the core closes both doors out of service
        await rec.wait_for(lambda e: isinstance(e, LinkRestored))
    finally:
        sim._server.context.devices[1].action = real_action  # type: ignore[union-attr]
        await b.close()
