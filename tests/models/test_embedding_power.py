"""The authors' gated multi-view embedding *can* represent band power.

The gate makes each view a product ``(w.x) * sigmoid(v.x)``, which for ``v = w`` is a
quadratic form of the input for small ``w.x`` (``sigmoid(u) ~ 1/2 + u/4``). With filters
tuned to the alpha band, the mean over embedding units is an estimate of alpha power,
whatever the phase of the oscillation. So the chance-level results of the multi-view
embedding on small synthetic data (docs/model.md) are a learnability and sample-size
failure, not an impossibility; this test sets the weights by hand to show it.
"""

from __future__ import annotations

import numpy as np
import torch

from physiosync.models import SignalEncoder

SFREQ, N_TIMES, N_CHANS = 128.0, 512, 4


def _alpha_windows(rng, n, alpha_amp):
    """Random-phase 10 Hz bursts on channel 0 plus white noise on every channel."""
    t = np.arange(N_TIMES) / SFREQ
    x = rng.standard_normal((n, N_CHANS, N_TIMES))
    for i in range(n):
        # the phase drifts inside the window: no linear functional has a non-zero mean
        phase = rng.uniform(0, 2 * np.pi) + np.cumsum(rng.normal(0, 0.05, N_TIMES))
        x[i, 0] += alpha_amp * np.sin(2 * np.pi * 10.0 * t + phase)
    return torch.tensor(x, dtype=torch.float32)


def _power_weights(embed_dim, scale=0.05):
    """Value and gate rows: +-sine and +-cosine 10 Hz filters on 0.25 s segments of channel 0.

    Each filter comes with its negative: ``u * sigmoid(u) + (-u) * sigmoid(-u) =
    u * tanh(u / 2)``, so the linear parts cancel and an even (power-like) function stays.
    """
    seg = 32
    tt = np.arange(seg) / SFREQ
    rows = []
    for k in range(embed_dim):
        start = (k // 4) * seg
        kernel = (np.sin if k % 4 < 2 else np.cos)(2 * np.pi * 10 * tt) * (-1) ** k
        w = np.zeros((N_CHANS, N_TIMES))
        w[0, start:start + seg] = kernel * np.hanning(seg)
        rows.append(w.ravel())  # channel-major, as the embedding flattens its input
    return torch.tensor(np.array(rows) * scale, dtype=torch.float32)


def test_hand_set_multiview_embedding_separates_alpha_power():
    embed_dim = 4 * (N_TIMES // 32)  # +-sine and +-cosine filters per segment
    enc = SignalEncoder(N_CHANS, N_TIMES, embed_dim, depth=1, n_heads=1,
                        embedding="multiview").eval()
    w = _power_weights(embed_dim)
    with torch.no_grad():
        enc.embed.value.weight.copy_(w)
        enc.embed.value.bias.zero_()
        enc.embed.gate.weight.copy_(w.repeat(3, 1))  # the same filter gates each view
        enc.embed.gate.bias.zero_()
    rng = np.random.default_rng(0)
    low, high = _alpha_windows(rng, 60, 1.0), _alpha_windows(rng, 60, 2.0)

    def statistic(x):
        value, gate = enc.embed(x)  # exactly the encoder's first stage
        views = value.unsqueeze(1) * torch.sigmoid(gate).view(-1, 3, embed_dim)
        return views.mean(dim=(1, 2)).detach().numpy()

    s_low, s_high = statistic(low), statistic(high)
    # every high-power window scores above every low-power window
    assert s_high.min() > s_low.max()
    # while a linear functional alone (a value unit, before the gate) has the same mean in
    # both classes: only its variance differs
    v_low, v_high = (enc.embed(x)[0][:, 0].detach().numpy() for x in (low, high))
    assert abs(v_high.mean() - v_low.mean()) < 0.5 * v_low.std()
