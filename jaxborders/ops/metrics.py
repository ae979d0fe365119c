"""Shift-invariance metrics."""

__all__: list[str] = []
