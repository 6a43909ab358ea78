"""Running a pipeline's folds into fold files.

:func:`_run_pipeline` runs folds of one
:class:`~physiosync.evaluation.pipelines.PipelinePlan` through the fold loop
(:func:`~physiosync.evaluation.runner.cross_validate`), the pending ones prepared together
first when its kind batches folds; :func:`_run_budgets` runs every label budget of a
pipeline on each fold; :func:`run_unit` is one unit of a study (a pipeline's fold, or a
group of its folds) as an executor runs it in a worker: a pure function of the
configuration and the data that writes its fold file.
"""

from __future__ import annotations

from pathlib import Path

from .._utils.docs import fill_doc
from ..config import RunConfig
from ..exceptions import PhysioSyncError
from .data import ExperimentData, load_experiment_data
from .planning import _common, _label_budgets, plan_folds

__all__ = ["run_unit"]


def _settings(plan, data: ExperimentData, *, refit: int | None = None, budget=None) -> dict:
    """What a fold file records of its run, beside the fold's own hyper-parameters."""
    from ..evaluation.label_budget import budget_label

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
    from ..evaluation.runner import cross_validate

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
    from ..evaluation.runner import cross_validate, pending_folds

    batch = plan.fold_batch
    todo = pending_folds(folds, out_dir, resume=resume, **args, **plan.fold_kwargs(data))
    for start in range(0, len(todo), batch):
        group, cache = todo[start:start + batch], {}
        plan.kind.prepare_folds(plan.config, data, group, cache=cache)
        cross_validate(data.slots, group, out_dir, resume=resume, **args,
                       **plan.fold_kwargs(data, pretrain_cache=cache))


def _run_budgets(cfg: RunConfig, plan, data: ExperimentData, folds: list, out_dir: Path,
                 *, resume: bool) -> dict:
    """Every label budget of one pipeline: ``{budget: fold results}``.

    Fold ``f`` of budget ``n`` is written to ``out_dir/labelled_NNN/fold_XX.json``.
    Folds are the outer loop, so the budgets of a fold share one pre-training (it
    uses no labels and sees every training window at every budget); with
    a kind that prepares folds together (``pretrain.batch_folds``) the pending folds of
    a group are prepared together first.
    """
    from ..evaluation.label_budget import budget_folder, labelled_fold
    from ..evaluation.runner import pending_folds

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
    from ..evaluation.pipelines import plan_pipeline

    plan = plan_pipeline(cfg, spec, folds)
    out = Path(out_dir) / "folds" / spec["name"]
    from ..runfolder import recording

    # The lock holder's list of the files its run wrote is kept by its workers too.
    with recording(out_dir, "cv"):
        if _label_budgets(cfg):
            from ..evaluation.label_budget import budget_folder

            _run_budgets(cfg, plan, data, chosen, out, resume=resume)
            out = out / budget_folder(_label_budgets(cfg)[-1])
        else:
            _run_pipeline(plan, data, chosen, out, resume=resume)
    return str(out / f"fold_{chosen[-1].fold:02d}.json")
