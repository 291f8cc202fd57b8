"""``autogate ingest``: the central crossing record fed by the fleet's MQTT events."""
