"""Validation of parameter values against their declared allowed values."""

from __future__ import annotations

from ..exceptions import PhysioSyncError

__all__ = ["check_option"]


def check_option(name: str, value, allowed) -> None:
    """Raise a :class:`PhysioSyncError` naming *name* unless *value* is one of *allowed*."""
    if value not in allowed:
        raise PhysioSyncError(
            f"Invalid {name} {value!r}; allowed values are {', '.join(map(repr, allowed))}.")
