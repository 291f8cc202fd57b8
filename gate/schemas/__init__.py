"""Packaged JSON Schemas of the MQTT messages (see gate/events.py)."""
