"""The thumbprint channel's devices: a capture-only reader (libfprint, or the simulator's),
a minutiae matcher from NIST's NBIS, and the verifier the daemon calls (``verifier.py``)."""
