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
from ..config import RunConfig
from .planning import _common, _label_budgets, _plans, plan_experiment

__all__ = ["CostEstimate", "estimate_cost"]


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
