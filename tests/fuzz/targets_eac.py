"""Fuzz targets of EAC's parsers: card-verifiable certificates (from a trust folder, and
the chain checked against the CVCA key as the gate does), EF.CVCA, and DG3 with its
ISO 19794-4 finger records down to the decoded pixels (JPEG 2000 through Pillow, WSQ
through NBIS's decoder in the ``wsq`` package).

Seeds: the BSI test PKI's CVCA (``tests/chip/test_cvc.py``), the virtual chip's test PKI
(``sim/eac_pki.py``: CVCA, link, DV, IS) and its DG3 with JPEG 2000 and WSQ thumbs. A
reasoned refusal is the ``ICAOError`` family.
"""

from __future__ import annotations

import io
from functools import lru_cache

from drivers.icao import cbeff, cvc, ta
from drivers.icao.errors import ICAOError
from tests.fuzz.harness import Target
from tests.fuzz.targets_chip import tlv_mutate

REFUSED = (ICAOError,)


@lru_cache(maxsize=1)
def _pki():  # type: ignore[no-untyped-def]
    from sim import eac_pki

    return eac_pki.make()


def _cvc_seeds() -> list[bytes]:
    from tests.chip.test_cvc import BSI_CVCA

    return [BSI_CVCA, *(c.raw for c in _pki().certificates().values())]


def _cvc(data: bytes) -> None:
    cert = cvc.parse(data)
    root = _pki().cvca.key
    issuer = cert.key if cert.chat.role == cvc.ROLE_CVCA else root
    cvc.verify(cert, issuer, root)
    cert.chat.may_read(3)
    cert.valid_on(cert.effective)


def _ef_cvca(data: bytes) -> None:
    ta.parse_ef_cvca(data)


@lru_cache(maxsize=1)
def _dg3_seeds() -> list[bytes]:
    import wsq  # noqa: F401
    from PIL import Image

    from sim.chip_eac import default_fingers, synthetic_thumb

    fingers = default_fingers()
    im = Image.open(io.BytesIO(synthetic_thumb(5, 96))).convert("L")
    buf = io.BytesIO()
    im.save(buf, "WSQ")
    wsq_f = cbeff.FingerImage(1, 1, 60, 0, 96, 96, 500, 8, "wsq", buf.getvalue())
    for f in cbeff.parse_dg3(cbeff.build_dg3([wsq_f])):  # warm the decoders up
        cbeff.decode(f)
    return [cbeff.build_dg3(fingers[:1]), cbeff.build_dg3([wsq_f])]


def _dg3(data: bytes) -> None:
    for f in cbeff.parse_dg3(data):
        cbeff.decode(f)


TARGETS: list[Target] = [
    Target("eac_cvc", _cvc_seeds, _cvc, REFUSED, tlv_mutate),
    Target(
        "eac_ef_cvca",
        lambda: [b"\x42\x0bUTCVCA00002".ljust(36, b"\x00"), b"\x42\x02UT\x42\x02ZZ"],
        _ef_cvca,
        REFUSED,
        tlv_mutate,
    ),
    Target("eac_dg3", _dg3_seeds, _dg3, REFUSED, tlv_mutate),
]
