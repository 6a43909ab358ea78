"""What a study will train, and how long it will take here, before it trains.

:func:`estimate_cost` counts, per pipeline, the models, pre-training runs and steps and
fine-tuning epochs of a planned study exactly as :func:`~physiosync.experiment.run_experiment`
would run them, and times a few steps of each network on this machine to estimate the
study's time; :class:`CostEstimate` holds the table and prints it (``physiosync cv``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .._logging import logger, verbose
from .._utils.docs import fill_doc
from ..config import RunConfig
from .planning import _common, _label_budgets, _plans, plan_experiment

__all__ = ["CostEstimate", "estimate_cost", "format_duration", "pretrain_run_cost",
           "finetune_run_cost"]


def format_duration(seconds: float) -> str:
    """*seconds* in words: ``"40 s"``, ``"12 min"``, ``"3.5 h"`` (``"?"`` if not finite).

    Parameters
    ----------
    seconds : float
        A duration.

    Returns
    -------
    text : str
        Two significant digits under 10 s, whole seconds under 90 s, minutes under 90 min,
        hours above.
    """
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
        ``COST_COLUMNS``: ``models`` (networks or
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
            rows["estimate"] = [format_duration(x) for x in t["seconds"]]
        import pandas as pd

        lines = ["cost per pipeline (models fitted; pre-training runs and their steps, long "
                 "and short encoders; fine-tuning epochs per model and steps in all):",
                 pd.DataFrame(rows, index=t.index).to_string()]
        if self.timed:
            low = format_duration(float(t["low"].sum()))
            high = format_duration(float(t["high"].sum()))
            spread = (f"{low} to {high} from the fastest and slowest timed step"
                      if low != high else "the fastest and slowest timed step agree")
            lines.append(
                f"estimated time: about {format_duration(self.seconds)} here ({spread}), one "
                f"unit after another on {self.device} with {self.threads} torch "
                f"thread{'s' if self.threads != 1 else ''}; estimated from "
                f"{self.warmup} warm-up + {self.steps} timed steps of each network on these "
                "folds' windows and one timed fit of each other estimator, multiplied out "
                f"(timing took {format_duration(self.measured_in)})")
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
    device, multiplied out (``physiosync.evaluation.cost.pipeline_cost()``); each
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

    from ..evaluation.cost import COST_COLUMNS, pipeline_cost
    from ..evaluation.label_budget import labelled_fold
    from .._utils import resolve_device

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


def _threads_text() -> str:
    """``"2 torch threads"``: the threads the steps are timed with."""
    import torch

    n = torch.get_num_threads()
    return f"{n} torch thread{'s' if n != 1 else ''}"


def _median(values) -> float:
    return sorted(values)[len(values) // 2]


@fill_doc
def pretrain_run_cost(data, cfg: RunConfig, name: str, *, objective: str = "ls-tcl",
                      timed: bool = True) -> str:
    """The steps of one pre-training run and, timed here, its time (``physiosync pretrain``).

    Parameters
    ----------
    data : ExperimentData
        The data the encoders are pre-trained on (:func:`load_experiment_data`).
    %(run_config)s
    name : str
        ``"long"`` (the long encoders, pooled subjects) or ``"short"`` (per subject).
    objective : str
        The pre-training objective (``"ls-tcl"`` or ``"simclr"``).
    timed : bool
        Time a warm-up and a few steps; False gives the step count only.

    Returns
    -------
    text : str
        ``"N steps, about T here with K torch threads, from 1 warm-up + S timed steps"``
        (the median timed step times N), or ``"N steps"`` when not timed, or a note that
        the timed steps diverged (the run itself reports that, with its checkpoint).
    """
    from ..exceptions import TrainingDivergedError
    from ..training.pretrain import make_sampler, run_steps, time_pretrain

    sub, pc = (1, cfg.pretrain_long) if name == "long" else (cfg.data.n_sub, cfg.pretrain_short)
    n = run_steps(pc, make_sampler(data.slots.valid, pc, n_sub=sub, objective=objective))
    if not timed:
        return f"{n} steps"
    try:
        steps = time_pretrain(data.slots, pc, n_sub=sub, modalities=cfg.finetune.modalities,
                              device=cfg.device, objective=objective)["step"]
    except TrainingDivergedError:
        return f"{n} steps; not timed: the timed steps diverged"
    return (f"{n} steps, about {format_duration(n * _median(steps))} here with "
            f"{_threads_text()}, from 1 warm-up + {len(steps)} timed steps")


@fill_doc
def finetune_run_cost(data, cfg: RunConfig, train, val, test, *, pretrained: dict | None = None,
                      timed: bool = True) -> str:
    """The epochs of one fine-tuning and, timed here, its time (``physiosync finetune``).

    The time is ``epochs * (training windows * median step / batch + validation windows
    * prediction per window) + test windows * prediction per window``.

    Parameters
    ----------
    data : ExperimentData
        The data fine-tuned on (:func:`load_experiment_data`).
    %(run_config)s
    train, val, test : ndarray of shape (n, 2)
        ``(subject, window)`` slots of the training, validation and test windows
        (:func:`~physiosync.evaluation.fit.holdout_split`).
    pretrained : dict | None
        Pre-trained encoders (:func:`~physiosync.evaluation.fit.load_pretrained`).
    timed : bool
        Time a warm-up and a few steps; False gives the epoch count only.

    Returns
    -------
    text : str
        ``"E epochs of S steps, about T here with K torch threads, from 1 warm-up + N
        timed steps"``, or without the time when not timed, or a note that the timed steps
        diverged (the run itself reports that).
    """
    from ..exceptions import TrainingDivergedError
    from ..training.finetune import steps_per_epoch, time_finetune

    ft = cfg.finetune
    per_epoch = steps_per_epoch(len(train), ft.batch_size)
    text = f"{ft.epochs} epochs of {per_epoch} steps"
    if not timed:
        return text
    try:
        t = time_finetune(data.slots, train, config=ft, pretrained=pretrained or None,
                          n_sub=cfg.data.n_sub, n_classes=data.n_classes,
                          long_config=cfg.pretrain_long, short_config=cfg.pretrain_short,
                          device=cfg.device, importance=False)
    except TrainingDivergedError:
        return f"{text}; not timed: the timed steps diverged"
    step = _median(t["step"])
    seconds = (ft.epochs * (min(per_epoch * t["batch"], len(train)) * step / t["batch"]
                            + len(val) * t["predict_window"]) + len(test) * t["predict_window"])
    return (f"{text}, about {format_duration(seconds)} here with {_threads_text()}, "
            f"from 1 warm-up + {len(t['step'])} timed steps")
