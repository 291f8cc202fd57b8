"""ICAO 9303 machine-readable zones: parse (with OCR repair) and build; pure, no clock.

``parse_mrz(lines, today=...)`` gives a ``gate.results.MrzRecord`` with every failed
check as a reason code; ``build_mrz`` / ``build_td3`` / ``build_td1`` / ``build_td2`` make
valid lines from fields; ``mrz_information`` is the BAC/PACE key input.
"""

from gate.mrz.build import build_mrz, build_td1, build_td2, build_td3, clean
from gate.mrz.checkdigit import check_digit
from gate.mrz.layout import LAYOUTS, detect
from gate.mrz.parse import mrz_information, parse_mrz

__all__ = [
    "LAYOUTS",
    "build_mrz",
    "build_td1",
    "build_td2",
    "build_td3",
    "check_digit",
    "clean",
    "detect",
    "mrz_information",
    "parse_mrz",
]
