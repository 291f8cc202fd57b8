"""Live face verification: detection, quality, presentation-attack detection, 1:1 match.

The pieces are small modules with one job each; ``verifier.FaceVerifier`` strings them
together behind ``drivers.interfaces.FaceVerifier``.
"""
