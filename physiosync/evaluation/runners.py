"""The fold runners: what PhysioSync and any scikit-learn-style estimator do in a fold.

:class:`PhysioSyncRunner` pre-trains once per fold (LS-TCL, or the SimCLR baseline) on
the fold's ``pretrain`` units only, then fine-tunes per group with epoch selection on
the group's validation cells; :func:`run_fold` runs one fold with it.
:class:`EstimatorRunner` fits any classifier with ``fit``/``predict_proba`` per group,
as the baselines do. Both are :class:`~physiosync.evaluation.fold_loop.FoldRunner`
subclasses, run by :func:`~physiosync.evaluation.fold_loop.run_fold_with`.
"""

from __future__ import annotations

from dataclasses import asdict

import numpy as np
import torch

from .._logging import deprecated_show_progress, verbose
from .._utils.checks import check_option
from ..exceptions import PhysioSyncError
from ..models.losses import collapsed_loss, retrieval_chance
from ..params import PRETRAIN_HELD_OUT, PRETRAIN_OBJECTIVES, FinetuneConfig, PretrainConfig
from ..training.finetune import channel_importance
from ..training.pretrain import held_out_sampler
from ..training.sampling import SlotData
from .fit import encoders_used, fit_physiosync, pretrain_physiosync
from .fold_loop import FoldRunner, run_fold_with
from .protocols import Fold

__all__ = ["PhysioSyncRunner", "EstimatorRunner", "run_fold", "HELD_OUT_CHOICES"]


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
    total of ``collapsed_loss()`` for ``loss``;
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
        """Pre-train the encoders of several folds together, into ``pretrain_cache``.

        The folds' runs are batched (``pretrain_folds()``)
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
        See :func:`~physiosync.evaluation.runner.run_fold_with`.
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
        As in :func:`~physiosync.evaluation.runner.run_fold_with`.
    details : dict
        ``curves`` and ``channel_importance`` (EEG, summing to 1, or None).
        ``curves["pretrain"]`` holds, per encoder (``"long"``, ``"short"``):

        - ``step``, ``loss``: the **training** loss of every step, on the batches the
          encoder trains on, and ``collapsed``, the loss of a collapsed encoder
          (``collapsed_loss()``). A training loss below it
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
        ``(subject, stimulus)`` pairs, one row per training unit (each unit counts once)
        and one per test window, for estimators that read no signal; the stimulus is
        the trial id unless the data give one (``SlotData.stimuli``: a SEED clip shown in each
        session).
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
    ``model_selection`` in ``fold_details()``.
    """

    def __init__(self, factory, *, modalities=None, inputs: str = "windows",
                 validation: str = "ignore", importance=None,
                 importance_method: str | None = None, window_ids: bool = False):
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
            units = data.units_of(rows)
            if data.stimuli is not None:
                units[:, 1] = data.stimuli[rows[:, 0], rows[:, 1]]
            return units, rows
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
