"""The virtual chip with Extended Access Control: DG3 fingerprints behind terminal
authentication v1 (BSI TR-03110, ICAO 9303-11), on top of ``sim/chip.py``'s chip.

Kept apart from ``VirtualChip`` (a subclass that only adds): EF.CVCA naming the CVCA keys
the chip trusts, DG3 signed into the SOD, and the card's side of TA: MSE:Set DST and
PSO:Verify Certificate walk the chain (a link certificate replaces the trusted CVCA key),
the chip's date moves forward with CVCA and domestic DV certificates and a certificate
expired before that date is refused, MSE:Set AT picks the IS certificate, EXTERNAL
AUTHENTICATE checks its signature over ``ID_PICC || r_PICC || Comp(PK_PCD)``. DG3 and
DG4 answer 6982 until then, and only to the rights the chain's CHATs grant together.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography.hazmat.primitives.serialization import Encoding

from drivers.icao import cbeff, cvc, dh, lds, sod, ta, tlv
from drivers.icao.apdu import APDU
from drivers.icao.errors import ICAOError
from sim import eac_pki
from sim.chip import VirtualChip

SW_REFUSED = 0x6300
FID_DG3 = lds.DG[3][0]
FID_DG4 = lds.DG[4][0]


@dataclass(frozen=True)
class EACFaults:
    refuse_ta: bool = False  # EXTERNAL AUTHENTICATE always fails (a chip that refuses us)
    old_cvca: bool = False  # the chip trusts only the previous CVCA key: needs the link
    unknown_cvca: bool = False  # the chip trusts a CVCA the gate has no chain to
    short_challenge: bool = False  # GET CHALLENGE after TA's Set AT answers 3 bytes
    dg3_not_signed: bool = False  # DG3 on the chip differs from the one the SOD hashes
    malformed_dg3: bool = False  # DG3 signed into the SOD but not CBEFF inside


def synthetic_thumb(seed: int = 0, size: int | None = None) -> bytes:
    """Impression 0 (the enrolment capture) of synthetic finger ``seed`` as JPEG 2000 at
    500 ppi (``sim/fingerprints.py``; synthetic, not a real print); ``size`` crops a
    centred square of that side, for small test inputs."""
    from sim import fingerprints

    img = fingerprints.impression(seed, 0)
    if size is not None:
        h, w = img.shape
        top, left = max(0, (h - size) // 2), max(0, (w - size) // 2)
        img = img[top : top + size, left : left + size]
    return fingerprints.encode(img, "JPEG2000")


def default_fingers(seed: int = 0) -> list[cbeff.FingerImage]:
    """Right and left thumbs (fingers ``2 * seed`` and ``2 * seed + 1`` of the synthetic
    set, so a seed picks a traveller), JPEG 2000 at 500 ppi."""
    from sim import fingerprints

    h, w = fingerprints.IMPRESSION_SHAPE
    return [
        cbeff.FingerImage(pos, 1, 80, 0, w, h, 500, 8, "jpeg2000", synthetic_thumb(2 * seed + i))
        for i, pos in enumerate((1, 6))
    ]


class EACChip(VirtualChip):
    """``VirtualChip`` plus EAC; takes ``VirtualChip``'s arguments and ``eac_faults``."""

    def __init__(
        self,
        *args: object,
        eac_faults: EACFaults | None = None,
        fingers: list[cbeff.FingerImage] | None = None,
        chip_date: dt.date = dt.date(2025, 6, 1),
        eac_kind: str = "ecdsa",
        **kwargs: object,
    ) -> None:
        self.eac_faults = eac_faults or EACFaults()
        self.fingers = fingers if fingers is not None else default_fingers()
        self.pki = eac_pki.make(eac_kind)
        self.chip_date = chip_date  # the date of personalisation, moved on by TA
        f = self.eac_faults
        if f.unknown_cvca:
            other = eac_pki.key("another state's cvca")
            root = eac_pki.issue(
                other, "ZZCVCA00001", other, "ZZCVCA00001", cvc.ROLE_CVCA,
                dt.date(2024, 1, 1), dt.date(2036, 1, 1),
            )  # fmt: skip
        else:
            root = self.pki.cvca_old if f.old_cvca else self.pki.cvca
        self.trust_points: dict[str, cvc.CVPublicKey] = {root.chr: root.key}
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    # --- files -----------------------------------------------------------------------------

    def _build(self, portrait: bytes) -> None:
        super()._build(portrait)
        dgs = {n: self.files[fid] for n, (fid, _) in lds.DG.items() if fid in self.files}
        dgs[3] = cbeff.build_dg3(self.fingers)
        if self.eac_faults.malformed_dg3:
            dgs[3] = dgs[3].replace(cbeff.FIR, b"XXX\x00")
        ds_der = self.issuer.ds.public_bytes(Encoding.DER)
        self.files[FID_DG3] = dgs[3]
        if self.eac_faults.dg3_not_signed:
            self.files[FID_DG3] = cbeff.build_dg3(default_fingers(seed=7))
        self.files[lds.FID_COM] = lds.build_com(sorted(dgs))
        self.files[lds.FID_SOD] = sod.build_sod(
            dgs, ds_der, self.issuer.sign, self.issuer.cms_signature_algorithm, "sha256"
        )
        cars = b"".join(tlv.encode(0x42, c.encode()) for c in self.trust_points)
        self.ef_cvca = cars.ljust(36, b"\x00")

    def reset(self) -> None:
        super().reset()
        self.ta_key: cvc.CVPublicKey | None = None  # the key MSE:Set DST chose
        self.ta_domain: cvc.CVPublicKey | None = None
        self.ta_certs: dict[str, tuple[cvc.CVC, cvc.CVPublicKey]] = {}
        self.ta_rights = 0xFF
        self.ta_is: cvc.CVC | None = None
        self.ta_done = False
        self.pk_pcd_comp = b""

    def _select(self, c: APDU, secure: bool) -> tuple[bytes, int]:
        if self.app and c.p1 == 0x02 and c.data == tlv_fid(lds.FID_CARD_ACCESS):
            if not secure:
                return b"", 0x6982
            self.current = -1  # EF.CVCA: the same FID, inside the application
            return b"", 0x9000
        return super()._select(c, secure)

    def _file(self, secure: bool) -> bytes | int:
        if self.current == -1:
            return self.ef_cvca if secure else 0x6982
        if self.current in (FID_DG3, FID_DG4):
            dg = 3 if self.current == FID_DG3 else 4
            if not (secure and self.ta_done and self.ta_rights & {3: 1, 4: 2}[dg]):
                return 0x6982
        return super()._file(secure)

    def _read(self, c: APDU, secure: bool) -> tuple[bytes, int]:
        sfi_fid = 0x0100 | (c.p1 & 0x1F)
        if c.p1 & 0x80 and sfi_fid in (FID_DG3, FID_DG4) and not self.ta_done:
            return b"", 0x6982  # by short file identifier: the same rule as by SELECT
        return super()._read(c, secure)

    # --- terminal authentication -------------------------------------------------------------

    def dispatch(self, c: APDU, secure: bool) -> tuple[bytes, int]:
        try:
            if c.ins == 0x22 and c.p1 == 0x81:
                return self._ta_mse(c, secure)
            if c.ins == 0x2A and (c.p1, c.p2) == (0x00, 0xBE):
                return self._ta_verify(c, secure)
            if c.ins == 0x82 and secure and self.pk_pcd_comp:
                return self._ta_external(c)
            if c.ins == 0x84 and self.ta_is is not None and self.eac_faults.short_challenge:
                return b"\x01\x02\x03", 0x9000
        except ICAOError:
            return b"", 0x6A80
        return super().dispatch(c, secure)

    def _ca_agree(self, point: bytes, cipher: str) -> bytes:
        out = super()._ca_agree(point, cipher)
        if self.ca_kind == "dh":  # Comp(): SHA-1 of a DH value, else the x-coordinate
            self.pk_pcd_comp = dh.comp(int.from_bytes(point, "big"))
        else:
            self.pk_pcd_comp = point[1 : 1 + self.ca_curve.size]
        return out

    def _ta_mse(self, c: APDU, secure: bool) -> tuple[bytes, int]:
        if not (secure and self.pk_pcd_comp):
            return b"", 0x6982  # TA comes after chip authentication
        ref = tlv.children(c.data).get(0x83, b"").decode("ascii", "replace")
        if c.p2 == 0xB6:  # Set DST: the key the next certificate is verified with
            if ref in self.trust_points:
                self.ta_key = self.ta_domain = self.trust_points[ref]
                return b"", 0x9000
            if ref in self.ta_certs:
                self.ta_key, self.ta_domain = self.ta_certs[ref][0].key, self.ta_certs[ref][1]
                return b"", 0x9000
            return b"", 0x6A88
        if c.p2 == 0xA4:  # Set AT: the IS certificate whose key signs the challenge
            cert = self.ta_certs.get(ref)
            if cert is None or cert[0].chat.role != cvc.ROLE_IS:
                return b"", 0x6A88
            self.ta_is = cert[0]
            return b"", 0x9000
        return b"", 0x6A86

    def _ta_verify(self, c: APDU, secure: bool) -> tuple[bytes, int]:
        if not secure or self.ta_key is None or self.ta_domain is None:
            return b"", 0x6985
        cert = cvc.parse(tlv.encode(0x7F21, c.data))
        key, domain = self.ta_key, self.ta_domain
        self.ta_key = None
        if not cvc.verify(cert, key, domain):
            return b"", SW_REFUSED
        if cert.expiry < self.chip_date:
            return b"", SW_REFUSED  # expired by the chip's own notion of today
        role = cert.chat.role
        if role in (cvc.ROLE_CVCA, cvc.ROLE_DV_DOMESTIC) and cert.effective > self.chip_date:
            self.chip_date = cert.effective
        if cert.is_link:  # the new CVCA key becomes a trust point
            self.trust_points[cert.chr] = cert.key
            return b"", 0x9000
        self.ta_rights &= cert.chat.rights[-1]
        self.ta_certs[cert.chr] = (cert, domain if not cert.key.has_domain else cert.key)
        return b"", 0x9000

    def _ta_external(self, c: APDU) -> tuple[bytes, int]:
        cert, r_picc = self.ta_is, self.rnd_icc
        self.rnd_icc = None
        if cert is None or r_picc is None or self.eac_faults.refuse_ta:
            return b"", SW_REFUSED
        data = self._id_picc() + r_picc + self.pk_pcd_comp
        domain = self.ta_certs[cert.chr][1]
        if not cvc.verify_signature(cert.key, data, c.data, domain):
            return b"", SW_REFUSED
        self.ta_done = True
        return b"", 0x9000

    def _id_picc(self) -> bytes:
        """Comp() of our ephemeral PACE key after PACE, else document number + digit."""
        p = self.pace
        if p is not None and p.stage == 5:
            return p.grp.comp(p.pk)
        return ta.id_picc(self.mrz_info)


def tlv_fid(fid: int) -> bytes:
    return fid.to_bytes(2, "big")


def main(argv: list[str] | None = None) -> int:
    """``python -m sim.chip_eac``: an EAC passport (DG3 behind TA) on vpcd until stopped;
    ``--trust-out DIR`` writes the gate's CSCA (``DIR/csca``) and EAC trust folder
    (``DIR/eac``)."""
    import argparse
    from pathlib import Path

    from sim.chip import VPCD_PORT, serve

    ap = argparse.ArgumentParser(prog="python -m sim.chip_eac", description=main.__doc__)
    ap.add_argument("--port", type=int, default=VPCD_PORT)
    ap.add_argument("--no-pace", action="store_true")
    ap.add_argument("--short", action="store_true", help="no extended length")
    ap.add_argument("--trust-out", type=Path)
    ap.add_argument("--fault", action="append", default=[], choices=list(EACFaults.__annotations__))
    a = ap.parse_args(argv)
    chip = EACChip(
        pace=not a.no_pace, extended=not a.short, eac_faults=EACFaults(**{f: True for f in a.fault})
    )
    if a.trust_out:
        (a.trust_out / "csca").mkdir(parents=True, exist_ok=True)
        der = chip.trusted.csca.public_bytes(Encoding.DER)
        (a.trust_out / "csca" / "csca.der").write_bytes(der)
        eac_pki.write_trust(a.trust_out / "eac")
    return serve(chip, a.port, f"EAC virtual chip on vpcd port {a.port}")


if __name__ == "__main__":
    raise SystemExit(main())
