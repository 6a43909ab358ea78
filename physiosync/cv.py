"""Cross-validation runner: pre-train once per fold, fine-tune, predict, score.

:func:`run_fold` runs one :class:`~physiosync.protocols.Fold` on a
:class:`~physiosync.slots.SlotData`: LS-TCL pre-training on the fold's ``pretrain``
units only (every subject's training stimuli within subjects, the training subjects
across subjects), then fine-tuning per subject or pooled, with epoch selection on
the fold's ``val`` units, then predictions for its ``test`` units. Nothing of the test
units is seen before prediction.

:func:`cross_validate` runs every fold, writes each fold's manifest and predictions
atomically to ``out_dir/fold_XX.json``, and skips folds already completed with the
same settings, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from ._logging import logger, progress
from .exceptions import PhysioSyncError
from .finetune import FinetuneConfig, finetune, predict_proba
from .metrics import chance_level, classification_metrics, trial_vote
from .pretrain import PretrainConfig, pretrain
from .protocols import Fold, check_disjoint
from .slots import SlotData
from .utils import fingerprint

__all__ = ["run_fold", "cross_validate", "fold_metrics"]


def _cells_of(data: SlotData, units: np.ndarray) -> np.ndarray:
    """Valid ``(s, t, w)`` grid cells of the given ``(subject, trial)`` units."""
    if len(units) == 0:
        return np.zeros((0, 3), dtype=np.int64)
    s_pos = {s: i for i, s in enumerate(data.subjects)}
    t_pos = {t: i for i, t in enumerate(data.trials)}
    mask = np.zeros(data.shape[:2], dtype=bool)
    for s, t in units:
        mask[s_pos[int(s)], t_pos[int(t)]] = True
    cells = np.argwhere(data.valid & mask[:, :, None])
    return cells.astype(np.int64)


def run_fold(data: SlotData, fold: Fold, *, n_sub: int = 5, per_subject: bool = True,
             long_config: PretrainConfig | None = None,
             short_config: PretrainConfig | None = None,
             finetune_config: FinetuneConfig | None = None, do_pretrain: bool = True,
             one_class: str = "error", device=None) -> pd.DataFrame:
    """Pre-train, fine-tune and predict one fold.

    Parameters
    ----------
    data : SlotData
        Long windows of every subject, with per-trial ``labels``.
    fold : Fold
        The fold's units.
    n_sub : int
        Short windows per long window.
    per_subject : bool
        Fine-tune one model per subject (within-subject protocols) instead of one pooled
        model. Pre-training is shared by the fold either way.
    long_config, short_config, finetune_config
        Hyper-parameters (defaults: the reference's).
    do_pretrain : bool
        ``False`` is the "no pre-training" ablation.
    one_class : {"error", "constant"}
        What to do when a model's training windows hold one class only (a subject
        who rated every training video high, say): ``"error"`` raises before any
        training; ``"constant"`` predicts that class with probability 1 for the
        subject's test windows and marks them ``one_class=True``.
    device : str | None
        Torch device.

    Returns
    -------
    predictions : DataFrame
        One row per test window: ``subject, trial, window, y``, ``p0..p{C-1}`` and
        ``one_class``.
    """
    if data.labels is None:
        raise PhysioSyncError("cross-validation needs labelled SlotData.")
    if fold.leaky:
        raise PhysioSyncError("legacy-segment folds split windows, not units; run_fold does "
                              "not run them.")
    check_disjoint(fold)
    if one_class not in ("error", "constant"):
        raise PhysioSyncError(f"one_class must be 'error' or 'constant', got {one_class!r}.")
    long_config = long_config or PretrainConfig()
    short_config = short_config or long_config
    finetune_config = finetune_config or FinetuneConfig()
    train, val, test = (_cells_of(data, u) for u in (fold.train, fold.val, fold.test))
    groups = sorted(set(test[:, 0])) if per_subject else [None]

    def pick(cells, g):
        return cells[cells[:, 0] == g] if g is not None else cells

    single = {}
    for g in groups:
        classes = np.unique(data.labels[tuple(pick(train, g)[:, :2].T)])
        if len(classes) < 2:
            who = f"subject {data.subjects[g]}" if g is not None else "the pooled model"
            if one_class == "error":
                raise PhysioSyncError(
                    f"fold {fold.fold}: the training windows of {who} hold one class only "
                    f"({classes.tolist()}); use fewer folds, another target, or "
                    "one_class='constant' to predict that class (flagged in the report).")
            single[g] = int(classes[0]) if len(classes) else 0
    pre = {}
    if do_pretrain:
        allowed = np.zeros(data.shape, dtype=bool)
        cells = _cells_of(data, fold.pretrain)
        allowed[tuple(cells.T)] = True
        runs = []
        if finetune_config.use_long:
            runs.append(("long", 1, long_config))
        if finetune_config.use_short:
            runs.append(("short", n_sub, short_config))
        for name, sub, cfg in runs:
            pre[name], _ = pretrain(data, cfg, allowed=allowed, n_sub=sub, device=device,
                                    modalities=finetune_config.modalities, show_progress=False)
    n_classes = int(max(data.labels.max() + 1, 2))
    frames = []
    for g in groups:
        tr, va, te = pick(train, g), pick(val, g), pick(test, g)
        if len(te) == 0:
            continue
        if g in single:
            proba = np.zeros((len(te), n_classes))
            proba[:, single[g]] = 1.0
        else:
            model, _ = finetune(data, tr, val_cells=va if len(va) else None,
                                config=finetune_config, pretrained=pre, n_sub=n_sub,
                                n_classes=n_classes, long_config=long_config,
                                short_config=short_config, device=device, show_progress=False)
            proba = predict_proba(model, data, te)
        frame = pd.DataFrame({"subject": np.asarray(data.subjects)[te[:, 0]],
                              "trial": np.asarray(data.trials)[te[:, 1]], "window": te[:, 2],
                              "y": data.labels[te[:, 0], te[:, 1]]})
        for c in range(proba.shape[1]):
            frame[f"p{c}"] = proba[:, c]
        frame["one_class"] = g in single
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def fold_metrics(pred: pd.DataFrame, n_classes: int = 2) -> dict:
    """Window- and trial-level metrics and chance levels of one fold's predictions."""
    proba = pred[[f"p{c}" for c in range(n_classes)]].to_numpy()
    y = pred["y"].to_numpy()
    out = {"window": classification_metrics(y, proba.argmax(1), proba, n_classes=n_classes),
           "chance_window": chance_level(y)}
    yt, pt, mt = trial_vote(y, proba, pred[["subject", "trial"]].to_numpy())
    out["trial"] = classification_metrics(yt, pt, mt, n_classes=n_classes)
    out["chance_trial"] = chance_level(yt)
    return out


def _json_default(obj):
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def cross_validate(data: SlotData, folds: list, out_dir, *, settings: dict | None = None,
                   resume: bool = True, **run_kwargs) -> list[dict]:
    """Run every fold, persisting each one atomically; resume skips finished folds.

    Parameters
    ----------
    data : SlotData
        Labelled long windows.
    folds : list of Fold
        From :func:`physiosync.protocols.make_folds`.
    out_dir : str | Path
        Where ``fold_XX.json`` files go.
    settings : dict | None
        Anything else that defines the run (protocol, target, dataset); hashed with the
        hyper-parameters so that a finished fold is reused only for identical settings.
    resume : bool
        Reuse finished folds of identical settings.
    **run_kwargs
        Passed to :func:`run_fold`.

    Returns
    -------
    results : list of dict
        Per fold: ``fold``, the manifest (``train``, ``val``, ``test``, ``pretrain``),
        ``metrics`` and ``predictions`` (records).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hp = {k: (asdict(v) if hasattr(v, "__dataclass_fields__") else v)
          for k, v in run_kwargs.items() if k != "device"}
    n_classes = int(max(data.labels.max() + 1, 2))
    results = []
    for fold in progress(folds, desc="cv"):
        key = fingerprint(json.dumps({"settings": settings or {}, "hp": hp}, sort_keys=True,
                                     default=str), fold.manifest())
        path = out_dir / f"fold_{fold.fold:02d}.json"
        if resume and path.is_file():
            try:
                done = json.loads(path.read_text())
                if done.get("key") == key:
                    logger.info("fold %d already done, reusing %s", fold.fold, path)
                    results.append(done)
                    continue
            except (OSError, ValueError):
                pass  # unreadable: recompute
        pred = run_fold(data, fold, **run_kwargs)
        record = {"key": key, **fold.manifest(), "metrics": fold_metrics(pred, n_classes),
                  "predictions": pred.to_dict(orient="records")}
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(record, default=_json_default))
        os.replace(tmp, path)
        results.append(record)
    return results
