"""The officers' console: a Starlette app that watches a hall of gates over MQTT."""
