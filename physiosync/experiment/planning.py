"""Planning a study before any training: its folds, its pipelines and its checks.

:func:`plan_folds` makes the protocol's folds; each pipeline of the configuration is
resolved once into a ``PipelinePlan`` (its
configuration, its kind, its folds) that the rest of the run takes; :func:`preflight` runs
every check that must pass before training; :func:`plan_experiment` does all of it on the
prepared data and tabulates each fold's partitions. :func:`describe_pipeline` says what a
pipeline runs, for the report.
"""

from __future__ import annotations

import numpy as np

from .._logging import verbose
from ..config import ConfigError, RunConfig
from ..evaluation.label_budget import sort_budgets
from ..evaluation.protocols import get_protocol, make_folds
from ..exceptions import PhysioSyncError
from .data import ExperimentData, load_experiment_data

__all__ = ["plan_folds", "preflight", "plan_experiment", "describe_pipeline"]


def plan_folds(cfg: RunConfig, data: ExperimentData) -> list:
    """The protocol's folds (raises before any training if they cannot be made)."""
    p = cfg.protocol
    n_windows = None
    if get_protocol(p.name).splits_windows:
        s, t = data.slots.locate(data.units).T
        n_windows = data.slots.valid[s, t].sum(axis=1)
    facts = {}
    if getattr(data, "sessions", None) is not None or getattr(data, "stimuli", None) is not None:
        facts.update(sessions=data.sessions, stimuli=data.stimuli)
    if get_protocol(p.name).traits.first_trials:
        facts["train_trials"] = (p.train_trials if p.train_trials is not None
                                 else getattr(data, "session_train_trials", None))
    return make_folds(data.units, p.name, n_splits=p.n_splits, labels=data.labels,
                      val_size=p.val_size, seed=cfg.seed, n_windows=n_windows, **facts)


def _per_subject(cfg: RunConfig) -> bool:
    return get_protocol(cfg.protocol.name).per_subject_models and not cfg.protocol.pooled


def _plans(cfg: RunConfig, folds: list) -> list:
    """Each pipeline of *cfg* resolved once into its
    ``PipelinePlan``."""
    from ..evaluation.pipelines import plan_pipeline

    return [plan_pipeline(cfg, spec, folds) for spec in cfg.pipelines]


def preflight(cfg: RunConfig, data: ExperimentData, folds: list, *,
              plans: list | None = None) -> None:
    """Checks that must pass before any training.

    Two classes in the data and in every model's training split, the modalities each
    pipeline uses, and enough pre-training subjects per stimulus slot in every fold.
    *plans* are the run's ``PipelinePlan``
    (resolved here when None).
    """
    from ..evaluation.runner import one_class_models

    labels_present = np.unique(data.labels[data.labels >= 0])
    if len(labels_present) < 2:
        raise PhysioSyncError(f"target {cfg.data.target!r}: every trial of the data has the "
                              f"same class ({labels_present.tolist()}); nothing to classify.")
    from ..evaluation.label_budget import labelled_fold

    budgeted = _label_budgets(cfg) or [None]
    for fold in folds:
        for b in budgeted:  # every budget's models must see two classes too
            one_class_models(data.slots, fold if b is None else labelled_fold(
                                 data.slots, fold, b, seed=cfg.seed),
                             per_subject=_per_subject(cfg), one_class=cfg.protocol.one_class,
                             val_size=cfg.protocol.val_size, seed=cfg.seed)
    for plan in _plans(cfg, folds) if plans is None else plans:
        mods = plan.config.finetune.modalities
        missing = [m for m in (mods or ()) if m not in data.slots.modalities]
        if missing:
            raise ConfigError(f"pipeline {plan.name!r} uses {', '.join(missing)}, which "
                              f"data.modalities ({', '.join(data.slots.modalities)}) lacks.")
        plan.kind.preflight(plan.config, data, folds, pipeline=plan.name)


@verbose
def plan_experiment(cfg: RunConfig, *, verbose: bool | str | int | None = None) -> dict:
    """Everything :func:`run_experiment` checks before training, without training.

    Prepares the data (through the cache), makes the folds and runs the pre-flight
    checks.

    Parameters
    ----------
    cfg : RunConfig
        The run's configuration.
    %(verbose)s
        It covers the preparation and its progress bar.

    Returns
    -------
    plan : dict
        ``data`` (:class:`ExperimentData`), ``folds``, ``pipelines`` (one
        ``PipelinePlan`` per pipeline, in
        ``cfg.pipelines`` order) and ``table``, a DataFrame with the number of subjects,
        units and windows of each partition per fold.
    """
    import pandas as pd

    from ..evaluation.runner import fold_cells
    from .._utils import resolve_device

    resolve_device(cfg.device)  # an unavailable device fails before the data is prepared
    data = load_experiment_data(cfg)
    folds = plan_folds(cfg, data)
    plans = _plans(cfg, folds)
    preflight(cfg, data, folds, plans=plans)
    rows = []
    for fold in folds:
        train, val, test = fold_cells(data.slots, fold, val_size=cfg.protocol.val_size,
                                      seed=cfg.seed)
        row = {"fold": fold.fold}
        for name, cells in (("train", train), ("val", val), ("test", test)):
            row[f"{name}_subjects"] = len(set(cells[:, 0].tolist()))
            row[f"{name}_units"] = len({(s, t) for s, t in cells[:, :2].tolist()})
            row[f"{name}_windows"] = len(cells)
        row["pretrain_units"] = len(fold.pretrain)
        rows.append(row)
    return {"data": data, "folds": folds, "pipelines": plans,
            "table": pd.DataFrame(rows).set_index("fold")}


def _label_budgets(cfg: RunConfig) -> list | None:
    """The study's label budgets in increasing order (``"all"`` last), or None."""
    budgets = cfg.protocol.labelled_trials
    return sort_budgets(budgets) if budgets else None


def _common(pc: RunConfig) -> dict:
    """The fold-loop arguments every pipeline kind takes, from a pipeline's configuration."""
    return dict(per_subject=_per_subject(pc), one_class=pc.protocol.one_class,
                val_size=pc.protocol.val_size, seed=pc.seed)


def describe_pipeline(cfg: RunConfig, spec: dict, data: ExperimentData | None = None) -> dict:
    """What a pipeline runs, for the report: its kind, encoder embedding and inputs.

    Returns
    -------
    model : dict
        ``kind``; ``embedding`` (``{"long": ..., "short": ...}`` for the encoders the
        pipeline fine-tunes, None for the baselines); ``pretrained``; ``modalities``;
        ``shared_across_subjects`` (what the subjects' models of a fold share, or None:
        ``shared_across_subjects()``);
        and ``text``, one line such as ``"PhysioSync, spectral embedding (long 5 s,
        short 1 s), pre-trained; eeg + gsr"``.
    """
    from ..evaluation.pipelines import plan_pipeline

    return _describe(cfg, plan_pipeline(cfg, spec), data)


def _describe(cfg: RunConfig, plan, data: ExperimentData | None) -> dict:
    """:func:`describe_pipeline` of a resolved pipeline."""
    pc, kind = plan.config, plan.kind
    mods = list(pc.finetune.modalities or (data.slots.modalities if data is not None
                                           else cfg.data.modalities or ()))
    out = {"kind": plan.kind_name, "embedding": None, "pretrained": None,
           "modalities": mods if kind.uses_signal else [],
           "shared_across_subjects": kind.shared_across_subjects(pc)}
    out.update(kind.describe(pc))
    if out["modalities"]:
        out["text"] += "; " + " + ".join(out["modalities"])
    return out
