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


def _repeated(draws: torch.Tensor, repeats: int) -> torch.Tensor:
    """*draws* repeated *repeats* times along the first axis (as they are for one)."""
    return draws if repeats == 1 else draws.repeat(repeats, *(1,) * (draws.ndim - 1))


def augment(x: torch.Tensor, kind: torch.Tensor, *, snr_db: float = 5.0,
            generator: torch.Generator | None = None, repeats: int = 1) -> torch.Tensor:
    """Augment a batch of windows.

    Every draw is made on the generator's device, and nothing is read back to the
    host, so a batch on a GPU is augmented without leaving it (with a generator on
    that GPU). On the CPU the draws, and so the result, are those of a CPU generator
    with the same seed.

    Parameters
    ----------
    x : Tensor, shape (K, n_channels, n_times)
        Windows (not modified).
    kind : LongTensor, shape (K,)
        Augmentation kind of each row, 0..5 (see module docstring).
    snr_db : float
        Signal-to-noise ratio of the additive noise.
    generator : torch.Generator | None
        Source of randomness; its device is where the draws are made (they are moved
        to ``x.device`` if it differs). ``None``: the default generator of the CPU.
    repeats : int
        The rows are *repeats* equal blocks (e.g. the folds of a fold-batched step)
        that get the same random draws: those of one block, drawn once and repeated,
        as *repeats* calls on the blocks with the generator seeded alike would draw.

    Returns
    -------
    out : Tensor, shape (K, n_channels, n_times)
    """
    k = x.shape[0]
    block = k // repeats
    where = generator.device if generator is not None else torch.device("cpu")
    u = _repeated(torch.rand(block, generator=generator, device=where).to(x.device), repeats)
    kind = kind.to(x.device)
    low = (kind == 1) | (kind == 4)
    high = (kind == 2) | (kind == 5)
    alpha = torch.where(low, _LOW[0] + (_LOW[1] - _LOW[0]) * u,
                        torch.where(high, _HIGH[0] + (_HIGH[1] - _HIGH[0]) * u,
                                    torch.ones_like(u)))
    noisy = (kind >= 3).to(x.dtype)
    noise = _repeated(torch.randn((block, *x.shape[1:]), generator=generator, device=where)
                      .to(device=x.device, dtype=x.dtype), repeats)
    out = x * alpha.to(x.dtype).view(k, 1, 1)
    # g = sqrt(10^(-SNR/10) * Var(signal) / Var(noise)), variances over the whole window.
    var_x = out.flatten(1).var(dim=1, unbiased=False)
    var_n = noise.flatten(1).var(dim=1, unbiased=False).clamp_min(1e-12)
    gain = torch.sqrt(10.0 ** (-snr_db / 10.0) * var_x / var_n)
    return out + (gain * noisy).view(k, 1, 1) * noise
