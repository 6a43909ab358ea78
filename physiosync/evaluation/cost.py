"""What a pipeline trains in a study, and how long that takes on this machine.

:func:`pipeline_cost` counts, from a study's folds, the models a pipeline fits (one
per subject and fold under a within-subject protocol, one per fold when pooled; none
for a subject whose training labels hold one class, which gets the constant
prediction), its pre-training runs and their steps, and its fine-tuning epochs and
steps, exactly as :func:`~physiosync.evaluation.runner.run_fold_with` and
:class:`~physiosync.evaluation.runner.PhysioSyncRunner` will run them. With
``timed=True`` it also runs a few steps of each distinct model on the study's own
windows and multiplies them out:

- PhysioSync (and SimCLR) pre-training: :func:`~physiosync.training.pretrain.time_pretrain`
  (``warmup`` untimed steps, then ``steps`` timed ones); a run costs its setup plus its
  steps, plus the forward passes of its held-out diagnostic;
- fine-tuning: :func:`~physiosync.training.finetune.time_finetune` (full batches); a
  model costs its setup plus, per epoch, its training windows at the timed seconds per
  window and one prediction over its validation windows, plus the prediction and
  channel importance of its test windows;
- braindecode networks: two one-epoch fits of one and ``1 + steps`` batches, whose
  difference gives the seconds of a step;
- any other estimator (band power, DE, stimulus prior): one fit of the largest model
  of the first fold, after one fit of the smallest, scaled to each model's windows.

The low and high ends of an estimate come from the fastest and the slowest timed step.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from ..exceptions import TrainingDivergedError
from ..training.finetune import _balanced, steps_per_epoch, time_finetune
from ..training.pretrain import (HELD_OUT_BATCHES, held_out_steps, make_sampler, run_steps,
                                 time_pretrain)
from .fold_loop import _groups, _pick, fold_cells, one_class_models
from .runners import EstimatorRunner, PhysioSyncRunner

__all__ = ["pipeline_cost", "COST_COLUMNS"]

#: Columns of a cost row (:func:`pipeline_cost`), in order.
COST_COLUMNS = ("models", "pretrain_runs", "pretrain_steps_long", "pretrain_steps_short",
                "finetune_epochs", "finetune_steps", "seconds", "low", "high", "timed")


def _models(slots, fold, *, per_subject: bool, val_size: float, seed: int) -> list:
    """``(train, val, test)`` cells of every model the fold loop fits in *fold*."""
    train, val, test = fold_cells(slots, fold, val_size=val_size, seed=seed)
    # a one-class group gets the constant prediction, never a model (with
    # one_class="error" the pre-flight checks have refused it already)
    single = one_class_models(slots, fold, per_subject=per_subject, one_class="constant",
                              val_size=val_size, seed=seed)
    out = []
    for g in _groups(test, per_subject):
        te = _pick(test, g)
        if len(te) and g not in single:
            out.append((_pick(train, g), _pick(val, g), te))
    return out


def _pretrain_runs(model: PhysioSyncRunner, slots, fold) -> list:
    """``(name, n_sub, config, allowed, held_out)`` of each pre-training run of *fold*."""
    if not model.do_pretrain:
        return []
    allowed = model.pretrain_cells(slots, fold) & slots.valid
    mask = model._held_out(slots, fold)[0]
    out = []
    for name in model._encoders():
        sub, cfg = (1, model.long_config) if name == "long" else (model.n_sub,
                                                                   model.short_config)
        out.append((name, sub, cfg, allowed, model._run_held_out(mask, cfg, sub)))
    return out


def _shapes(slots) -> str:
    """The window shapes of *slots*: timings hold for windows of these shapes."""
    return repr({m: (slots.n_chans(m), slots.n_times(m)) for m in slots.modalities})


def _spread(seconds: list) -> tuple:
    """Median, fastest and slowest of timed step seconds."""
    s = np.asarray(seconds, dtype=float)
    return float(np.median(s)), float(s.min()), float(s.max())


def pipeline_cost(slots, folds: list, model, *, per_subject: bool, val_size: float = 0.1,
                  seed: int = 0, timed: bool = True, steps: int = 3, warmup: int = 1,
                  timings: dict | None = None) -> dict:
    """The models, steps and estimated seconds of one pipeline over a study's folds.

    Parameters
    ----------
    slots : SlotData
        The study's labelled windows.
    folds : list of (Fold, hashable)
        Every fold the pipeline runs (label budgets and refits included), each with the
        scope of the pre-training cache it shares: pre-training runs on the same cells
        within one scope run once (the label budgets of a fold, or its refits).
    model : FoldRunner
        What trains a fold's models
        (:meth:`~physiosync.evaluation.pipelines.PipelineKind.fold_runner`).
    per_subject : bool
        One model per subject and fold, else one per fold.
    val_size, seed : float, int
        As in :func:`~physiosync.evaluation.runner.run_fold_with`.
    timed : bool
        Also time a few steps of each distinct model (see the module's description);
        otherwise ``seconds``, ``low`` and ``high`` are NaN.
    steps, warmup : int
        Steps timed per model, after *warmup* untimed ones.
    timings : dict | None
        Timings already measured, reused and filled: a network of several pipelines
        (or studies) with the same settings and window shapes is timed once.

    Returns
    -------
    cost : dict
        The :data:`COST_COLUMNS`: ``models`` fitted; ``pretrain_runs`` and the steps
        of all long and short pre-training runs; ``finetune_epochs`` per model and
        ``finetune_steps`` over all models (0 for estimators fitted in one call; for a
        braindecode network, its epochs and steps); ``seconds`` and its ``low`` and
        ``high`` ends; ``timed``, how the seconds were measured.
    """
    timings = {} if timings is None else timings
    split = dict(per_subject=per_subject, val_size=val_size, seed=seed)
    models, runs, seen = [], [], set()
    for fold, scope in folds:
        fits = _models(slots, fold, **split)
        models += [(fold, *cells) for cells in fits]
        if isinstance(model, PhysioSyncRunner):  # a fold pre-trains even if it fits nothing
            for name, sub, cfg, allowed, held in _pretrain_runs(model, slots, fold):
                key = (scope, name, allowed.tobytes())
                if key not in seen:
                    seen.add(key)
                    sampler = make_sampler(allowed, cfg, n_sub=sub, objective=model.objective)
                    runs.append((name, sub, cfg, allowed, held, run_steps(cfg, sampler)))
    row = dict.fromkeys(COST_COLUMNS, 0)
    row.update(models=len(models), pretrain_runs=len(runs), seconds=float("nan"),
               low=float("nan"), high=float("nan"), timed="not timed")
    for name, *_, n in runs:
        row[f"pretrain_steps_{name}"] += n
    deep = _deep_classifier(model)
    if isinstance(model, PhysioSyncRunner):
        ft = model.finetune_config
        row["finetune_epochs"] = ft.epochs
        row["finetune_steps"] = sum(ft.epochs * steps_per_epoch(len(tr), ft.batch_size)
                                    for _, tr, _, _ in models)
    elif deep is not None:
        row["finetune_epochs"] = deep.n_epochs
        row["finetune_steps"] = sum(deep.n_epochs * steps_per_epoch(len(tr), deep.batch_size)
                                    for _, tr, _, _ in models)
    if not timed or not (models or runs):
        if timed:
            row.update(seconds=0.0, low=0.0, high=0.0, timed="nothing to train")
        return row
    try:
        if isinstance(model, PhysioSyncRunner):
            total = _time_physiosync(slots, model, runs, models, timings, steps, warmup)
            row["timed"] = f"{warmup} warm-up + {steps} timed steps per network"
        elif deep is not None:
            total = _time_deep(slots, model, deep, models, timings, steps)
            row["timed"] = f"1 warm-up + {steps} timed steps per network"
        else:
            total = _time_estimator(slots, model, models, timings)
            row["timed"] = "one fit timed, scaled to each model's windows"
    except TrainingDivergedError:
        # the run itself reports a divergence, naming its fold and checkpoint
        row["timed"] = "not timed: the timed steps diverged"
        return row
    row.update(seconds=total[0], low=total[1], high=total[2])
    return row


def _deep_classifier(model):
    """The braindecode classifier an :class:`EstimatorRunner` fits, or None."""
    if not isinstance(model, EstimatorRunner):
        return None
    est = model.factory()
    from .deep import BraindecodeClassifier

    return est if isinstance(est, BraindecodeClassifier) else None


def _time_physiosync(slots, model: PhysioSyncRunner, runs: list, models: list, timings: dict,
                     steps: int, warmup: int) -> np.ndarray:
    """Seconds (estimate, low, high) of the pre-training runs and fine-tuned models."""
    mods = model.finetune_config.modalities
    total = np.zeros(3)
    pretrained = {}
    if "process" not in timings:
        # one step of the smallest model first: the one-off costs of a process's first
        # training step (imports of torch's optimiser machinery: seconds) are not a
        # run's, which pays them once
        name, sub, cfg, allowed, *_ = runs[0] if runs else ("long", 1, model.long_config,
                                                               slots.valid)
        small = dataclasses.replace(cfg, embed_dim=8, depth=1, n_heads=2, n_prompts=0,
                                    projector_dims=(8,), cmca_dim=8)
        t0 = time.perf_counter()
        time_pretrain(slots, small, allowed=allowed, n_sub=sub, modalities=mods, device=model.device,
                      objective=model.objective, steps=1, warmup=0)
        timings["process"] = time.perf_counter() - t0
    for name, sub, cfg, allowed, held, n in runs:
        key = ("pretrain", _shapes(slots), name, sub, repr(cfg), repr(mods), model.objective,
               str(model.device), held is not None)
        if key not in timings:
            timings[key] = time_pretrain(slots, cfg, allowed=allowed, n_sub=sub,
                                         modalities=mods, device=model.device,
                                         objective=model.objective, held_out=held,
                                         steps=steps, warmup=warmup)
        t = timings[key]
        pretrained.setdefault(name, t["model"])
        points = len(held_out_steps(n)) * HELD_OUT_BATCHES if held is not None else 0
        extra = t["setup"] + points * (t["held_out_batch"] or 0.0)
        total += extra + n * np.array(_spread(t["step"]))
    ft = model.finetune_config
    if not models:
        return total
    key = ("finetune", _shapes(slots), repr(ft), repr(model.long_config),
           repr(model.short_config),
           model.n_sub, model.do_pretrain, model.importance, str(model.device))
    if key not in timings:
        biggest = max(models, key=lambda m: len(m[1]))
        n_classes = slots.n_classes
        timings[key] = time_finetune(
            slots, biggest[1], config=ft, pretrained=pretrained if model.do_pretrain else None,
            n_sub=model.n_sub, n_classes=n_classes, long_config=model.long_config,
            short_config=model.short_config, device=model.device,
            importance=model.importance, steps=steps, warmup=warmup)
    t = timings[key]
    per_window = np.array(_spread(t["step"])) / t["batch"]
    infer = t["predict_window"]
    test_window = infer + (t["importance_window"] or 0.0)
    # a fold builds its first network; its other models start from a copy of it
    total += t["setup"] * len({id(m[0]) for m in models})
    for _, tr, va, te in models:
        train = ft.epochs * steps_per_epoch(len(tr), ft.batch_size) * t["batch"]
        train = min(train, ft.epochs * len(tr))  # a short last batch costs its windows
        total += ft.epochs * len(va) * infer + len(te) * test_window + train * per_window
    return total


def _cells_X(slots, cells, modalities):
    """The windows at *cells* as the estimators take them: modality -> array."""
    import torch

    idx = torch.from_numpy(np.asarray(cells, dtype=np.int64))
    return {m: slots.gather(m, idx[:, 0], idx[:, 1], idx[:, 2]).numpy()
            for m in modalities or slots.modalities}


def _time_deep(slots, model: EstimatorRunner, deep, models: list, timings: dict,
               steps: int) -> np.ndarray:
    """Seconds (estimate, low, high) of a braindecode network's fits."""
    key = ("deep", _shapes(slots), repr(deep.get_params()), repr(model.modalities))
    if key not in timings:
        _, tr, _, _ = max(models, key=lambda m: len(m[1]))
        y = slots.labels[tr[:, 0], tr[:, 1]]
        b = deep.batch_size
        walls = []
        for n in (1, 1, 1 + steps):  # a warm-up, then one epoch of 1 and of 1 + steps batches
            rows = _balanced(np.arange(len(tr)), y, n * b)
            X = _cells_X(slots, tr[rows], model.modalities)
            clf = model.factory().set_params(n_epochs=1)
            t0 = time.perf_counter()
            clf.fit(X, y[rows])
            walls.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        clf.predict_proba(X)
        infer = (time.perf_counter() - t0) / (len(rows))
        step = max((walls[2] - walls[1]) / steps, 0.0)
        timings[key] = {"step": step, "setup": max(walls[1] - step, 0.0), "infer": infer,
                        "batch": b}
    t = timings[key]
    total = 0.0
    for _, tr, va, te in models:
        n = deep.n_epochs * steps_per_epoch(len(tr), t["batch"])
        total += t["setup"] + n * t["step"] + (deep.n_epochs * len(va) + len(te)) * t["infer"]
    # two walls give one step time: no spread to report
    return np.array([total, total, total])


def _time_estimator(slots, model: EstimatorRunner, models: list, timings: dict) -> np.ndarray:
    """Seconds (estimate, low, high) of an estimator's fits, scaled to their windows."""
    key = ("estimator", _shapes(slots), repr(model.hyperparameters()))
    n_classes = slots.n_classes

    def windows(m):
        return len(m[1]) + len(m[2]) + len(m[3])

    if key not in timings:
        fold = models[0][0]
        first = [m for m in models if m[0] is fold]
        model.prepare_fold(slots, fold)
        seconds = []
        for m in (min(first, key=windows), max(first, key=windows)):  # a warm-up, then timed
            t0 = time.perf_counter()
            model.fit_predict(slots, m[1], m[2], m[3], n_classes=n_classes, subject=None)
            seconds.append(time.perf_counter() - t0)
        timings[key] = seconds[-1] / windows(max(first, key=windows))
    total = timings[key] * sum(windows(m) for m in models)
    return np.array([total, total, total])
