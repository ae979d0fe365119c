"""Benchmarks (not tests): ``python -m benchmarks.ops`` and ``python -m benchmarks.models``."""
