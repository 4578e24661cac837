"""Checks for the exercises of one notebook (filled in by the notebook's owner)."""

from __future__ import annotations

__all__: list[str] = []
