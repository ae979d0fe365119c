"""Shifts of images: circular, crop and inside a zero canvas."""

__all__: list[str] = []
