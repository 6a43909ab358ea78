"""Cross-validation runner: pre-train once per fold, fine-tune, predict, score.

:func:`run_fold_with` is the fold loop of every pipeline kind: a :class:`FoldRunner`
(:class:`PhysioSyncRunner`, or :class:`EstimatorRunner` around any scikit-learn-style
classifier, as the baselines are) says what is trained and applied per group.

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

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .._logging import deprecated_show_progress, logger, progress, verbose
from ..exceptions import PhysioSyncError
from ..params import ONE_CLASS_RULES, PRETRAIN_HELD_OUT, PRETRAIN_OBJECTIVES, FinetuneConfig
from ..training.finetune import channel_importance
from ..models.losses import collapsed_loss, retrieval_chance
from .metrics import classification_metrics, model_chance_levels, trial_vote
from ..params import PretrainConfig
from ..exceptions import TrainingDivergedError
from ..training.pretrain import held_out_sampler
from .fit import encoders_used, fit_physiosync, pretrain_physiosync
from .protocols import Fold, check_disjoint
from .schema import FOLD_VERSION, migrate_fold
from ..training.sampling import SlotData
from .._utils import atomic_write, fingerprint
from .._utils.checks import check_option
from .._utils.docs import fill_doc

__all__ = ["FoldRunner", "PhysioSyncRunner", "EstimatorRunner", "run_fold_with",
           "run_fold", "cross_validate",
           "pending_folds", "fold_checksum",
           "fold_metrics", "fold_cells", "one_class_models", "train_label_counts",
           "permute_training_labels"]


def fold_cells(data: SlotData, fold: Fold, *, val_size: float = 0.1, seed: int = 0):
    """``(train, val, test)`` window cells ``(s, t, w)`` of a fold.

    For unit folds these are the valid windows of the fold's units. For a
    ``legacy-segment`` fold, ``fold.test_windows`` index the valid windows of
    ``fold.train`` (all units, in their given order); the rest is training data, of
    which a random *val_size* share of windows is held out for epoch selection (never
    the test windows).
    """
    if not fold.leaky:
        return tuple(data.cells(u) for u in (fold.train, fold.val, fold.test))
    cells = data.cells(fold.train, order="units")
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
    check_option("one_class", one_class, ONE_CLASS_RULES)
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
    units = data.units_of(cells)
    frame = pd.DataFrame({"subject": units[:, 0], "trial": units[:, 1], "window": cells[:, 2],
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


#: What the held-out diagnostic of pre-training measures (``PhysioSyncRunner(held_out=)``).
HELD_OUT_CHOICES = PRETRAIN_HELD_OUT


def _held_out_curve(hist: list, cfg: PretrainConfig, variant: str, what: str, n_units: int,
                    group_size: int) -> dict:
    """The ``held_out`` curve of a run: its held-out points and their reference levels.

    ``collapsed``: per term ``2 log(candidates)`` (``-2 log(chance)``), and the weighted
    total of :func:`~physiosync.models.losses.collapsed_loss` for ``loss``;
    ``random_encoder``: the step-0 point (the initial weights), when the history has it;
    ``chance``: ``1 / candidates`` per retrieval accuracy.
    """
    points = [h for h in hist if isinstance(h.get("held_out"), dict)]
    names = list(points[0]["held_out"]) if points else []
    out = {"cells": what, "units": n_units, "group_size": group_size,
           "step": [h["step"] for h in points],
           **{k: [h["held_out"].get(k) for h in points] for k in names}}
    terms = [k for k in names if k != "loss" and not k.startswith("retrieval_")]
    chance = {f"retrieval_{t}": retrieval_chance(cfg.batch_slots, t, variant) for t in terms}
    weights = dict(zip(("temporal_eeg", "temporal_pps", "cmca"), cfg.loss_weights))
    collapsed = {t: -2.0 * float(np.log(chance[f"retrieval_{t}"])) for t in terms}
    collapsed["loss"] = sum(weights[t] * collapsed[t] for t in terms)
    out.update(collapsed=collapsed, chance=chance)
    if points and points[0]["step"] == 0:
        out["random_encoder"] = dict(points[0]["held_out"])
    return out


class FoldRunner:
    """How one kind of model is trained and applied within a fold.

    :func:`run_fold_with` owns the fold loop that every pipeline kind shares: it
    checks the fold, groups its cells by subject (or pools them), gives a group whose
    training labels hold one class the constant prediction, and builds the prediction
    frame. A runner only says what happens once per fold (:meth:`prepare_fold`, e.g.
    pre-training), how one group's model is fitted and applied (:meth:`fit_predict`)
    and what it recorded (:meth:`fold_details`).

    Attributes
    ----------
    importance_method : str | None
        How the runner's channel importance is computed, for the report (None: it
        computes none).
    """

    importance_method: str | None = None

    def hyperparameters(self) -> dict:
        """JSON-ready settings that define the runner's results (hashed into fold keys)."""
        return {}

    def prepare_fold(self, data: SlotData, fold: Fold) -> None:
        """Start a fold: reset what :meth:`fold_details` reports, do per-fold work."""
        self._importance = []
        self._curves = {}

    @fill_doc
    def fit_predict(self, data: SlotData, train: np.ndarray, val: np.ndarray,
                    test: np.ndarray, *, n_classes: int, subject: int | None) -> np.ndarray:
        """Fit one model on a group's cells and return its test cells' class probabilities.

        Parameters
        ----------
        %(labelled_slots)s
        train, val, test : ndarray of int, shape (n, 3)
            The group's ``(s, t, w)`` grid cells; *val* (validation, for model
            selection) may be empty; *train* holds two classes at least.
        n_classes : int
            Columns of the result.
        subject : int | None
            The group's subject, None for a pooled model.

        Returns
        -------
        proba : ndarray, shape (len(test), n_classes)
        """
        raise NotImplementedError

    def fold_details(self) -> dict:
        """``curves`` and ``channel_importance`` (EEG, mean over the fold's models, or None)."""
        weights = getattr(self, "_importance", [])
        return {"curves": getattr(self, "_curves", {}),
                "channel_importance": np.mean(weights, axis=0).tolist() if weights else None}


@verbose
@deprecated_show_progress
def run_fold_with(data: SlotData, fold: Fold, *, model: FoldRunner, per_subject: bool = True,
                  one_class: str = "error", val_size: float = 0.1, seed: int = 0,
                  verbose: bool | str | int | None = None):
    """Run one fold with any :class:`FoldRunner`: the fold loop of every pipeline kind.

    Parameters
    ----------
    data : SlotData
        Labelled long windows of every subject.
    %(fold)s
    model : FoldRunner
        What is trained and applied.
    per_subject : bool
        One model per subject (within-subject protocols) instead of one pooled model.
    one_class : {"error", "constant"}
        What to do when a model's training windows hold one class only (a subject
        who rated every training video high, say): ``"error"`` raises before any
        training; ``"constant"`` predicts that class with probability 1 for the
        group's test windows and marks them ``one_class=True``.
    val_size, seed : float, int
        ``legacy-segment`` only: share of training windows held out for validation.
    %(verbose)s
        It covers the runner's training and its bars.

    Returns
    -------
    predictions : DataFrame
        One row per test window: ``subject, trial, window, y``, ``p0..p{C-1}`` and
        ``one_class``.
    details : dict
        :meth:`FoldRunner.fold_details`.
    """
    if data.labels is None:
        raise PhysioSyncError("cross-validation needs labelled SlotData.")
    check_disjoint(fold)
    single = one_class_models(data, fold, per_subject=per_subject, one_class=one_class,
                              val_size=val_size, seed=seed)
    train, val, test = fold_cells(data, fold, val_size=val_size, seed=seed)
    model.prepare_fold(data, fold)
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
            proba = model.fit_predict(data, _pick(train, g), _pick(val, g), te,
                                      n_classes=n_classes,
                                      subject=None if g is None else int(data.subjects[g]))
        frames.append(_prediction_frame(data, te, proba, g in single))
    return pd.concat(frames, ignore_index=True), model.fold_details()


class PhysioSyncRunner(FoldRunner):
    """PhysioSync: LS-TCL pre-training once per fold, then fine-tuning per group.

    Pre-training uses the fold's ``pretrain`` units only; fine-tuning selects its
    epoch on the group's validation cells. Parameters are those of :func:`run_fold`;
    ``objective="simclr"`` pre-trains the same encoders with the EEG-only SimCLR
    baseline instead (see :func:`~physiosync.training.pretrain.pretrain`).
    """

    importance_method = "mean |gradient x input| of the predicted logit, test windows"

    def __init__(self, *, n_sub: int = 5, long_config: PretrainConfig | None = None,
                 short_config: PretrainConfig | None = None,
                 finetune_config: FinetuneConfig | None = None, do_pretrain: bool = True,
                 importance: bool = True, device=None, pretrain_cache: dict | None = None,
                 objective: str = "ls-tcl", compile: str | None = None,
                 held_out: str = "val"):
        check_option("objective", objective, PRETRAIN_OBJECTIVES)
        check_option("held_out", held_out, HELD_OUT_CHOICES)
        self.held_out = held_out
        self.n_sub = n_sub
        self.long_config = long_config or PretrainConfig()
        self.short_config = short_config or self.long_config
        self.finetune_config = finetune_config or FinetuneConfig()
        self.do_pretrain = do_pretrain
        self.importance = importance
        self.device = device
        self.pretrain_cache = pretrain_cache
        self.objective = objective
        self.compile = compile

    def hyperparameters(self) -> dict:
        hp = {"n_sub": self.n_sub, "long_config": asdict(self.long_config),
              "short_config": asdict(self.short_config),
              "finetune_config": asdict(self.finetune_config),
              "do_pretrain": self.do_pretrain, "importance": self.importance}
        if self.objective != "ls-tcl":  # LS-TCL fold keys stay as they were
            hp["objective"] = self.objective
        if self.held_out == "val":  # it changes what pre-training sees
            hp["held_out"] = self.held_out
        return hp

    def _encoders(self) -> list:
        """The encoders fine-tuning uses: ``"long"`` and/or ``"short"``."""
        return list(encoders_used(self.finetune_config))

    def _run_config(self, name: str) -> tuple:
        """``(n_sub, PretrainConfig)`` of the ``"long"`` or ``"short"`` pre-training run."""
        return (1, self.long_config) if name == "long" else (self.n_sub, self.short_config)

    def pretrain_cells(self, data: SlotData, fold: Fold) -> np.ndarray:
        """The cells the fold's pre-training may draw: its ``pretrain`` units' (less its
        validation units' with ``held_out="val"``)."""
        allowed = np.zeros(data.shape, dtype=bool)
        allowed[tuple(data.cells(fold.pretrain).T)] = True
        if self.held_out == "val" and len(fold.val):
            allowed[tuple(data.cells(fold.val).T)] = False
        return allowed

    def _held_out(self, data: SlotData, fold: Fold) -> tuple:
        """``(mask, what, n_units)``: the cells of the fold's held-out diagnostic.

        ``"unused"``: the units in no partition the fold trains or tests on (neither
        ``pretrain`` nor ``test``). Every protocol but ``subject-stimulus-kfold``
        pre-trains on all its non-test units, validation units included, so only that
        one leaves such units: its held-out subjects on the training stimuli and its
        training subjects on the held-out stimuli. ``"val"``: the validation units,
        which :meth:`pretrain_cells` then keeps out of pre-training. Test units never.
        ``mask`` is None when nothing is held out; ``what`` then says why.
        """
        if self.held_out == "none":
            return None, "not measured (held_out='none')", 0
        if self.held_out == "val":
            units, what = np.asarray(fold.val).reshape(-1, 2), "the fold's validation units"
        else:
            desc = data.description
            every = {(int(a), int(b)) for a, b in zip(desc["subject"], desc["trial"])}
            used = {tuple(map(int, u)) for part in (fold.pretrain, fold.test)
                    for u in np.asarray(part).reshape(-1, 2)}
            units = np.array(sorted(every - used), dtype=np.int64).reshape(-1, 2)
            what = ("units in no partition of the fold (neither pre-trained on nor tested: "
                    "held-out subjects on training stimuli, training subjects on held-out "
                    "stimuli)")
        if fold.leaky:
            return None, ("no held-out cells: legacy-segment folds split windows, not "
                          "units"), 0
        if not len(units):
            return None, ("no held-out cells: the fold has no validation units (protocol."
                          "val_size 0, or a label budget, which sets none aside)"
                          if self.held_out == "val" else
                          "no held-out cells: the fold pre-trains on every unit it does not "
                          "test (validation units included); held_out='val' keeps the "
                          "validation units out of pre-training to measure them"), 0
        mask = np.zeros(data.shape, dtype=bool)
        mask[tuple(data.cells(units).T)] = True
        return mask & data.valid, what, len(units)

    def _run_held_out(self, mask, cfg: PretrainConfig, sub: int):
        """*mask* if it fills a held-out batch of the run *cfg*, else None."""
        if mask is None or held_out_sampler(mask, cfg, n_sub=sub) is None:
            return None
        return mask

    def pretrain_folds(self, data: SlotData, folds: list) -> None:
        """Pre-train the encoders of several folds together, into :attr:`pretrain_cache`.

        The folds' runs are batched (:func:`~physiosync.training.fold_batch.pretrain_folds`)
        and stored under the keys each fold's :meth:`prepare_fold` looks up, so the
        folds then run as usual and find their encoders trained. Needs a
        ``pretrain_cache``; does nothing without pre-training.
        """
        from ..training.fold_batch import pretrain_folds
        from ..training.pretrain import encoder_cache_key

        if not self.do_pretrain or self.pretrain_cache is None:
            return
        masks = [self.pretrain_cells(data, fold) for fold in folds]
        held = [self._held_out(data, fold)[0] for fold in folds]
        mods = self.finetune_config.modalities
        for name in self._encoders():
            sub, cfg = self._run_config(name)
            run_held = [self._run_held_out(h, cfg, sub) for h in held]
            keys = [encoder_cache_key(a, name, sub, cfg, mods, self.device, self.objective, h)
                    for a, h in zip(masks, run_held)]
            todo = [k for k, key in enumerate(keys) if key not in self.pretrain_cache]
            if not todo:
                continue
            runs = pretrain_folds(data, cfg, allowed=[masks[k] for k in todo], n_sub=sub,
                                  modalities=mods, device=self.device,
                                  objective=self.objective, compile=self.compile,
                                  labels=[f"fold {folds[k].fold}, {name}-window pre-training"
                                          for k in todo],
                                  held_out=[run_held[k] for k in todo])
            for k, run in zip(todo, runs):
                self.pretrain_cache[keys[k]] = run

    def prepare_fold(self, data: SlotData, fold: Fold) -> None:
        super().prepare_fold(data, fold)
        self._pre, self._curves = {}, {"pretrain": {}, "finetune": []}
        self._initial = {}  # the fold's models start alike: built once (finetune init_cache)
        if not self.do_pretrain:
            return
        ft = self.finetune_config
        mask, what, n_units = self._held_out(data, fold)
        # each run's own held-out cells: they must fill that run's batches
        run_held = {}
        for name in self._encoders():
            sub, cfg = self._run_config(name)
            run_held[name] = self._run_held_out(mask, cfg, sub)
        runs = pretrain_physiosync(
            data, self.long_config, self.short_config, n_sub=self.n_sub, which=self._encoders(),
            held_out=run_held, allowed=self.pretrain_cells(data, fold),
            modalities=ft.modalities, device=self.device, context=f"fold {fold.fold}",
            cache=self.pretrain_cache, objective=self.objective, compile=self.compile)
        for name, (model, hist) in runs.items():
            self._pre[name] = model
            sub, cfg = self._run_config(name)
            # The training loss of a collapsed encoder. Below it on the training batches
            # is no evidence of learning (an encoder can memorise its windows); the
            # held-out curve is.
            collapsed = collapsed_loss(
                cfg.batch_slots, loss_weights=cfg.loss_weights, cmca_variant=cfg.cmca_variant,
                has_pps=len(tuple(ft.modalities or data.modalities)) > 1,
                objective=self.objective)
            curve = {**_curve(hist, "step", "loss"), "collapsed": collapsed}
            if run_held[name] is not None:
                curve["held_out"] = _held_out_curve(
                    hist, cfg, cfg.cmca_variant, what, n_units,
                    held_out_sampler(run_held[name], cfg, n_sub=sub).group_size)
            else:
                curve["held_out"] = {"cells": what if mask is None else (
                    f"{what}: too few to fill a batch of {cfg.batch_slots} slots seen by "
                    "2 held-out subjects each"), "units": n_units}
            self._curves["pretrain"][name] = curve

    def fit_predict(self, data: SlotData, train, val, test, *, n_classes: int,
                    subject: int | None) -> np.ndarray:
        ft = self.finetune_config
        fit = fit_physiosync(data, train, val, test, n_sub=self.n_sub, n_classes=n_classes,
                             finetune_config=ft, long_config=self.long_config,
                             short_config=self.short_config, pretrained=self._pre,
                             device=self.device, init_cache=self._initial)
        model, hist, proba = fit.model, fit.history, fit.proba
        self._curves["finetune"].append({"subject": subject,
                                         **_curve(hist, "epoch", "train_loss", "val_loss")})
        eeg = "eeg" if "eeg" in (ft.modalities or data.modalities) else None
        if self.importance and eeg is not None:
            self._importance.append(channel_importance(model, data, test, modality=eeg))
        return proba


@verbose
@deprecated_show_progress
def run_fold(data: SlotData, fold: Fold, *, n_sub: int = 5, per_subject: bool = True,
             long_config: PretrainConfig | None = None,
             short_config: PretrainConfig | None = None,
             finetune_config: FinetuneConfig | None = None, do_pretrain: bool = True,
             one_class: str = "error", val_size: float = 0.1, seed: int = 0,
             importance: bool = True, device=None, pretrain_cache: dict | None = None,
             objective: str = "ls-tcl", compile: str | None = None,
             held_out: str = "val", verbose: bool | str | int | None = None):
    """Pre-train, fine-tune and predict one fold (:class:`PhysioSyncRunner`).

    Parameters
    ----------
    data : SlotData
        Long windows of every subject, with per-trial ``labels``.
    %(fold)s
    %(n_sub)s
    per_subject : bool
        Fine-tune one model per subject (within-subject protocols) instead of one pooled
        model. Pre-training is shared by the fold either way.
    long_config, short_config, finetune_config
        Hyper-parameters (defaults: the reference's).
    do_pretrain : bool
        ``False`` is the "no pre-training" ablation.
    one_class : {"error", "constant"}
        See :func:`run_fold_with`.
    val_size, seed : float, int
        ``legacy-segment`` only: share of training windows held out for epoch selection.
    importance : bool
        Also compute the EEG channel importance (mean ``|gradient x input|``) on the
        test windows.
    device : str | None
        Torch device.
    pretrain_cache : dict | None
        In-memory store of pre-trained encoders, filled and read by this function.
        Pre-training uses no labels, so runs of the same fold that differ only in
        their labels (the refits of a permutation null) can pass one dict to
        pre-train once. Entries are keyed by the allowed cells, the encoder and its
        configuration, not by the windows: never share one dict between datasets.
    objective : {"ls-tcl", "simclr"}
        The pre-training objective (see :func:`~physiosync.training.pretrain.pretrain`):
        PhysioSync's LS-TCL, or the EEG-only SimCLR baseline (two augmented views of
        one window; its ``collapsed`` curve level is that of its own batches).
    compile : {None, "default", "reduce-overhead", "max-autotune"}
        Compile the pre-training step (see :func:`~physiosync.training.pretrain.pretrain`).
        Like *device*, it is not part of the fold key.
    held_out : {"val", "unused", "none"}
        The cells of the held-out diagnostic of pre-training (the ``held_out`` curves),
        never test units. ``"val"`` (default, ``pretrain.held_out`` of a
        configuration): the fold's validation units, which are then kept out of
        pre-training, so that the encoder is measured on units it never trained on
        (part of the fold key). ``"unused"``: the units the fold neither pre-trains on
        nor tests, pre-training left as it is; only ``subject-stimulus-kfold`` leaves
        any (its held-out subjects on training stimuli, its training subjects on
        held-out stimuli), since the protocols pre-train on every non-test unit,
        validation units included. ``"none"``: no diagnostic, pre-training on every
        non-test unit. For given pre-training cells, the training of a run is
        bit-identical with or without the diagnostic.
    %(verbose)s
        It covers the pre-training steps and the fine-tuning epochs and their bars.

    Returns
    -------
    predictions : DataFrame
        As in :func:`run_fold_with`.
    details : dict
        ``curves`` and ``channel_importance`` (EEG, summing to 1, or None).
        ``curves["pretrain"]`` holds, per encoder (``"long"``, ``"short"``):

        - ``step``, ``loss``: the **training** loss of every step, on the batches the
          encoder trains on, and ``collapsed``, the loss of a collapsed encoder
          (:func:`~physiosync.models.losses.collapsed_loss`). A training loss below it
          is no evidence of learning: an encoder can memorise its windows;
        - ``held_out``: the diagnostic on cells the encoder never trains on (see
          *held_out*). ``cells`` (what was held out, or why nothing was) and ``units``
          (how many); when measured, also ``group_size`` (subjects per side of its
          batches), ``step``, ``loss`` (weighted total), the unweighted terms
          (``temporal_eeg``, ``temporal_pps``, ``cmca``) and ``retrieval_<term>`` (top-1
          accuracy of the true partner among the term's candidates) at the evaluated
          steps, and their reference levels: ``collapsed`` (per term and ``loss``),
          ``random_encoder`` (the values at step 0, the initial weights) and ``chance``
          (per ``retrieval_<term>``, 1 / candidates). Fold files written before it have
          no ``held_out``.

        ``curves["finetune"]`` holds, per model, ``subject`` and
        ``epoch``/``train_loss``/``val_loss``.
    """
    model = PhysioSyncRunner(n_sub=n_sub, long_config=long_config, short_config=short_config,
                             finetune_config=finetune_config, do_pretrain=do_pretrain,
                             importance=importance, device=device,
                             pretrain_cache=pretrain_cache, objective=objective,
                             compile=compile, held_out=held_out)
    return run_fold_with(data, fold, model=model, per_subject=per_subject, one_class=one_class,
                         val_size=val_size, seed=seed)


class EstimatorRunner(FoldRunner):
    """Any scikit-learn-style classifier, one fitted per group of a fold.

    Parameters
    ----------
    factory : callable
        ``factory() -> estimator``, a new unfitted classifier with ``fit(X, y)``,
        ``predict_proba(X)`` and ``classes_``.
    modalities : sequence of str | None
        Modalities given to the estimator (default: all of the data's).
    inputs : {"windows", "units"}
        ``"windows"``: ``X`` is a dict modality -> ndarray ``(n_windows, n_channels,
        n_times)`` and ``y`` the windows' labels. ``"units"``: ``X`` is an int array of
        ``(subject, trial)`` pairs, one row per training unit (each unit counts once)
        and one per test window, for estimators that read no signal.
    validation : {"ignore", "train", "fit"}
        What becomes of the group's validation cells: left out (``"ignore"``, so that
        the estimator learns from the same windows as a pipeline that selects its
        epoch on them), added to the training data (``"train"``), or passed to
        ``fit`` as ``X_val=..., y_val=...`` for model selection (``"fit"``; omitted
        when the group has none).
    importance : callable | None
        ``importance(estimator, data, modalities) -> ndarray (n_eeg_channels,) | None``,
        the fitted estimator's EEG channel importance.
    importance_method : str | None
        How *importance* is computed, for the report.
    window_ids : bool
        Also give the estimator where each window comes from: ``window_ids=`` (and
        ``window_ids_val=`` beside ``X_val``) to ``fit`` and ``window_ids=`` to
        ``predict_proba``, an int array ``(n_windows, 3)`` of subject id, trial id and
        window index in the trial (``"windows"`` inputs only), for estimators that
        smooth over the windows of a trial.

    Notes
    -----
    An estimator that chooses its hyper-parameters in ``fit`` and exposes them as
    ``best_params_`` (and how, as ``selection_``) has them recorded per model under
    ``model_selection`` in :meth:`fold_details`.
    """

    def __init__(self, factory, *, modalities=None, inputs: str = "windows",
                 validation: str = "ignore", importance=None,
                 importance_method: str | None = None, window_ids: bool = False):
        from .._utils import check_option

        check_option("inputs", inputs, ("windows", "units"))
        check_option("validation", validation, ("ignore", "train", "fit"))
        if window_ids and inputs != "windows":
            raise PhysioSyncError("window_ids=True needs inputs='windows'; with 'units' each "
                                  "row already is a (subject, trial) unit.")
        self.factory = factory
        self.modalities = None if modalities is None else tuple(modalities)
        self.inputs = inputs
        self.validation = validation
        self.importance = importance
        self.importance_method = importance_method
        self.window_ids = bool(window_ids)

    def hyperparameters(self) -> dict:
        est = self.factory()
        params = est.get_params(deep=False) if hasattr(est, "get_params") else repr(est)
        if isinstance(params, dict):  # where it runs and what it logs change no result
            params = {k: v for k, v in params.items() if k not in ("device", "verbose")}
        hp = {"estimator": type(est).__qualname__, "params": params,
              "modalities": self.modalities, "inputs": self.inputs,
              "validation": self.validation}
        if self.window_ids:  # the fold keys of other estimators stay as they were
            hp["window_ids"] = True
        return hp

    def prepare_fold(self, data: SlotData, fold: Fold) -> None:
        super().prepare_fold(data, fold)
        self._selection = []

    def fold_details(self) -> dict:
        details = super().fold_details()
        if getattr(self, "_selection", None):  # only estimators that choose: keys unchanged
            details["model_selection"] = self._selection
        return details

    @staticmethod
    def _window_ids(data: SlotData, cells: np.ndarray) -> np.ndarray:
        """``(subject id, trial id, window index)`` of each cell."""
        return np.column_stack([data.units_of(cells), cells[:, 2]]).astype(np.int64)

    def _X(self, data: SlotData, cells: np.ndarray, *, per_unit: bool = False):
        if self.inputs == "units":
            rows = np.unique(cells[:, :2], axis=0) if per_unit else cells[:, :2]
            return data.units_of(rows), rows
        idx = torch.from_numpy(cells)
        return {m: data.gather(m, idx[:, 0], idx[:, 1], idx[:, 2]).numpy()
                for m in self.modalities or data.modalities}, cells

    def fit_predict(self, data: SlotData, train, val, test, *, n_classes: int,
                    subject: int | None) -> np.ndarray:
        if self.validation == "train":
            train = np.concatenate([train, val])
        X, rows = self._X(data, train, per_unit=True)
        fit_params, predict_params = {}, {}
        if self.window_ids:
            fit_params["window_ids"] = self._window_ids(data, rows)
            predict_params["window_ids"] = self._window_ids(data, test)
        if self.validation == "fit" and len(val):
            X_val, val_rows = self._X(data, val, per_unit=True)
            fit_params.update(X_val=X_val, y_val=data.labels[val_rows[:, 0], val_rows[:, 1]])
            if self.window_ids:
                fit_params["window_ids_val"] = self._window_ids(data, val_rows)
        clf = self.factory()
        clf.fit(X, data.labels[rows[:, 0], rows[:, 1]], **fit_params)
        proba = np.zeros((len(test), n_classes))
        proba[:, clf.classes_] = clf.predict_proba(self._X(data, test)[0], **predict_params)
        if hasattr(clf, "best_params_"):
            self._selection.append({"subject": subject, "params": dict(clf.best_params_),
                                    "selection": getattr(clf, "selection_", None)})
        if self.importance is not None:
            w = self.importance(clf, data, tuple(self.modalities or data.modalities))
            if w is not None:
                self._importance.append(w)
        return proba


@fill_doc
def fold_metrics(pred: pd.DataFrame, n_classes: int = 2,
                 train_labels: dict | None = None) -> dict:
    """Window- and trial-level metrics of one fold's predictions, with their chance levels.

    Parameters
    ----------
    pred : DataFrame
        The fold's predictions (``subject``, ``trial``, ``y``, ``p0..p{C-1}``).
    %(n_classes)s
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
    subjects = data.units_of(cells)[:, 0]

    def counts(y):
        return np.bincount(y, minlength=n_classes).astype(int).tolist()

    return {"per_subject_models": bool(per_subject), "pooled": counts(labels),
            "subjects": {str(s): counts(labels[subjects == s]) for s in np.unique(subjects)}}


def _json_default(obj):
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


#: Arguments of a fold function that say how a fold runs, not what it computes: they
#: are left out of the fold keys (results agree to rounding whatever their value).
EXECUTION_ARGUMENTS = ("device", "pretrain_cache", "compile")


def _fold_key(fold: Fold, settings: dict | None, run_kwargs: dict) -> str:
    """The key a fold file must hold to be reused: the settings, the fold's hyper-parameters
    (all of *run_kwargs* but :data:`EXECUTION_ARGUMENTS`) and its manifest."""
    hp = {k: (v.hyperparameters() if isinstance(v, FoldRunner)
              else asdict(v) if hasattr(v, "__dataclass_fields__") else v)
          for k, v in run_kwargs.items() if k not in EXECUTION_ARGUMENTS}
    return fingerprint(json.dumps({"settings": settings or {}, "hp": hp}, sort_keys=True,
                                  default=str), fold.manifest())


def fold_checksum(record: dict) -> str:
    """SHA-256 of a fold record but its ``checksum`` key (canonical JSON: sorted keys).

    *record* must be as read back from its file (JSON types only).
    """
    body = {k: v for k, v in record.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _same(a, b) -> bool:
    """Whether two JSON values agree, numbers to rounding (NaN equals NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b or a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return bool(np.isclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True))
    return a == b


def _metrics_problem(done: dict) -> str | None:
    """Why a fold record's metrics do not follow from its predictions, or None."""
    if done.get("train_labels") is None:  # not recorded: its metrics are redone from the data
        return None
    try:
        pred = pd.DataFrame(done["predictions"])
        n_classes = sum(1 for c in pred.columns if str(c)[:1] == "p" and str(c)[1:].isdigit())
        expected = fold_metrics(pred, n_classes, done["train_labels"])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return "holds predictions or training labels of the wrong shape"
    if not _same(json.loads(json.dumps(expected, default=_json_default)), done.get("metrics")):
        return "holds metrics that do not follow from its predictions"
    return None


def _reusable_fold(path: Path, key: str, data_key: str | None) -> tuple:
    """``(record, None)`` if the fold file at *path* may be reused, ``(None, None)`` if
    there is none, else ``(None, why)``: why it must be recomputed.

    A fold file is reused only if it is a JSON object holding *key* (settings,
    hyper-parameters and the fold's units), the content key *data_key* of the data
    (when given), a checksum that matches its body (files of older versions have
    none), a schema version this version reads (:func:`~.schema.migrate_fold`), and
    metrics that follow from its predictions. The record returned is migrated to
    :data:`~.schema.FOLD_VERSION`; a file of a later version raises
    :class:`~physiosync.exceptions.DataFormatError`.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as err:
        return None, f"cannot be read ({getattr(err, 'strerror', None) or err})"
    try:
        done = json.loads(text)
    except ValueError:
        return None, "is not valid JSON (damaged or cut short)"
    if not isinstance(done, dict):
        return None, f"holds a JSON {type(done).__name__}, not a fold record"
    if "checksum" in done and done["checksum"] != fold_checksum(done):
        return None, "does not match its checksum (edited or damaged)"
    # a newer physiosync's file is refused (DataFormatError), never overwritten
    done = migrate_fold(done, source=f"fold file {path}")
    if done.get("key") != key:
        return None, "was computed with other settings or on other units"
    if data_key is not None and done.get("data_key") != data_key:
        return None, ("was computed on other data (its data content key differs)"
                      if "data_key" in done else "records no data content key")
    problem = _metrics_problem(done)
    if problem:
        return None, problem
    return done, None


def pending_folds(folds: list, out_dir, *, settings: dict | None = None, resume: bool = True,
                  data_key: str | None = None, **run_kwargs) -> list:
    """The folds :func:`cross_validate` would compute rather than reuse.

    Parameters are those of :func:`cross_validate`: a fold is pending unless *resume*
    and its fold file may be reused (it holds the key of these settings and
    *data_key*, and passes its checks).
    """
    pending = []
    for fold in folds:
        path = Path(out_dir) / f"fold_{fold.fold:02d}.json"
        done = resume and _reusable_fold(path, _fold_key(fold, settings, run_kwargs),
                                         data_key)[0] is not None
        if not done:
            pending.append(fold)
    return pending


@verbose
@deprecated_show_progress
def cross_validate(data: SlotData, folds: list, out_dir, *, settings: dict | None = None,
                   resume: bool = True, runner=None, data_key: str | None = None,
                   verbose: bool | str | int | None = None, **run_kwargs) -> list[dict]:
    """Run every fold, persisting each one atomically; resume skips finished folds.

    Parameters
    ----------
    %(labelled_slots)s
    folds : list of Fold
        From :func:`physiosync.evaluation.protocols.make_folds`.
    out_dir : str | Path
        Where ``fold_XX.json`` files go.
    settings : dict | None
        Anything else that defines the run (protocol, target, dataset); hashed with the
        hyper-parameters so that a finished fold is reused only for identical settings.
    resume : bool
        Reuse finished folds of identical settings. A fold file is reused only if it
        holds the key of these settings and of the fold's units, *data_key* (when
        given), a checksum matching its body, and metrics that follow from its
        predictions; any other fold file (edited, damaged, of another shape, from
        other data) is recomputed, with a warning naming it.
    runner : callable | None
        ``runner(data, fold, **run_kwargs) -> (predictions, details)``; default
        :func:`run_fold`. :func:`run_fold_with` with ``model=`` any :class:`FoldRunner`
        runs that runner (its :meth:`~FoldRunner.hyperparameters` key the folds).
    %(verbose)s
        It covers *runner* and the bars over folds and within them.
    data_key : str | None
        The content key of the data (:func:`~physiosync.preprocessing.cache.data_content_key`),
        recorded in each fold file; not part of the fold key.
    **run_kwargs
        Passed to *runner*.

    Returns
    -------
    results : list of dict
        Per fold: ``key``, ``data_key`` (when given), ``fold``, the manifest (``train``,
        ``val``, ``test``, ``pretrain``), ``metrics`` (:func:`fold_metrics`),
        ``train_labels`` (:func:`train_label_counts`), ``predictions`` (records),
        ``curves``, ``channel_importance`` and ``checksum`` (:func:`fold_checksum`).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    n_classes = int(max(data.labels.max() + 1, 2))
    split = {k: run_kwargs[k] for k in ("per_subject", "val_size", "seed") if k in run_kwargs}
    results = []
    for fold in progress(folds, desc=str((settings or {}).get("pipeline", "cv"))):
        key = _fold_key(fold, settings, run_kwargs)
        path = out_dir / f"fold_{fold.fold:02d}.json"
        if resume:
            done, why = _reusable_fold(path, key, data_key)
            if done is not None:
                logger.info("fold %d already done, reusing %s", fold.fold, path)
                if done.get("train_labels") is None:  # not recorded in the file
                    done["train_labels"] = train_label_counts(data, fold, **split)
                    done["metrics"] = fold_metrics(pd.DataFrame(done["predictions"]),
                                                   n_classes, done["train_labels"])
                results.append(done)
                continue
            if why is not None:
                logger.warning("fold file %s %s; recomputing fold %d.", path, why, fold.fold)
        try:
            pred, details = (runner or run_fold)(data, fold, **run_kwargs)
        except TrainingDivergedError as err:
            # Say which run diverged: the message reaches a user running many pipelines.
            where = f"pipeline {(settings or {}).get('pipeline', 'cv')!r}, "
            if not str(err).startswith("fold "):
                where += f"fold {fold.fold}, "
            raise TrainingDivergedError(where + str(err)) from err
        train_labels = train_label_counts(data, fold, **split)
        record = {"schema_version": FOLD_VERSION, "key": key,
                  **({} if data_key is None else {"data_key": data_key}),
                  **fold.manifest(),
                  "metrics": fold_metrics(pred, n_classes, train_labels),
                  "train_labels": train_labels,
                  "predictions": pred.to_dict(orient="records"), **details}
        # the checksum of the record as it reads back (JSON types only)
        record["checksum"] = fold_checksum(json.loads(json.dumps(record,
                                                                 default=_json_default)))
        atomic_write(path, json.dumps(record, default=_json_default))
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
        rows = data.locate(part)
        for s in np.unique(rows[:, 0]):
            i, j = rows[rows[:, 0] == s].T
            labels[i, j] = rng.permutation(labels[i, j])
    out = copy.copy(data)  # shares the window tensors
    out.labels = labels
    return out
