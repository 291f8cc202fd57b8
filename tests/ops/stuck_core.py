"""Run ``autogate`` with a core that hangs once a trigger file appears (watchdog test).

Usage: python -m tests.ops.stuck_core TRIGGER autogate-args...

The hang is a blocking call inside ``machine.step``, as a runaway rule or a blocking
call slipped into the core would be: it freezes the core loop, and with it the event
loop. Nothing in the production code knows about this harness.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from gate import machine


def main() -> int:
    trigger = Path(sys.argv[1])
    real_step = machine.step

    def step(gate, event, now):  # type: ignore[no-untyped-def]
        if trigger.exists():
            time.sleep(3600)
        return real_step(gate, event, now)

    machine.step = step  # type: ignore[assignment]
    from autogate.cli import main as cli_main

    return cli_main(sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
