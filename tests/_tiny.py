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


def emotion_cv(dataset: str, root, tmp_path) -> dict:
    """``physiosync cv`` of band power on the categorical ``emotion`` target of an EEG-only
    dataset without baselines (SEED, SEED-IV), within-trial 2-fold; its ``report.json``."""
    import json

    from physiosync.cli import main

    out = tmp_path / "run"
    assert main(["cv", "--dataset", dataset, "--data-root", str(root), "--config", "tiny",
                 "--target", "emotion", "--protocol", "within-trial-kfold", "--folds", "2",
                 "--pipelines", "bandpower", "--out", str(out), "-q",
                 "--set", "data.baseline=none", "--set", "data.long_seconds=2",
                 "--set", "protocol.one_class=constant",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    return json.loads((out / "report.json").read_text())
