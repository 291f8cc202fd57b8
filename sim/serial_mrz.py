"""A text-sending document reader on a pty: the simulator's side of ``drivers/serial_mrz.py``.

``port`` is the pty's device path, which the gate's config names exactly as it would a
reader's ``/dev/ttyUSB0``; ``send`` writes a document as the reader would (keyboard-wedge
lines ended by a blank line, or an STX ... ETX frame), and ``write`` puts any bytes on
the line (noise, half documents) for tests.
"""

from __future__ import annotations

import contextlib
import os
import tty
from collections.abc import Sequence

STX, ETX = b"\x02", b"\x03"


class SerialMrzReaderSim:
    def __init__(self) -> None:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # bytes as sent: no CR -> LF, no echo back to the reader
        self.port = os.ttyname(self._slave)

    def send(self, lines: Sequence[str], *, framed: bool = False, eol: bytes = b"\r\n") -> None:
        body = eol.join(line.encode("ascii", "replace") for line in lines) + eol
        self.write(STX + body + ETX if framed else body + eol)

    def write(self, data: bytes) -> None:
        os.write(self._master, data)

    def close(self) -> None:
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __enter__(self) -> SerialMrzReaderSim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
