"""The main job: from a validated configuration to a cross-validation report.

:func:`run_experiment` opens the dataset, prepares (or reads from the cache) every
subject, cuts the long windows, makes the protocol's folds, checks everything that
could fail *before* any training (missing data, too many folds, a target the data
lacks, a training split with one class), then runs each pipeline of the
configuration on the same folds and writes one report comparing them::

    out_dir/
      config.yaml            resolved configuration, versions, data source
      folds/<pipeline>/fold_XX.json   per-fold manifest, metrics, predictions, curves
      folds/<pipeline>/refit_null/rNNN/fold_XX.json   refits on permuted training labels
                                                      (protocol.permutation_refit)
      folds/<pipeline>/labelled_NNN/fold_XX.json      a label-efficiency study: one folder
                                                      per budget (protocol.labelled_trials)
      report.json  results.csv  report.md  report.html

An interrupted run, started again with the same configuration and output folder,
skips the folds already completed and ends with the same report.
"""

from __future__ import annotations

import contextlib
import dataclasses
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ._version import __version__
from ._logging import deprecated_show_progress, log_to_file, logger, verbose
from .config import ConfigError, RunConfig, dump_config
from .exceptions import PhysioSyncError
from .evaluation.label_budget import sort_budgets
from .evaluation.protocols import get_protocol, make_folds
from ._utils.docs import fill_doc

__all__ = ["ExperimentData", "open_dataset", "load_experiment_data", "plan_folds",
           "describe_pipeline", "describe_data", "preflight", "plan_experiment",
           "CostEstimate", "estimate_cost", "run_experiment", "describe_run", "versions"]


@dataclass
class ExperimentData:
    """Everything the runner needs from the dataset.

    Attributes
    ----------
    slots : SlotData
        Labelled long windows on the ``(subject, trial, window)`` grid.
    units : ndarray of int, shape (n, 2)
        ``(subject, trial)`` pairs with data, in grid order.
    labels : ndarray of int, shape (n,)
        Class of each unit.
    sfreq : dict of str -> float
        Sampling rate of each modality.
    channels : dict of str -> list of str
        Channel names of each modality.
    source : dict
        Where the data came from (for ``config.yaml``).
    content_key : str | None
        Content key of the source files of the subjects used
        (:func:`~physiosync.preprocessing.cache.data_content_key`), recorded in every
        fold file so that a fold computed on other data is never reused.
    synthetic : bool | None
        Whether physiosync's synthetic writers wrote every source file
        (:meth:`~physiosync.datasets.BaseDataset.synthetic`); None: not checked.
    """

    slots: object
    units: np.ndarray
    labels: np.ndarray
    sfreq: dict
    channels: dict
    source: dict
    content_key: str | None = None
    synthetic: bool | None = None

    @property
    def n_classes(self) -> int:
        """2 for high/low targets, 4 for quadrants."""
        return int(max(self.labels.max() + 1, 2))


def versions() -> dict:
    """Versions of physiosync, Python and the main dependencies."""
    import mne
    import pandas
    import scipy
    import sklearn
    import torch

    return {"physiosync": __version__, "python": platform.python_version(),
            "numpy": np.__version__, "scipy": scipy.__version__, "pandas": pandas.__version__,
            "scikit-learn": sklearn.__version__, "mne": mne.__version__,
            "torch": str(torch.__version__)}


def open_dataset(data_cfg):
    """Open the configured dataset (see :func:`physiosync.datasets.open_dataset`)."""
    from .datasets import open_dataset as _open

    return _open(data_cfg.name, data_cfg.root, ratings_csv=data_cfg.ratings_csv)


@verbose
def load_experiment_data(cfg: RunConfig, *,
                         verbose: bool | str | int | None = None) -> ExperimentData:
    """Prepare the configured subjects and build the labelled long windows.

    Parameters
    ----------
    cfg : RunConfig
        The run's configuration; its ``data`` section is read.
    %(verbose)s
        It covers the preparation and its progress bar.

    Returns
    -------
    data : ExperimentData
        Labelled long windows, units, labels and a description of the source.
    """
    from .preprocessing.cache import data_content_key, prepare
    from .params import PrepareParams, default_modalities
    from .training.sampling import SlotData
    from .preprocessing.windows import make_windows

    d = cfg.data
    ds = open_dataset(d)
    modalities = tuple(d.modalities) if d.modalities else default_modalities(d.name)
    unknown = [m for m in modalities if m not in ds.modalities]
    if unknown:
        raise ConfigError(f"data.modalities: {ds.name} has no {', '.join(unknown)}; it has "
                          f"{', '.join(ds.modalities)}.")
    if modalities[0] != "eeg":
        raise ConfigError(f"data.modalities must start with 'eeg', got {list(modalities)}.")
    params = PrepareParams(modalities=modalities, baseline=d.baseline, norm=d.norm,
                           stimulus_seconds=d.stimulus_seconds,
                           bdf_preprocessing=d.bdf_preprocessing)
    subjects = list(d.subjects) if d.subjects else None
    prepared = prepare(ds, subjects, params=params, cache_dir=d.cache_dir)
    first = next(iter(prepared.values()))
    if first.seconds < d.long_seconds:
        raise ConfigError(f"data.long_seconds = {d.long_seconds:g} s is longer than the "
                          f"{first.seconds:g} s of stimulus kept per trial.")
    for m in modalities:
        n = first.sfreq[m] * d.long_seconds
        if abs(n - round(n)) > 1e-6 or round(n) % d.n_sub:
            raise ConfigError(f"data.n_sub = {d.n_sub} does not divide the {n:g} samples of a "
                              f"{d.long_seconds:g} s {m} window.")
    windows = make_windows(prepared, lengths=(d.long_seconds,))
    slots = SlotData.from_windows(windows, d.long_seconds, target=d.target)
    units_table = slots.description
    units = units_table[["subject", "trial"]].to_numpy()
    labels = units_table["label"].to_numpy()
    source = {"dataset": ds.name, "root": str(Path(d.root).expanduser().resolve()),
              "format": ds.format, "subjects": [int(s) for s in prepared],
              "n_units": int(len(units)), "n_windows": int(slots.valid.sum())}
    # the source files were hashed for the cache keys just now: this reuses those hashes
    content_key = data_content_key(ds, list(prepared))
    return ExperimentData(slots, units.astype(np.int64), labels.astype(np.int64),
                          dict(first.sfreq), {m: list(first.ch_names[m]) for m in modalities},
                          source, content_key, synthetic=ds.synthetic(list(prepared)))


def describe_data(cfg: RunConfig, data: ExperimentData) -> dict:
    """What data a run used, for its report (``report.json``'s ``data``).

    Parameters
    ----------
    cfg : RunConfig
        The run's configuration (its ``data.root`` as ``config.yaml`` writes it).
    data : ExperimentData
        From :func:`load_experiment_data`.

    Returns
    -------
    description : dict
        ``dataset``, ``root`` (absolute, as in ``config.yaml``), ``format``,
        ``subjects`` (ids), ``n_subjects``, ``trials_per_subject`` (a number, or
        ``[min, max]`` when subjects differ), ``n_units`` ((subject, trial) units),
        ``n_windows``, ``synthetic`` (bool, or None when not checked) and ``origin``
        (the same in words).
    """
    from .config import absolute_root

    src = data.source
    counts = np.unique(data.units[:, 0], return_counts=True)[1] if len(data.units) else []
    trials = (int(counts[0]) if len(set(counts.tolist())) == 1 else
              [int(counts.min()), int(counts.max())]) if len(counts) else None
    origin = {True: "synthetic (written by physiosync's synthetic writer)",
              False: "not written by physiosync's synthetic writers (real data)",
              None: "origin not checked"}[data.synthetic]
    return {"dataset": src["dataset"], "root": absolute_root(cfg.data.root),
            "format": src.get("format"), "subjects": list(src["subjects"]),
            "n_subjects": len(src["subjects"]), "trials_per_subject": trials,
            "n_units": src.get("n_units"), "n_windows": src.get("n_windows"),
            "synthetic": data.synthetic, "origin": origin}


def plan_folds(cfg: RunConfig, data: ExperimentData) -> list:
    """The protocol's folds (raises before any training if they cannot be made)."""
    p = cfg.protocol
    n_windows = None
    if get_protocol(p.name).splits_windows:
        s, t = data.slots.locate(data.units).T
        n_windows = data.slots.valid[s, t].sum(axis=1)
    return make_folds(data.units, p.name, n_splits=p.n_splits, labels=data.labels,
                      val_size=p.val_size, seed=cfg.seed, n_windows=n_windows)


def _per_subject(cfg: RunConfig) -> bool:
    return get_protocol(cfg.protocol.name).per_subject_models and not cfg.protocol.pooled


def _plans(cfg: RunConfig, folds: list) -> list:
    """Each pipeline of *cfg* resolved once into its
    :class:`~physiosync.evaluation.pipelines.PipelinePlan`."""
    from .evaluation.pipelines import plan_pipeline

    return [plan_pipeline(cfg, spec, folds) for spec in cfg.pipelines]


def preflight(cfg: RunConfig, data: ExperimentData, folds: list, *,
              plans: list | None = None) -> None:
    """Checks that must pass before any training.

    Two classes in the data and in every model's training split, the modalities each
    pipeline uses, and enough pre-training subjects per stimulus slot in every fold.
    *plans* are the run's :class:`~physiosync.evaluation.pipelines.PipelinePlan`
    (resolved here when None).
    """
    from .evaluation.runner import one_class_models

    labels_present = np.unique(data.labels[data.labels >= 0])
    if len(labels_present) < 2:
        raise PhysioSyncError(f"target {cfg.data.target!r}: every trial of the data has the "
                              f"same class ({labels_present.tolist()}); nothing to classify.")
    from .evaluation.label_budget import labelled_fold

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
        :class:`~physiosync.evaluation.pipelines.PipelinePlan` per pipeline, in
        ``cfg.pipelines`` order) and ``table``, a DataFrame with the number of subjects,
        units and windows of each partition per fold.
    """
    import pandas as pd

    from .evaluation.runner import fold_cells
    from ._utils import resolve_device

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


def _duration(seconds: float) -> str:
    """*seconds* in words: ``"40 s"``, ``"12 min"``, ``"3.5 h"``."""
    if not np.isfinite(seconds):
        return "?"
    if seconds < 90:
        return f"{seconds:.2g} s" if seconds < 10 else f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.1f} min" if seconds < 600 else f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


@dataclass
class CostEstimate:
    """What a study will train, per pipeline, and an estimate of its time here.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per pipeline (index ``pipeline``), columns
        :data:`~physiosync.evaluation.cost.COST_COLUMNS`: ``models`` (networks or
        estimators fitted, over every fold, label budget and refit), ``pretrain_runs``,
        ``pretrain_steps_long`` and ``pretrain_steps_short`` (steps of all pre-training
        runs of the long and the short encoders), ``finetune_epochs`` (per model) and
        ``finetune_steps`` (over all models), ``seconds`` with its ``low`` and ``high``
        ends (NaN when not timed), and ``timed`` (how).
    threads : int
        Torch threads the steps were timed with.
    device : str
        Where they ran.
    steps, warmup : int
        Steps timed per network, after *warmup* untimed ones.
    timed : bool
        Whether the seconds were measured (False: counts only).
    measured_in : float
        Seconds the estimate itself took.
    """

    table: object
    threads: int
    device: str
    steps: int
    warmup: int
    timed: bool
    measured_in: float

    @property
    def seconds(self) -> float:
        """Estimated seconds of the whole study, one unit after another."""
        return float(self.table["seconds"].sum())

    def text(self) -> str:
        """The plan and the estimate as printed by ``physiosync cv`` (several lines)."""
        t = self.table
        rows = {"models": t["models"], "pretrain runs": t["pretrain_runs"],
                "pretrain steps long/short": [
                    f"{a} / {b}" if r else "-" for a, b, r in
                    zip(t["pretrain_steps_long"], t["pretrain_steps_short"],
                        t["pretrain_runs"])],
                "finetune epochs": [e if e else "-" for e in t["finetune_epochs"]],
                "finetune steps": [n if n else "-" for n in t["finetune_steps"]]}
        if self.timed:
            rows["estimate"] = [_duration(x) for x in t["seconds"]]
        import pandas as pd

        lines = ["cost per pipeline (models fitted; pre-training runs and their steps, long "
                 "and short encoders; fine-tuning epochs per model and steps in all):",
                 pd.DataFrame(rows, index=t.index).to_string()]
        if self.timed:
            low, high = _duration(float(t["low"].sum())), _duration(float(t["high"].sum()))
            spread = (f"{low} to {high} from the fastest and slowest timed step"
                      if low != high else "the fastest and slowest timed step agree")
            lines.append(
                f"estimated time: about {_duration(self.seconds)} here ({spread}), one unit "
                f"after another on {self.device} with {self.threads} torch "
                f"thread{'s' if self.threads != 1 else ''}; estimated from "
                f"{self.warmup} warm-up + {self.steps} timed steps of each network on these "
                "folds' windows and one timed fit of each other estimator, multiplied out "
                f"(timing took {_duration(self.measured_in)})")
        else:
            lines.append("estimated time: not measured (--no-estimate)")
        return "\n".join(lines)


@verbose
def estimate_cost(cfg: RunConfig, plan: dict | None = None, *, timed: bool = True,
                  steps: int = 3, warmup: int = 1, timings: dict | None = None,
                  verbose: bool | str | int | None = None) -> CostEstimate:
    """Count what a study trains, per pipeline, and estimate its time on this machine.

    The counts follow the study's folds exactly as :func:`run_experiment` runs them
    (per-subject or pooled models, subjects whose training labels hold one class,
    label budgets, refits of the permutation null, pre-training shared by a fold's
    budgets). The time comes from a few steps of each distinct network actually run
    on the study's windows, with the current torch threads and the configured
    device, multiplied out (:func:`physiosync.evaluation.cost.pipeline_cost`); each
    other estimator (band power, DE, stimulus prior) is timed on one fit. Finished
    folds that a resumed run reuses are counted as if to be computed.

    Parameters
    ----------
    %(run_config)s
    plan : dict | None
        From :func:`plan_experiment` (made when None).
    timed : bool
        Time the steps; False gives the counts only (no training at all).
    steps : int
        Steps timed per network.
    warmup : int
        Untimed steps run before them.
    timings : dict | None
        A dict to keep the timings in and reuse them from: estimates of several studies
        on this machine that share it time each network (settings and window shapes)
        once.
    %(verbose)s

    Returns
    -------
    estimate : CostEstimate
        Its ``table`` (one row per pipeline) and :meth:`CostEstimate.text`.

    Notes
    -----
    The estimate assumes that the steps timed stand for the run's: the same machine,
    as loaded as it is now. On a shared machine it varies with the load; the low and
    high ends come from the fastest and slowest timed step. Batched pre-training of
    several folds (``pretrain.batch_folds``) and compiled steps are not modelled.
    """
    import pandas as pd
    import torch

    from .evaluation.cost import COST_COLUMNS, pipeline_cost
    from .evaluation.label_budget import labelled_fold
    from ._utils import resolve_device

    t0 = time.perf_counter()
    plan = plan_experiment(cfg) if plan is None else plan
    data, folds = plan["data"], plan["folds"]
    budgets = _label_budgets(cfg) or [None]
    timings, rows = ({} if timings is None else timings), []
    for pipe in plan.get("pipelines") or _plans(cfg, folds):
        pc = pipe.config
        units = []
        for fold in folds:
            # a fold's label budgets share its pre-training, and so do its refits
            units += [(fold if b is None else labelled_fold(data.slots, fold, b, seed=cfg.seed),
                       ("run", fold.fold)) for b in budgets]
            units += [(fold, ("refit", fold.fold))] * pc.protocol.permutation_refit
        common = _common(pc)
        row = pipeline_cost(data.slots, units, pipe.kind.fold_runner(pc, data),
                            per_subject=common["per_subject"], val_size=common["val_size"],
                            seed=common["seed"], timed=timed, steps=steps, warmup=warmup,
                            timings=timings)
        rows.append({"pipeline": pipe.name, **row})
    table = pd.DataFrame(rows, columns=["pipeline", *COST_COLUMNS]).set_index("pipeline")
    estimate = CostEstimate(table, torch.get_num_threads(), str(resolve_device(cfg.device)),
                            steps, warmup, timed, time.perf_counter() - t0)
    logger.info("%s", estimate.text())
    logger.info("estimated %.1f s (%.1f to %.1f s)", estimate.seconds, table["low"].sum(),
                table["high"].sum())
    return estimate


def _common(pc: RunConfig) -> dict:
    """The fold-loop arguments every pipeline kind takes, from a pipeline's configuration."""
    return dict(per_subject=_per_subject(pc), one_class=pc.protocol.one_class,
                val_size=pc.protocol.val_size, seed=pc.seed)


def _settings(plan, data: ExperimentData, *, refit: int | None = None, budget=None) -> dict:
    """What a fold file records of its run, beside the fold's own hyper-parameters."""
    from .evaluation.label_budget import budget_label

    pc = plan.config
    settings = {"pipeline": plan.name, "kind": plan.kind_name, "protocol": pc.protocol.name,
                "target": pc.data.target, "source": data.source,
                "data": {k: v for k, v in pc.raw["data"].items() if k != "cache_dir"}}
    if refit is not None:  # a refit of the permutation null (permuted training labels)
        settings["refit"] = refit
    if budget is not None:  # a label budget (the folds are already cut to it)
        settings["labelled_trials"] = budget_label(budget)
    return settings


def _fold_args(plan, data: ExperimentData, **settings) -> dict:
    """The arguments of :func:`~physiosync.evaluation.runner.cross_validate` (and
    :func:`~physiosync.evaluation.runner.pending_folds`) but the kind's fold arguments."""
    return dict(settings=_settings(plan, data, **settings), runner=plan.kind.fold_function(),
                data_key=data.content_key, **_common(plan.config))


def _run_pipeline(plan, data: ExperimentData, folds: list, out_dir: Path, *, resume: bool,
                  refit: int | None = None, pretrain_cache: dict | None = None, budget=None):
    """Run *folds* of one pipeline (a :class:`~physiosync.evaluation.pipelines.PipelinePlan`)
    into *out_dir*; a kind that prepares folds together prepares the pending ones first."""
    from .evaluation.runner import cross_validate

    args = _fold_args(plan, data, refit=refit, budget=budget)
    if plan.fold_batch > 1 and refit is None and budget is None:
        _run_fold_batches(plan, data, folds, out_dir, resume=resume, args=args)
        resume = True  # every fold file is written: read them back below
    return cross_validate(data.slots, folds, out_dir, resume=resume, **args,
                          **plan.fold_kwargs(data, pretrain_cache=pretrain_cache))


def _run_fold_batches(plan, data: ExperimentData, folds: list, out_dir: Path, *,
                      resume: bool, args: dict) -> None:
    """Run the pending folds :attr:`~physiosync.evaluation.pipelines.PipelinePlan.fold_batch`
    at a time, each group prepared together first
    (:meth:`~physiosync.evaluation.pipelines.PipelineKind.prepare_folds`, e.g. its encoders
    pre-trained in one run); the folds run and are written as they would be one by one."""
    from .evaluation.runner import cross_validate, pending_folds

    batch = plan.fold_batch
    todo = pending_folds(folds, out_dir, resume=resume, **args, **plan.fold_kwargs(data))
    for start in range(0, len(todo), batch):
        group, cache = todo[start:start + batch], {}
        plan.kind.prepare_folds(plan.config, data, group, cache=cache)
        cross_validate(data.slots, group, out_dir, resume=resume, **args,
                       **plan.fold_kwargs(data, pretrain_cache=cache))


def _label_budgets(cfg: RunConfig) -> list | None:
    """The study's label budgets in increasing order (``"all"`` last), or None."""
    budgets = cfg.protocol.labelled_trials
    return sort_budgets(budgets) if budgets else None


def _run_budgets(cfg: RunConfig, plan, data: ExperimentData, folds: list, out_dir: Path,
                 *, resume: bool) -> dict:
    """Every label budget of one pipeline: ``{budget: fold results}``.

    Fold ``f`` of budget ``n`` is written to ``out_dir/labelled_NNN/fold_XX.json``.
    Folds are the outer loop, so the budgets of a fold share one pre-training (it
    uses no labels and sees every training window at every budget); with
    a kind that prepares folds together (``pretrain.batch_folds``) the pending folds of
    a group are prepared together first.
    """
    from .evaluation.label_budget import budget_folder, labelled_fold
    from .evaluation.runner import pending_folds

    budgets = _label_budgets(cfg)
    out = {b: [] for b in budgets}
    batch = plan.fold_batch
    for start in range(0, len(folds), batch):
        group, cache = folds[start:start + batch], {}
        if batch > 1:
            kind_kwargs = plan.fold_kwargs(data, pretrain_cache=cache)
            pending = [fold for fold in group if any(
                pending_folds([labelled_fold(data.slots, fold, b, seed=cfg.seed)],
                              out_dir / budget_folder(b), resume=resume,
                              **_fold_args(plan, data, budget=b), **kind_kwargs)
                for b in budgets)]
            # every budget's fold is prepared on the same cells (its labels aside, a
            # budgeted fold differs from its fold only in having no validation units)
            plan.kind.prepare_folds(plan.config, data,
                                    [labelled_fold(data.slots, fold, budgets[0], seed=cfg.seed)
                                     for fold in pending], cache=cache)
        for fold in group:
            for b in budgets:
                out[b] += _run_pipeline(plan, data,
                                        [labelled_fold(data.slots, fold, b, seed=cfg.seed)],
                                        out_dir / budget_folder(b), resume=resume,
                                        pretrain_cache=cache, budget=b)
    return out


#: Data and folds loaded by :func:`run_unit` in this process, by configuration: a worker
#: that runs several units of one study prepares (reads the cache) once.
_UNIT_DATA: dict = {}


def _unit_data_key(cfg: RunConfig) -> str:
    import json

    return json.dumps({"data": cfg.raw["data"], "protocol": cfg.raw["protocol"],
                       "seed": cfg.seed}, sort_keys=True, default=str)


@fill_doc
def run_unit(cfg: RunConfig, out_dir, resume: bool, unit) -> str:
    """Run one unit of a study, a pipeline's fold, and write its fold file.

    A pure function of *cfg* and the data: it prepares the data (from the cache),
    makes the protocol's folds and runs fold ``unit.fold`` of pipeline
    ``unit.pipeline`` exactly as :func:`run_experiment` does, writing
    ``folds/<pipeline>/fold_XX.json`` in *out_dir* atomically (a finished fold of the
    same settings is reused when *resume*). Executors call it in worker processes
    (:mod:`physiosync.execution`).

    Parameters
    ----------
    %(run_config)s
    out_dir : str | Path
        The run folder.
    resume : bool
        Reuse a finished fold file of identical settings.
    unit : physiosync.execution.Unit
        Pipeline name and fold number.

    Returns
    -------
    path : str
        The fold file written (or reused).
    """
    key = _unit_data_key(cfg)
    if key not in _UNIT_DATA:
        _UNIT_DATA.clear()  # one study's data at a time
        data = load_experiment_data(cfg, verbose=False)
        _UNIT_DATA[key] = (data, plan_folds(cfg, data))
    data, folds = _UNIT_DATA[key]
    spec = next((s for s in cfg.pipelines if s["name"] == unit.pipeline), None)
    chosen = [f for f in folds if f.fold in unit.folds]
    if spec is None or len(chosen) != len(unit.folds):
        raise PhysioSyncError(f"{unit} is not part of this study (pipelines "
                              f"{[s['name'] for s in cfg.pipelines]}, {len(folds)} folds).")
    from .evaluation.pipelines import plan_pipeline

    plan = plan_pipeline(cfg, spec, folds)
    out = Path(out_dir) / "folds" / spec["name"]
    from .runfolder import recording

    # The lock holder's list of the files its run wrote is kept by its workers too.
    with recording(out_dir, "cv"):
        if _label_budgets(cfg):
            from .evaluation.label_budget import budget_folder

            _run_budgets(cfg, plan, data, chosen, out, resume=resume)
            out = out / budget_folder(_label_budgets(cfg)[-1])
        else:
            _run_pipeline(plan, data, chosen, out, resume=resume)
    return str(out / f"fold_{chosen[-1].fold:02d}.json")


def describe_pipeline(cfg: RunConfig, spec: dict, data: ExperimentData | None = None) -> dict:
    """What a pipeline runs, for the report: its kind, encoder embedding and inputs.

    Returns
    -------
    model : dict
        ``kind``; ``embedding`` (``{"long": ..., "short": ...}`` for the encoders the
        pipeline fine-tunes, None for the baselines); ``pretrained``; ``modalities``;
        ``shared_across_subjects`` (what the subjects' models of a fold share, or None:
        :meth:`~physiosync.evaluation.pipelines.PipelineKind.shared_across_subjects`);
        and ``text``, one line such as ``"PhysioSync, spectral embedding (long 5 s,
        short 1 s), pre-trained; eeg + gsr"``.
    """
    from .evaluation.pipelines import plan_pipeline

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


_REFIT_DEFINITION = ("the pipeline retrained on the same folds with each subject's training "
                     "(and, separately, validation) unit labels shuffled within that subject, "
                     "and scored on the true test labels")


def _pooled_score(results: list, n_classes: int) -> float:
    """Headline subject-level score of a pipeline's test predictions pooled over folds."""
    import pandas as pd

    from .evaluation.metrics import subject_level_score

    preds = pd.concat([pd.DataFrame(r["predictions"]) for r in results], ignore_index=True)
    proba = preds[[f"p{c}" for c in range(n_classes)]].to_numpy()
    return subject_level_score(preds["y"].to_numpy(), proba.argmax(1),
                               preds["subject"].to_numpy(), n_classes=n_classes)


def _refit_null(cfg: RunConfig, plan, data: ExperimentData, folds: list, results: list,
                out_dir: Path, *, resume: bool) -> dict:
    """Refit permutation null of one pipeline (``protocol.permutation_refit`` refits).

    Refit ``r`` of fold ``f`` trains on labels permuted with a seed derived from
    ``(seed, r, f)`` and is saved in ``out_dir/rNNN/fold_XX.json``, so an interrupted
    run resumes. Folds are the outer loop so that the refits of a fold share one
    pre-training (it uses no labels).
    """
    from ._logging import progress, progress_bars
    from .evaluation.runner import permute_training_labels
    from .evaluation.metrics import headline_metric
    from ._utils import derive_seed

    n = cfg.protocol.permutation_refit
    per_refit = [[] for _ in range(n)]
    jobs = [(fold, r) for fold in folds for r in range(n)]
    cache, cache_fold = {}, None
    for fold, r in progress(jobs, desc=f"{plan.name} refit null"):
        if fold.fold != cache_fold:  # keep one fold's pre-trained encoders only
            cache, cache_fold = {}, fold.fold
        slots = permute_training_labels(data.slots, fold,
                                        seed=derive_seed(cfg.seed, "refit", r, fold.fold))
        refit_data = dataclasses.replace(data, slots=slots)
        with progress_bars(False):  # one bar over the refits, none within each
            per_refit[r] += _run_pipeline(plan, refit_data, [fold], out_dir / f"r{r:03d}",
                                          resume=resume, refit=r, pretrain_cache=cache)
    observed = _pooled_score(results, data.n_classes)
    null = [_pooled_score(res, data.n_classes) for res in per_refit]
    hits = sum(v >= observed - 1e-12 for v in null)
    p_value = (1 + hits) / (1 + n) if np.isfinite(observed) else float("nan")
    return {"metric": f"subject.{headline_metric(data.n_classes)}", "observed": observed,
            "null": null, "p_value": float(p_value), "n": n, "definition": _REFIT_DEFINITION}


def describe_run(cfg: RunConfig) -> str:
    """A few words naming a cross-validation run, for messages about its folder."""
    return (f"target {cfg.data.target}, {cfg.protocol.name}, pipelines "
            f"{', '.join(p['name'] for p in cfg.pipelines)}")


@verbose
@deprecated_show_progress
def run_experiment(cfg: RunConfig, out_dir, *, resume: bool = True, html: bool = True,
                   overwrite: bool = False, executor=None, on_start=None, on_cost=None,
                   time_cost: bool = True,
                   verbose: bool | str | int | None = None) -> dict:
    """Run every pipeline of *cfg* under its protocol and write the report.

    Parameters
    ----------
    cfg : RunConfig
        From :func:`physiosync.config.load_config`.
    out_dir : str | Path
        Run folder (created). It must be empty, missing, or hold this same run (same
        configuration and data), whose finished folds are then reused when *resume*.
        A folder holding another run or foreign files raises
        :class:`~physiosync.exceptions.RunFolderError` before any data is prepared.
        A lock keeps a second process out while the run is going. ``run.log`` in it
        receives the package's log (INFO and above) of every attempt, appended.
    resume : bool
        Skip folds already completed with identical settings.
    html : bool
        Also write ``report.html``.
    overwrite : bool
        Replace a different physiosync run found in *out_dir* (its own files only;
        files it did not write are never deleted, and such a folder is refused).
    executor : physiosync.execution.Executor | str | None
        Where the units (a pipeline's fold each) run: None or ``"serial"`` in this
        process, one after another; ``"processes"`` or ``"ray"`` (with their
        defaults, with ``cfg.threads`` threads per unit), or an executor from
        :func:`physiosync.execution.make_executor` (its own threads).
        Results and report are the same under every executor. If a unit fails, the
        others still finish, and :class:`~physiosync.exceptions.PhysioSyncError`
        names every failed unit; no report is written, and a rerun resumes.
    on_start : callable | None
        Called once, after every check (folder, data, folds) and before any training,
        with the list of lines the run has to say at its start: ``"resuming: 3 of 8
        (pipeline, fold) units already done in DIR"`` when *resume* finds finished
        units, else none. The CLI prints them with its own notes; each line is logged
        at INFO (``run.log``) either way.
    on_cost : callable | None
        Called with the study's :class:`CostEstimate` (:func:`estimate_cost`) after
        every check and before any training, e.g. ``lambda c: print(c.text())``; the
        estimate is also logged (``run.log``). None: no estimate is made.
    time_cost : bool
        With *on_cost*: time a few steps of each network (a few seconds at small
        sizes, up to a minute at the reference sizes on a CPU); False counts only.
    %(verbose)s
        It sets the console; ``run.log`` receives INFO and above whatever the level.
        Replaces ``show_progress``, which still works for one release with a
        :class:`FutureWarning`.

    Returns
    -------
    result : dict
        ``report`` (the report mapping), ``paths`` (written files) and ``seconds``.
    """
    from .runfolder import RunFolder, run_fingerprint

    out_dir = Path(out_dir)
    with RunFolder(out_dir, "cv", run_fingerprint(cfg), description=describe_run(cfg),
                   overwrite=overwrite) as folder:
        with log_to_file(out_dir / "run.log"):  # a plain log of every run, beside its report
            return _run_experiment(cfg, out_dir, folder, resume=resume, html=html,
                                   executor=executor, on_start=on_start,
                                   on_cost=on_cost, time_cost=time_cost)


def _run_units(cfg: RunConfig, plans: list, out_dir: Path, executor, *, resume: bool) -> None:
    """Run every (pipeline, fold) unit on *executor*; raise naming the failed ones."""
    from .execution import Unit, run_lock

    units = []
    for plan in plans:
        batch, folds = plan.fold_batch, plan.folds
        if batch > 1:  # folds prepared together make one unit
            units += [Unit(plan.name, tuple(f.fold for f in folds[i:i + batch]))
                      for i in range(0, len(folds), batch)]
        else:
            units += [Unit(plan.name, fold.fold) for fold in folds]
    logger.info("%d units on %s", len(units), executor.describe())
    with run_lock(out_dir):  # workers write fold files only while this run holds its lock
        failures = executor.run(run_unit, (cfg, str(out_dir), resume), units)
    if failures:
        shown = "; ".join(str(f) for f in failures[:5])
        more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
        raise PhysioSyncError(
            f"{len(failures)} of {len(units)} units failed, so no report was written: "
            f"{shown}{more}. The finished folds are kept; run the same command again to "
            "resume.")


def _units_done(cfg: RunConfig, out_dir: Path, n_folds: int, budgets) -> tuple:
    """``(done, total, what)``: the units of a run whose fold files *out_dir* holds, how
    many units the run has, and what a unit is, in words."""
    pattern = "labelled_*/fold_*.json" if budgets else "fold_*.json"
    done = sum(len(list((out_dir / "folds" / spec["name"]).glob(pattern)))
               for spec in cfg.pipelines)
    total = n_folds * len(cfg.pipelines) * len(budgets or [None])
    what = "(pipeline, label budget, fold) units" if budgets else "(pipeline, fold) units"
    return done, total, what


def _run_experiment(cfg: RunConfig, out_dir: Path, folder, *, resume: bool, html: bool,
                    executor=None, on_start=None, on_cost=None,
                    time_cost: bool = True) -> dict:
    """The body of :func:`run_experiment`, inside its locked, checked run folder."""
    from .evaluation.summary import build_report
    from .reporting.report import write_report

    t0 = time.perf_counter()
    plan = plan_experiment(cfg)  # every check, before any training
    data, folds, plans = plan["data"], plan["folds"], plan["pipelines"]
    folder.claim(data_source=data.source)
    out_dir.mkdir(parents=True, exist_ok=True)
    provenance = {"versions": versions(), "data_source": data.source}
    dump_config(cfg, out_dir / "config.yaml", extra=provenance)
    logger.info("%s: %d folds x %d pipelines -> %s", cfg.protocol.name, len(folds),
                len(cfg.pipelines), out_dir)
    from .execution import Executor, SerialExecutor, make_executor

    if executor is None or isinstance(executor, str):
        executor = make_executor(executor or "serial", device=cfg.device,
                                 threads=cfg.threads)
    elif not isinstance(executor, Executor):
        raise PhysioSyncError(f"executor must be 'serial', 'processes', 'ray' or an Executor, "
                              f"got {executor!r}.")
    results, budgets = {}, _label_budgets(cfg)
    start = []
    if resume:
        done, total, what = _units_done(cfg, out_dir, len(folds), budgets)
        if done:
            start.append(f"resuming: {done} of {total} {what} already done in {out_dir}")
    for line in start:
        logger.info(line)
    if on_start is not None:
        on_start(start)
    if on_cost is not None:  # timed with the threads the units will have when run here
        with (executor.thread_limit() if isinstance(executor, SerialExecutor)
              else contextlib.nullcontext()):
            on_cost(estimate_cost(cfg, plan, timed=time_cost))
    try:
        if not isinstance(executor, SerialExecutor):
            _run_units(cfg, plans, out_dir, executor, resume=resume)
            resume = True  # below, every fold file is read back, none recomputed
            limit = contextlib.nullcontext()
        else:  # serially, the units are the folds of the loop below
            logger.info("%d units on %s%s", len(folds) * len(cfg.pipelines),
                        executor.describe(),
                        f", each at {len(budgets)} label budgets" if budgets else "")
            limit = executor.thread_limit()
        with limit:
            for pipe in plans:
                logger.info("pipeline %s", pipe.name)
                out = out_dir / "folds" / pipe.name
                results[pipe.name] = (
                    _run_budgets(cfg, pipe, data, folds, out, resume=resume) if budgets
                    else _run_pipeline(pipe, data, folds, out, resume=resume))
    except KeyboardInterrupt as err:  # tell the CLI how far the run got
        err.units_done, err.units_total, err.unit_name = _units_done(cfg, out_dir, len(folds),
                                                                     budgets)
        err.out_dir = out_dir
        raise

    described = describe_data(cfg, data)
    config = cfg.to_dict()
    config["data"]["root"] = described["root"]  # absolute, as config.yaml has it

    def report_of(res: dict) -> dict:
        return build_report(res, protocol=cfg.protocol.name, target=cfg.data.target,
                            n_classes=data.n_classes, data=described,
                            config={**config, "run": provenance},
                            channels=data.channels.get("eeg"),
                            permutations=cfg.protocol.permutations, seed=cfg.seed,
                            per_subject_models=_per_subject(cfg),
                            importance_methods={p.name: p.kind.importance_method
                                                for p in plans},
                            models={p.name: _describe(cfg, p, data) for p in plans})

    if budgets:
        # one report per budget; the study's report is that of the largest budget, with
        # the label-efficiency curves of all of them
        from .evaluation.label_budget import budget_label
        from .evaluation.label_efficiency import label_efficiency_section

        by_budget = {budget_label(b): report_of({name: res[b] for name, res in results.items()})
                     for b in budgets}
        report = by_budget[budget_label(budgets[-1])]
        report["label_efficiency"] = label_efficiency_section(
            by_budget, per_subject=bool(report["per_subject_models"]),
            n_classes=data.n_classes, seed=cfg.seed)
    else:
        report = report_of(results)
    if cfg.protocol.permutation_refit:
        for pipe in plans:
            logger.info("pipeline %s: %d refits on permuted training labels", pipe.name,
                        cfg.protocol.permutation_refit)
            report["pipelines"][pipe.name]["refit_null"] = _refit_null(
                cfg, pipe, data, folds, results[pipe.name],
                out_dir / "folds" / pipe.name / "refit_null", resume=resume)
    paths = write_report(report, out_dir, html=html)
    paths["config"] = out_dir / "config.yaml"
    return {"report": report, "paths": paths, "seconds": time.perf_counter() - t0}
