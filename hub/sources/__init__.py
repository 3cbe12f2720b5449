"""Event sources: where the hub's stream messages come from."""
