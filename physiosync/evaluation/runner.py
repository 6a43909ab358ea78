"""Cross-validation runner: pre-train once per fold, fine-tune, predict, score.

:func:`run_fold` runs one :class:`~physiosync.evaluation.protocols.Fold` on a
:class:`~physiosync.training.sampling.SlotData`: LS-TCL pre-training on the fold's ``pretrain``
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
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .._logging import logger, progress
from ..exceptions import PhysioSyncError
from ..params import FinetuneConfig
from ..training.finetune import channel_importance, finetune, predict_proba
from ..models.losses import collapsed_loss
from .metrics import classification_metrics, model_chance_levels, trial_vote
from ..params import PretrainConfig
from ..exceptions import TrainingDivergedError
from ..training.pretrain import pretrain
from .protocols import Fold, check_disjoint
from ..training.sampling import SlotData
from .._utils import atomic_write_text, fingerprint

__all__ = ["run_fold", "run_fold_bandpower", "run_fold_stimulus_prior", "cross_validate",
           "fold_metrics", "fold_cells", "one_class_models", "train_label_counts",
           "windows_per_unit", "permute_training_labels"]


def _grid_rows(data: SlotData, units) -> list[tuple[int, int]]:
    """Grid row indices ``(i, j)`` of ``(subject, trial)`` units, in their order."""
    s_pos = {s: i for i, s in enumerate(data.subjects)}
    t_pos = {t: i for i, t in enumerate(data.trials)}
    return [(s_pos[int(s)], t_pos[int(t)]) for s, t in np.asarray(units).reshape(-1, 2)]


def _cells_of(data: SlotData, units: np.ndarray) -> np.ndarray:
    """Valid ``(s, t, w)`` grid cells of the given ``(subject, trial)`` units."""
    if len(units) == 0:
        return np.zeros((0, 3), dtype=np.int64)
    mask = np.zeros(data.shape[:2], dtype=bool)
    for i, j in _grid_rows(data, units):
        mask[i, j] = True
    cells = np.argwhere(data.valid & mask[:, :, None])
    return cells.astype(np.int64)


def fold_cells(data: SlotData, fold: Fold, *, val_size: float = 0.1, seed: int = 0):
    """``(train, val, test)`` window cells ``(s, t, w)`` of a fold.

    For unit folds these are the valid windows of the fold's units. For a
    ``legacy-segment`` fold, ``fold.test_windows`` index the valid windows of
    ``fold.train`` (all units, in their given order); the rest is training data, of
    which a random *val_size* share of windows is held out for epoch selection (never
    the test windows).
    """
    if not fold.leaky:
        return tuple(_cells_of(data, u) for u in (fold.train, fold.val, fold.test))
    cells = _unit_ordered_cells(data, fold.train)
    test_mask = np.zeros(len(cells), dtype=bool)
    idx = np.asarray(fold.test_windows, dtype=np.int64)
    if idx.size and idx.max() >= len(cells):
        raise PhysioSyncError(f"fold {fold.fold}: test window index {idx.max()} is out of range "
                              f"for {len(cells)} windows; the folds were made for other data.")
    test_mask[idx] = True
    rest = np.nonzero(~test_mask)[0]
    rng = np.random.default_rng(seed + fold.fold)
    n_val = int(round(val_size * len(rest)))
    val_idx = np.sort(rng.choice(rest, n_val, replace=False)) if n_val else rest[:0]
    train_idx = np.setdiff1d(rest, val_idx)
    return cells[train_idx], cells[val_idx], cells[test_mask]


def _unit_ordered_cells(data: SlotData, units) -> np.ndarray:
    """Valid cells unit by unit, in the order of *units* (the order legacy folds use)."""
    out = []
    for i, j in _grid_rows(data, units):
        w = np.nonzero(data.valid[i, j])[0]
        out.append(np.column_stack([np.full(len(w), i), np.full(len(w), j), w]))
    return np.concatenate(out).astype(np.int64) if out else np.zeros((0, 3), np.int64)


def windows_per_unit(data: SlotData, units) -> np.ndarray:
    """Number of valid windows of each ``(subject, trial)`` unit (for legacy folds)."""
    return np.array([int(data.valid[i, j].sum()) for i, j in _grid_rows(data, units)],
                    dtype=np.int64)


def _groups(cells: np.ndarray, per_subject: bool) -> list:
    return sorted(set(cells[:, 0].tolist())) if per_subject else [None]


def _pick(cells: np.ndarray, g) -> np.ndarray:
    return cells[cells[:, 0] == g] if g is not None else cells


def one_class_models(data: SlotData, fold: Fold, *, per_subject: bool = True,
                     one_class: str = "error", val_size: float = 0.1,
                     seed: int = 0) -> dict:
    """Check, before any training, that every model of a fold sees two classes.

    Returns
    -------
    single : dict
        ``{group: class}`` for the models whose training windows hold one class
        (only with ``one_class="constant"``); the group is a subject row index or
        ``None`` for a pooled model.

    Raises
    ------
    PhysioSyncError
        With ``one_class="error"``, naming the fold and the subject.
    """
    if one_class not in ("error", "constant"):
        raise PhysioSyncError(f"one_class must be 'error' or 'constant', got {one_class!r}.")
    train, _, test = fold_cells(data, fold, val_size=val_size, seed=seed)
    single = {}
    for g in _groups(test, per_subject):
        classes = np.unique(data.labels[tuple(_pick(train, g)[:, :2].T)])
        if len(classes) < 2:
            who = f"subject {data.subjects[g]}" if g is not None else "the pooled model"
            if one_class == "error":
                raise PhysioSyncError(
                    f"fold {fold.fold}: the training windows of {who} hold one class only "
                    f"({classes.tolist()}); use fewer folds, another target, pooled "
                    "fine-tuning, or one_class='constant' to predict that class (flagged in "
                    "the report).")
            single[g] = int(classes[0]) if len(classes) else 0
    return single


def _prediction_frame(data: SlotData, cells: np.ndarray, proba: np.ndarray,
                      one_class: bool) -> pd.DataFrame:
    frame = pd.DataFrame({"subject": np.asarray(data.subjects)[cells[:, 0]],
                          "trial": np.asarray(data.trials)[cells[:, 1]], "window": cells[:, 2],
                          "y": data.labels[cells[:, 0], cells[:, 1]]})
    for c in range(proba.shape[1]):
        frame[f"p{c}"] = proba[:, c]
    frame["one_class"] = one_class
    return frame


def _curve(history: list, x: str, *ys: str) -> dict:
    out = {x: [h[x] for h in history]}
    for y in ys:
        if any(y in h for h in history):
            out[y] = [h.get(y) for h in history]
    return out


def run_fold(data: SlotData, fold: Fold, *, n_sub: int = 5, per_subject: bool = True,
             long_config: PretrainConfig | None = None,
             short_config: PretrainConfig | None = None,
             finetune_config: FinetuneConfig | None = None, do_pretrain: bool = True,
             one_class: str = "error", val_size: float = 0.1, seed: int = 0,
             importance: bool = True, device=None, show_progress: bool | None = False,
             pretrain_cache: dict | None = None):
    """Pre-train, fine-tune and predict one fold.

    Parameters
    ----------
    data : SlotData
        Long windows of every subject, with per-trial ``labels``.
    fold : Fold
        The fold's units (or, for ``legacy-segment``, its test windows).
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
    val_size, seed : float, int
        ``legacy-segment`` only: share of training windows held out for epoch selection.
    importance : bool
        Also compute the EEG channel importance (mean ``|gradient x input|``) on the
        test windows.
    device : str | None
        Torch device.
    show_progress : bool | None
        Progress bars of the pre-training steps and fine-tuning epochs (``None``:
        follow the log level).
    pretrain_cache : dict | None
        In-memory store of pre-trained encoders, filled and read by this function.
        Pre-training uses no labels, so runs of the same fold that differ only in
        their labels (the refits of a permutation null) can pass one dict to
        pre-train once. Entries are keyed by the allowed cells, the encoder and its
        configuration, not by the windows: never share one dict between datasets.

    Returns
    -------
    predictions : DataFrame
        One row per test window: ``subject, trial, window, y``, ``p0..p{C-1}`` and
        ``one_class``.
    details : dict
        ``curves`` (``pretrain`` per encoder: ``step``/``loss`` and ``collapsed``, the
        loss of a collapsed encoder, see :func:`~physiosync.models.losses.collapsed_loss`;
        ``finetune`` per model: ``epoch``/``train_loss``/``val_loss``) and
        ``channel_importance`` (EEG, summing to 1, or None).
    """
    if data.labels is None:
        raise PhysioSyncError("cross-validation needs labelled SlotData.")
    check_disjoint(fold)
    long_config = long_config or PretrainConfig()
    short_config = short_config or long_config
    finetune_config = finetune_config or FinetuneConfig()
    single = one_class_models(data, fold, per_subject=per_subject, one_class=one_class,
                              val_size=val_size, seed=seed)
    train, val, test = fold_cells(data, fold, val_size=val_size, seed=seed)
    pre, curves = {}, {"pretrain": {}, "finetune": []}
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
            key = fingerprint(allowed, name, sub, repr(cfg), repr(finetune_config.modalities),
                              str(device))
            if pretrain_cache is not None and key in pretrain_cache:
                pre[name], hist = pretrain_cache[key]
            else:
                try:
                    pre[name], hist = pretrain(data, cfg, allowed=allowed, n_sub=sub,
                                               device=device,
                                               modalities=finetune_config.modalities,
                                               show_progress=show_progress)
                except TrainingDivergedError as err:
                    raise TrainingDivergedError(
                        f"fold {fold.fold}, {name}-window pre-training: {err}") from err
                if pretrain_cache is not None:
                    pretrain_cache[key] = (pre[name], hist)
            # The loss of a collapsed encoder: a run that stays above it learnt nothing.
            collapsed = collapsed_loss(
                cfg.batch_slots, loss_weights=cfg.loss_weights, cmca_variant=cfg.cmca_variant,
                has_pps=len(tuple(finetune_config.modalities or data.modalities)) > 1)
            curves["pretrain"][name] = {**_curve(hist, "step", "loss"), "collapsed": collapsed}
    n_classes = int(max(data.labels.max() + 1, 2))
    frames, weights = [], []
    eeg = "eeg" if "eeg" in (finetune_config.modalities or data.modalities) else None
    for g in _groups(test, per_subject):
        tr, va, te = _pick(train, g), _pick(val, g), _pick(test, g)
        if len(te) == 0:
            continue
        if g in single:
            proba = np.zeros((len(te), n_classes))
            proba[:, single[g]] = 1.0
        else:
            model, hist = finetune(data, tr, val_cells=va if len(va) else None,
                                   config=finetune_config, pretrained=pre, n_sub=n_sub,
                                   n_classes=n_classes, long_config=long_config,
                                   short_config=short_config, device=device,
                                   show_progress=show_progress)
            proba = predict_proba(model, data, te)
            curves["finetune"].append({"subject": None if g is None else int(data.subjects[g]),
                                       **_curve(hist, "epoch", "train_loss", "val_loss")})
            if importance and eeg is not None:
                weights.append(channel_importance(model, data, te, modality=eeg))
        frames.append(_prediction_frame(data, te, proba, g in single))
    details = {"curves": curves,
               "channel_importance": np.mean(weights, axis=0).tolist() if weights else None}
    return pd.concat(frames, ignore_index=True), details


def _baseline_fold(data: SlotData, fold: Fold, fit_predict, *, per_subject: bool,
                   one_class: str, val_size: float, seed: int):
    """The fold loop shared by the baselines: one model per subject or one pooled model.

    ``fit_predict(train, val, test) -> proba`` fits one model on the training (and,
    if it wants them, validation) cells of its group and returns the test cells' class
    probabilities, with ``n_classes`` columns. Groups whose training labels hold one
    class get the constant prediction, flagged, as in :func:`run_fold`.
    """
    check_disjoint(fold)
    single = one_class_models(data, fold, per_subject=per_subject, one_class=one_class,
                              val_size=val_size, seed=seed)
    train, val, test = fold_cells(data, fold, val_size=val_size, seed=seed)
    n_classes = int(max(data.labels.max() + 1, 2))
    frames = []
    for g in _groups(test, per_subject):
        te = _pick(test, g)
        if len(te) == 0:
            continue
        if g in single:
            proba = np.zeros((len(te), n_classes))
            proba[:, single[g]] = 1.0
        else:
            proba = fit_predict(_pick(train, g), _pick(val, g), te)
        frames.append(_prediction_frame(data, te, proba, g in single))
    return pd.concat(frames, ignore_index=True)


def run_fold_bandpower(data: SlotData, fold: Fold, *, sfreq: dict, per_subject: bool = True,
                       C: float = 0.1, modalities=None, one_class: str = "error",
                       val_size: float = 0.1, seed: int = 0, **ignored):
    """The band-power + logistic-regression baseline on the same fold as :func:`run_fold`.

    It is fitted on the fold's training windows only (the validation windows are left
    out so that both pipelines learn from the same data). ``channel_importance`` is the
    sum over bands of the absolute standardised coefficients of the EEG channels.
    """
    from .baselines import BANDS, BandPowerClassifier

    mods = tuple(modalities or data.modalities)
    n_classes = int(max(data.labels.max() + 1, 2))
    weights = []

    def windows(cells):
        idx = torch.from_numpy(cells)
        return {m: data.gather(m, idx[:, 0], idx[:, 1], idx[:, 2]).numpy() for m in mods}

    def fit_predict(tr, _val, te):
        clf = BandPowerClassifier(sfreq={m: sfreq[m] for m in mods}, C=C)
        clf.fit(windows(tr), data.labels[tr[:, 0], tr[:, 1]])
        proba = np.zeros((len(te), n_classes))
        proba[:, clf.classes_] = clf.predict_proba(windows(te))
        if "eeg" in mods:
            coef = np.abs(clf.pipeline_[-1].coef_).sum(0)
            n_eeg = data.n_chans("eeg")
            w = coef[:n_eeg * len(BANDS)].reshape(n_eeg, len(BANDS)).sum(1)
            weights.append(w / w.sum() if w.sum() > 0 else w)
        return proba

    pred = _baseline_fold(data, fold, fit_predict, per_subject=per_subject,
                          one_class=one_class, val_size=val_size, seed=seed)
    return pred, {"curves": {}, "channel_importance": np.mean(weights, axis=0).tolist()
                  if weights else None}


def run_fold_stimulus_prior(data: SlotData, fold: Fold, *, per_subject: bool = True,
                            one_class: str = "error", val_size: float = 0.1, seed: int = 0,
                            **ignored):
    """The stimulus-prior baseline on the same fold as :func:`run_fold`.

    Every test window gets the class frequencies of the training units (``train`` and
    ``val``) of its stimulus, one vote per unit
    (:class:`~physiosync.evaluation.baselines.StimulusPriorClassifier`); a stimulus no training
    unit has gets the class frequencies of all training units. It reads no signal, so
    it measures how far knowing the stimulus goes under the fold's protocol. With
    *per_subject*, each subject's model sees only that subject's units, hence only the
    prior.
    """
    from .baselines import StimulusPriorClassifier

    n_classes = int(max(data.labels.max() + 1, 2))
    trials = np.asarray(data.trials)

    def fit_predict(tr, va, te):
        units = np.unique(np.concatenate([tr, va])[:, :2], axis=0)  # grid rows, one per unit
        clf = StimulusPriorClassifier().fit(trials[units[:, 1]],
                                            data.labels[units[:, 0], units[:, 1]])
        proba = np.zeros((len(te), n_classes))
        proba[:, clf.classes_] = clf.predict_proba(trials[te[:, 1]])
        return proba

    pred = _baseline_fold(data, fold, fit_predict, per_subject=per_subject,
                          one_class=one_class, val_size=val_size, seed=seed)
    return pred, {"curves": {}, "channel_importance": None}


def fold_metrics(pred: pd.DataFrame, n_classes: int = 2,
                 train_labels: dict | None = None) -> dict:
    """Window- and trial-level metrics of one fold's predictions, with their chance levels.

    Parameters
    ----------
    pred : DataFrame
        The fold's predictions (``subject``, ``trial``, ``y``, ``p0..p{C-1}``).
    n_classes : int
        2 or 4.
    train_labels : dict | None
        Class counts of the fold's training labels (see :func:`train_label_counts`).
        ``None``: the chance levels fall back on the test labels (the accuracy chance
        is then the test majority) and ``chance_source`` says so.

    Returns
    -------
    metrics : dict
        ``window`` and ``trial`` metrics (:func:`~physiosync.evaluation.metrics.classification_metrics`),
        ``chance`` (``window`` and ``trial``: metric -> chance level, see
        :func:`~physiosync.evaluation.metrics.chance_levels`) and ``chance_source``
        (``"training labels"`` or ``"test labels"``).
    """
    proba = pred[[f"p{c}" for c in range(n_classes)]].to_numpy()
    y = pred["y"].to_numpy()
    subjects = pred["subject"].to_numpy()
    out = {"window": classification_metrics(y, proba.argmax(1), proba, n_classes=n_classes)}
    yt, pt, mt = trial_vote(y, proba, pred[["subject", "trial"]].to_numpy())
    out["trial"] = classification_metrics(yt, pt, mt, n_classes=n_classes)
    # trial_vote orders trials by first appearance, as drop_duplicates does
    trial_subjects = pred[["subject", "trial"]].drop_duplicates()["subject"].to_numpy()
    out["chance"] = {
        "window": model_chance_levels(y, subjects, train_labels, n_classes=n_classes),
        "trial": model_chance_levels(yt, trial_subjects, train_labels, n_classes=n_classes)}
    out["chance_source"] = "test labels" if train_labels is None else "training labels"
    return out


def train_label_counts(data: SlotData, fold: Fold, *, per_subject: bool = True,
                       val_size: float = 0.1, seed: int = 0) -> dict:
    """Class counts of the windows a fold's models learn from (``train`` + ``val``).

    Returns
    -------
    train_labels : dict
        ``per_subject_models`` (*per_subject*), ``pooled`` (counts over all training
        windows) and ``subjects`` (``{str(subject): counts}``), each a list of
        ``n_classes`` integers.
    """
    train, val, _ = fold_cells(data, fold, val_size=val_size, seed=seed)
    cells = np.concatenate([train, val])
    n_classes = int(max(data.labels.max() + 1, 2))
    labels = data.labels[cells[:, 0], cells[:, 1]]
    subjects = np.asarray(data.subjects)[cells[:, 0]]

    def counts(y):
        return np.bincount(y, minlength=n_classes).astype(int).tolist()

    return {"per_subject_models": bool(per_subject), "pooled": counts(labels),
            "subjects": {str(s): counts(labels[subjects == s]) for s in np.unique(subjects)}}


def _json_default(obj):
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def cross_validate(data: SlotData, folds: list, out_dir, *, settings: dict | None = None,
                   resume: bool = True, runner=None, show_progress=None,
                   **run_kwargs) -> list[dict]:
    """Run every fold, persisting each one atomically; resume skips finished folds.

    Parameters
    ----------
    data : SlotData
        Labelled long windows.
    folds : list of Fold
        From :func:`physiosync.evaluation.protocols.make_folds`.
    out_dir : str | Path
        Where ``fold_XX.json`` files go.
    settings : dict | None
        Anything else that defines the run (protocol, target, dataset); hashed with the
        hyper-parameters so that a finished fold is reused only for identical settings.
    resume : bool
        Reuse finished folds of identical settings.
    runner : callable | None
        ``runner(data, fold, **run_kwargs) -> (predictions, details)``; default
        :func:`run_fold` (:func:`run_fold_bandpower` for the baseline).
    show_progress : bool | None
        Progress bars over folds (and, passed to *runner*, within them); ``None``
        follows the log level.
    **run_kwargs
        Passed to *runner*.

    Returns
    -------
    results : list of dict
        Per fold: ``fold``, the manifest (``train``, ``val``, ``test``, ``pretrain``),
        ``metrics`` (:func:`fold_metrics`), ``train_labels`` (:func:`train_label_counts`),
        ``predictions`` (records), ``curves`` and ``channel_importance``.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    hp = {k: (asdict(v) if hasattr(v, "__dataclass_fields__") else v)
          for k, v in run_kwargs.items()
          if k not in ("device", "show_progress", "pretrain_cache")}
    n_classes = int(max(data.labels.max() + 1, 2))
    split = {k: run_kwargs[k] for k in ("per_subject", "val_size", "seed") if k in run_kwargs}
    results = []
    for fold in progress(folds, desc=str((settings or {}).get("pipeline", "cv")),
                         disable=None if show_progress is None else not show_progress):
        key = fingerprint(json.dumps({"settings": settings or {}, "hp": hp}, sort_keys=True,
                                     default=str), fold.manifest())
        path = out_dir / f"fold_{fold.fold:02d}.json"
        if resume and path.is_file():
            try:
                done = json.loads(path.read_text())
                if done.get("key") == key:
                    logger.info("fold %d already done, reusing %s", fold.fold, path)
                    if "train_labels" not in done:  # written by an older version
                        done["train_labels"] = train_label_counts(data, fold, **split)
                        done["metrics"] = fold_metrics(pd.DataFrame(done["predictions"]),
                                                       n_classes, done["train_labels"])
                    results.append(done)
                    continue
            except (OSError, ValueError):
                pass  # unreadable: recompute
        try:
            pred, details = (runner or run_fold)(data, fold, show_progress=show_progress,
                                                 **run_kwargs)
        except TrainingDivergedError as err:
            # Say which run diverged: the message reaches a user running many pipelines.
            where = f"pipeline {(settings or {}).get('pipeline', 'cv')!r}, "
            if not str(err).startswith("fold "):
                where += f"fold {fold.fold}, "
            raise TrainingDivergedError(where + str(err)) from err
        train_labels = train_label_counts(data, fold, **split)
        record = {"key": key, **fold.manifest(),
                  "metrics": fold_metrics(pred, n_classes, train_labels),
                  "train_labels": train_labels,
                  "predictions": pred.to_dict(orient="records"), **details}
        atomic_write_text(path, json.dumps(record, default=_json_default))
        results.append(record)
    return results


def permute_training_labels(data: SlotData, fold: Fold, *, seed: int = 0) -> SlotData:
    """A view of *data* whose fold-``train`` and ``val`` labels are shuffled within subjects.

    The labels of each subject's ``train`` units are permuted among those units, and
    those of its ``val`` units among those, so that every model of the fold keeps its
    class counts (the one-class checks pass exactly when they pass on the true
    labels). ``test`` units keep their true labels. This is the label permutation of
    a refit permutation null (as in :func:`sklearn.model_selection.permutation_test_score`).

    Parameters
    ----------
    data : SlotData
        Labelled windows.
    fold : Fold
        A unit fold (not ``legacy-segment``, whose test windows share trials with
        training).
    seed : int
        Seed of the permutation.

    Returns
    -------
    permuted : SlotData
        A shallow copy sharing *data*'s window tensors, with a new ``labels`` grid.
    """
    import copy

    if data.labels is None:
        raise PhysioSyncError("permute_training_labels needs labelled SlotData.")
    if fold.leaky:
        raise PhysioSyncError(f"fold {fold.fold} is a legacy-segment fold: its test windows "
                              "share trials with training, so training labels cannot be "
                              "permuted without permuting test labels.")
    rng = np.random.default_rng(seed)
    labels = data.labels.copy()
    for part in (fold.train, fold.val):
        if len(part) == 0:
            continue
        rows = np.asarray(_grid_rows(data, part), dtype=np.int64)
        for s in np.unique(rows[:, 0]):
            i, j = rows[rows[:, 0] == s].T
            labels[i, j] = rng.permutation(labels[i, j])
    out = copy.copy(data)  # shares the window tensors
    out.labels = labels
    return out
