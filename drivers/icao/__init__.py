"""ICAO Doc 9303 parts 10 and 11 as code: TLV, secure messaging, BAC, PACE, LDS, PA, AA.

Every module works on bytes and a ``transmit(apdu) -> response`` callable, so the same
code runs over pyscard, against the virtual chip in-process, or on recorded vectors.
"""
