"""Small helpers: devices and seeds."""

from __future__ import annotations

import hashlib
import random

import numpy as np

from .exceptions import PhysioSyncError

__all__ = ["resolve_device", "set_random_seeds", "derive_seed"]


def resolve_device(device=None):
    """Turn ``None``/``"auto"``/a name/a :class:`torch.device` into a usable device.

    ``None`` and ``"auto"`` pick CUDA when available, then Apple MPS, then the CPU.
    Asking for an unavailable device raises a :class:`PhysioSyncError`.
    """
    import torch

    if isinstance(device, torch.device):
        return device
    if device in (None, "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise PhysioSyncError(f"Unknown device {device!r}: {err}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise PhysioSyncError(f"device={device!r} was requested but CUDA is not available.")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) is not None
                                  and torch.backends.mps.is_available()):
        raise PhysioSyncError(f"device={device!r} was requested but MPS is not available.")
    return dev


def derive_seed(*parts) -> int:
    """A 63-bit seed derived deterministically from *parts* (ints or strings)."""
    blob = "/".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") >> 1


def set_random_seeds(seed: int) -> None:
    """Seed Python's :mod:`random`, NumPy's legacy global RNG and torch (all devices)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
