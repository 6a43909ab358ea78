"""Tiny inputs shared by the training and execution tests."""

from __future__ import annotations

import numpy as np

from physiosync.config import load_config
from physiosync.params import PretrainConfig
from physiosync.training.sampling import SlotData


def tiny_slots(seed: int = 0) -> SlotData:
    """Random EEG (4 channels) and GSR windows: 6 subjects x 5 trials x 4 windows of 64."""
    g = np.random.default_rng(seed)
    x = {"eeg": g.standard_normal((6, 5, 4, 4, 64)).astype("float32"),
         "gsr": g.standard_normal((6, 5, 4, 1, 64)).astype("float32")}
    return SlotData(x, np.ones((6, 5, 4), bool), range(6), range(5))


def tiny_pretrain(**kw) -> PretrainConfig:
    """A pre-training configuration small enough to run in a fraction of a second."""
    base = dict(embed_dim=16, depth=1, n_heads=2, projector_dims=(32,), cmca_dim=16,
                batch_slots=4, group_size=1, steps=6)
    return PretrainConfig(**{**base, **kw})


def tiny_study(root, cache, *extra, n_splits: int = 2):
    """The ``tiny`` preset on *root*: PhysioSync and band power, on the CPU."""
    return load_config("tiny", [f"data.root={root}", f"data.cache_dir={cache}",
                                "pipelines=[physiosync, bandpower]",
                                f"protocol.n_splits={n_splits}",
                                "protocol.one_class=constant", "device=cpu", *extra])
