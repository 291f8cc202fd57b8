"""Which officer commands the gate accepts right now, and why it refuses the others.

One rule, two readers. ``gate.machine`` asks ``refusal()`` before it carries out any
officer command (a refusal becomes the command's negative ack, in these words), and the
``gate.status`` payload lists ``accepted()`` so the console offers exactly those buttons.
Because both read the same function, a button the console shows is a command the gate
will carry out, and the console keeps no second list of "commands per state".

Pure and import-light: it reads only the facts below, which ``machine.Gate`` has.
States are compared by name (``machine.State`` is a ``StrEnum``), so this module does
not import the machine that imports it.
"""

from __future__ import annotations

from typing import Protocol

from gate.inputs import Command


class Facts(Protocol):
    """What the rule reads of a gate (``gate.machine.Gate`` satisfies it)."""

    @property
    def state(self) -> str: ...

    @property
    def txn(self) -> object | None: ...

    @property
    def faults(self) -> frozenset[str]: ...

    @property
    def emergency(self) -> bool: ...

    @property
    def tamper(self) -> bool: ...

    @property
    def occupancy(self) -> int: ...


# the states whose own rules handle referral and alarm commands (machine.RULES)
_REFERRAL = {Command.RELEASE, Command.SEND_BACK}


def refusal(gate: Facts, command: Command) -> str | None:
    """Why ``gate`` refuses ``command`` now (the ack's detail), or None if it accepts it."""
    state = str(gate.state)
    if command is Command.OUT_OF_SERVICE:
        return "emergency active" if state == "EMERGENCY" else None
    if command is Command.IN_SERVICE:
        if state != "OUT_OF_SERVICE":
            return f"gate is {state}, not out of service"
        if gate.faults or gate.emergency or gate.tamper:
            why = ", ".join(sorted(gate.faults)) or ("emergency" if gate.emergency else "tamper")
            return f"not recovered: {why}"
        if gate.occupancy:
            return "mantrap not empty"
        return None
    if state == "REFERRED" and command in _REFERRAL:
        if command is Command.RELEASE and gate.txn is None:
            return "no traveller to release"
        return None
    if state == "ALARM" and command is Command.RESET_ALARM:
        return "tamper input still active" if gate.tamper else None
    return f"{command.value} not applicable in {state}"


def accepted(gate: Facts) -> tuple[Command, ...]:
    """The commands ``gate`` carries out now, in ``Command`` order."""
    return tuple(c for c in Command if refusal(gate, c) is None)
