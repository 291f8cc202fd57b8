"""The chip protocol's own error types: everything the ICAO code raises is one of these."""

from __future__ import annotations

from drivers.errors import PeerError
from gate.reasons import ReasonCode


class ICAOError(PeerError):
    """The chip (or a file read from it) broke ICAO 9303; ``reason`` is the gate's code."""

    reason: ReasonCode = ReasonCode.CHIP_MALFORMED


class TLVError(ICAOError):
    """Malformed, truncated or overflowing BER-TLV."""


class LDSError(ICAOError):
    """An LDS file that parses as TLV but is not what 9303 part 10 says it is."""


class SODError(ICAOError):
    """EF.SOD that is not a CMS SignedData over an LDSSecurityObject."""


class SMError(ICAOError):
    """Secure messaging failure: wrong MAC, missing data object, bad padding."""

    reason = ReasonCode.CHIP_SM_ERROR


class AccessError(ICAOError):
    """BAC or PACE refused (wrong MRZ key) or its cryptogram does not verify."""

    reason = ReasonCode.CHIP_ACCESS_DENIED


class StatusError(ICAOError):
    """The card answered a status word other than 9000 (or a tolerated warning)."""

    reason = ReasonCode.CHIP_READ_ERROR

    def __init__(self, sw: int, what: str = "") -> None:
        super().__init__(f"{what}: status {sw:04X}" if what else f"status {sw:04X}")
        self.sw = sw


class UnsupportedKey(ICAOError):
    """A DG14/DG15 key whose type, curve or parameters the reader cannot use: the clone
    check cannot be done, which is neither a pass nor a clone verdict."""

    reason = ReasonCode.CHIP_CLONE_CHECK_UNSUPPORTED
