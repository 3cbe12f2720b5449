"""Benchmarks of the hub: fan-out throughput, latency, connection scale, request rate."""
