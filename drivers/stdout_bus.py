"""An EventBus that prints each event as one JSON line on stdout.

Used by ``autogate run --sim`` and for debugging a gate without a broker. It has no
command channel of its own; the simulated hall injects officer commands through the
same ``emit`` a real bus would use after authenticating them.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from drivers.interfaces import Emit


class StdoutBus:
    name = "bus"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout

    async def start(self, emit: Emit) -> None:
        self.emit = emit

    async def close(self) -> None:
        self.stream.flush()

    async def publish(self, topic_leaf: str, payload: dict[str, Any], retain: bool = False) -> None:
        line = json.dumps({"topic": topic_leaf, **payload}, sort_keys=True, default=str)
        self.stream.write(line + "\n")
        self.stream.flush()

    async def publish_transient(self, topic_leaf: str, body: bytes) -> bool:
        """Images are not printed: a line says one was sent and how big it was."""
        self.stream.write(json.dumps({"topic": topic_leaf, "bytes": len(body)}) + "\n")
        self.stream.flush()
        return True
