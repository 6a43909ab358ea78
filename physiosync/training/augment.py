"""On-the-fly augmentation of PhysioSync pre-training.

The reference materialises six augmented copies of the training set up front (about
20 GB on DEAP). Here each batch is augmented on the fly, with fresh random draws at
every step, on whatever device the batch lives. The six kinds, drawn uniformly:

0. identity;
1. amplitude scaling by alpha ~ U(0.7, 0.8);
2. scaling by alpha ~ U(1.2, 1.3);
3. additive white Gaussian noise at 5 dB SNR (variance of the whole window);
4. = 1 + noise;  5. = 2 + noise.
"""

from __future__ import annotations

import torch

__all__ = ["augment", "N_KINDS"]

N_KINDS = 6
_LOW = (0.7, 0.8)
_HIGH = (1.2, 1.3)


def augment(x: torch.Tensor, kind: torch.Tensor, *, snr_db: float = 5.0,
            generator: torch.Generator | None = None) -> torch.Tensor:
    """Augment a batch of windows.

    Parameters
    ----------
    x : Tensor, shape (K, n_channels, n_times)
        Windows (not modified).
    kind : LongTensor, shape (K,)
        Augmentation kind of each row, 0..5 (see module docstring).
    snr_db : float
        Signal-to-noise ratio of the additive noise.
    generator : torch.Generator | None
        Source of randomness (on the CPU); draws are moved to ``x.device``.

    Returns
    -------
    out : Tensor, shape (K, n_channels, n_times)
    """
    k = x.shape[0]
    kind = kind.to("cpu")
    u = torch.rand(k, generator=generator)
    alpha = torch.ones(k)
    low = (kind == 1) | (kind == 4)
    high = (kind == 2) | (kind == 5)
    alpha[low] = _LOW[0] + (_LOW[1] - _LOW[0]) * u[low]
    alpha[high] = _HIGH[0] + (_HIGH[1] - _HIGH[0]) * u[high]
    noisy = (kind >= 3).to(x.dtype)
    noise = torch.randn(x.shape, generator=generator).to(device=x.device, dtype=x.dtype)
    out = x * alpha.to(device=x.device, dtype=x.dtype).view(k, 1, 1)
    # g = sqrt(10^(-SNR/10) * Var(signal) / Var(noise)), variances over the whole window.
    var_x = out.flatten(1).var(dim=1, unbiased=False)
    var_n = noise.flatten(1).var(dim=1, unbiased=False).clamp_min(1e-12)
    gain = torch.sqrt(10.0 ** (-snr_db / 10.0) * var_x / var_n)
    return out + (gain * noisy.to(x.device)).view(k, 1, 1) * noise
