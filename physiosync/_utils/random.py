"""Seeds and content fingerprints."""

from __future__ import annotations

import hashlib
import random

import numpy as np

__all__ = ["derive_seed", "fingerprint", "legacy_seed", "set_random_seeds"]


def derive_seed(*parts) -> int:
    """A 63-bit seed derived deterministically from *parts* (ints or strings)."""
    blob = "/".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.sha256(blob).digest()[:8], "little") >> 1


def legacy_seed(seed: int) -> int:
    """*seed* as a seed of the 32-bit legacy RNGs (scikit-learn's ``random_state``).

    ``np.random.RandomState``, and with it scikit-learn, accept seeds below 2**32 only,
    while a physiosync seed may be any integer in [0, 2**63). A seed below 2**32 is
    returned unchanged (its results stay what they were); a larger one is mapped
    deterministically to 32 bits through :class:`numpy.random.SeedSequence`.
    """
    seed = int(seed)
    if 0 <= seed < 2**32:
        return seed
    return int(np.random.SeedSequence(seed).generate_state(1, np.uint32)[0])


def fingerprint(*arrays_or_values) -> str:
    """SHA-256 of arrays (their bytes, dtype and shape) and plain values, in order."""
    h = hashlib.sha256()
    for a in arrays_or_values:
        if isinstance(a, np.ndarray):
            h.update(repr((a.dtype.str, a.shape)).encode())
            h.update(np.ascontiguousarray(a).tobytes())
        else:
            h.update(repr(a).encode())
    return h.hexdigest()


def set_random_seeds(seed: int) -> None:
    """Seed Python's :mod:`random`, NumPy's legacy global RNG and torch (all devices)."""
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
