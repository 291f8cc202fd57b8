"""The throw-away PostgreSQL cluster now lives in ``sim/postgres.py`` (the fleet starts one too)."""

from sim.postgres import Cluster, PgError

__all__ = ["Cluster", "PgError"]
