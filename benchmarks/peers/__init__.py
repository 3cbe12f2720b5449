"""Minimal broadcast servers run beside the hub, on the same load, as a yardstick."""
