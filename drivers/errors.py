"""Typed device errors. ``DeviceError`` is ours or the device's failure; ``PeerError``
is a peer that answered wrongly (a malformed chip response, a forged command)."""

from __future__ import annotations


class DeviceError(Exception):
    """A device could not do what was asked (absent, timed out, link down)."""

    def __init__(self, device: str, detail: str) -> None:
        super().__init__(f"{device}: {detail}")
        self.device = device
        self.detail = detail


class PeerError(Exception):
    """The other side of a protocol broke it (bad frame, bad MAC, bad signature)."""
