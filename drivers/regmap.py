"""The gate controller's Modbus register map, as data (one YAML file per gate model).

Klipper-style: the wire layout is declared, not coded, so a new controller model is a
new file in ``config/barrier-models/`` and both the driver (``drivers/barrier.py``) and
the simulated controller (``sim/barrier.py``) derive from the same map.
Addresses are 0-based PDU addresses as sent on the wire (not the 1-based "40001" style).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from drivers.errors import DeviceError
from gate.resources import shipped_dir
from gate.yamlfile import ConfigError, parse_mapping, read_text

MODELS_DIR = shipped_dir("config/barrier-models")

Address = Field(ge=0, le=0xFFFF)


def _opt(description: str = "") -> int | None:
    return Field(None, ge=0, le=0xFFFF, description=description)  # type: ignore[no-any-return]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def _addresses(self) -> list[int]:
        """Every address this table uses (unset optional entries left out)."""
        out: list[int] = []
        for value in self.__dict__.values():
            if isinstance(value, int):
                out.append(value)
            elif isinstance(value, list):
                out.extend(value)
        return out

    @model_validator(mode="after")
    def _no_overlap(self):  # type: ignore[no-untyped-def]
        addrs = self._addresses()
        dup = sorted({a for a in addrs if addrs.count(a) > 1})
        if dup:
            raise ValueError(f"address used twice in one table: {dup}")
        return self


class Coils(_Strict):
    entry_open: int = Address
    exit_open: int = Address
    lamp_green: int | None = _opt()
    lamp_red: int | None = _opt()
    buzzer: int | None = _opt()


class DiscreteInputs(_Strict):
    entry_closed: int = Address
    exit_closed: int = Address
    entry_opened: int | None = _opt("open limit switch")
    exit_opened: int | None = _opt()
    beams: list[int] = Field(min_length=1, description="presence beams, entry side first")
    emergency: int = Address
    tamper: int = Address


class InputRegisters(_Strict):
    people_count: int | None = _opt()
    firmware_version: int = Address
    boot_count: int | None = _opt()
    status: int | None = _opt()


class HoldingRegisters(_Strict):
    heartbeat: int = Address
    watchdog_ds: int | None = _opt()


class RegisterMap(_Strict):
    model: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    description: str = ""
    coils: Coils
    discrete_inputs: DiscreteInputs
    input_registers: InputRegisters
    holding_registers: HoldingRegisters

    def _addresses(self) -> list[int]:  # tables are separate address spaces
        return []

    @staticmethod
    def span(addresses: list[int]) -> tuple[int, int]:
        """(first address, count) of the smallest block covering ``addresses``."""
        return min(addresses), max(addresses) - min(addresses) + 1

    def di_span(self) -> tuple[int, int]:
        return self.span(self.discrete_inputs._addresses())

    def ir_span(self) -> tuple[int, int]:
        return self.span(self.input_registers._addresses())


def load_regmap(name: str | None = None, path: str | Path | None = None) -> RegisterMap:
    """Load a register map by model name (``config/barrier-models/<name>.yaml``) or path."""
    if path is None:
        if not name:
            raise DeviceError("barrier", "no register map: give a model name or a file")
        path = MODELS_DIR / f"{name}.yaml"
    path = Path(path)
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in MODELS_DIR.glob("*.yaml")))
        raise DeviceError("barrier", f"register map {path} not found (known: {known})")
    try:  # the shared safe loader: bad bytes, tags, dates, nesting are one line
        return parse_regmap(read_text(path), path)
    except ConfigError as exc:
        raise DeviceError("barrier", f"register map {exc}") from None


def parse_regmap(text: str, path: str | Path = "<register map>") -> RegisterMap:
    """Validate a register map's YAML text; errors are ``DeviceError`` naming the field."""
    try:
        data = parse_mapping(text, path)
    except ConfigError as exc:
        raise DeviceError("barrier", f"register map {exc}") from None
    try:
        return RegisterMap.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        raise DeviceError("barrier", f"register map {path}: {where}: {err['msg']}") from None
