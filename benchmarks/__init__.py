"""Benchmarks and soak test of consul_streams against the embedded dev agent (not shipped)."""
