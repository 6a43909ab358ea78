"""A whole study in its run folder: :func:`run_experiment`.

Inside a locked, checked :class:`~physiosync.runfolder.RunFolder`, :func:`run_experiment`
plans the study (every check before any training), writes ``config.yaml`` with the
versions and the data source, announces a resume and the cost estimate, runs every
(pipeline, fold) unit on the chosen executor (or the fold loop in this process), and writes
the report built from the fold results.
"""

from __future__ import annotations

import contextlib
import platform
import time
from pathlib import Path

import numpy as np

from .._logging import deprecated_show_progress, log_to_file, logger, verbose
from .._version import __version__
from ..config import RunConfig, dump_config
from ..exceptions import PhysioSyncError
from .estimate import estimate_cost
from .planning import _label_budgets, plan_experiment
from .report import _study_report
from .running import _run_budgets, _run_pipeline, run_unit

__all__ = ["run_experiment", "describe_run", "versions"]


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
        Called with the study's ``CostEstimate`` (``estimate_cost()``) after
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
    from ..runfolder import RunFolder, run_fingerprint

    out_dir = Path(out_dir)
    with RunFolder(out_dir, "cv", run_fingerprint(cfg), description=describe_run(cfg),
                   overwrite=overwrite) as folder:
        with log_to_file(out_dir / "run.log"):  # a plain log of every run, beside its report
            return _run_experiment(cfg, out_dir, folder, resume=resume, html=html,
                                   executor=executor, on_start=on_start,
                                   on_cost=on_cost, time_cost=time_cost)


def _run_units(cfg: RunConfig, plans: list, out_dir: Path, executor, *, resume: bool) -> None:
    """Run every (pipeline, fold) unit on *executor*; raise naming the failed ones."""
    from ..execution import Unit, run_lock

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


def _executor(executor, cfg: RunConfig):
    """The :class:`~physiosync.execution.Executor` that *executor* names (see
    :func:`run_experiment`)."""
    from ..execution import Executor, make_executor

    if executor is None or isinstance(executor, str):
        return make_executor(executor or "serial", device=cfg.device, threads=cfg.threads)
    if not isinstance(executor, Executor):
        raise PhysioSyncError(f"executor must be 'serial', 'processes', 'ray' or an Executor, "
                              f"got {executor!r}.")
    return executor


def _run_pipelines(cfg: RunConfig, plan: dict, out_dir: Path, executor, budgets, *,
                   resume: bool) -> dict:
    """Every pipeline's folds, ``{name: fold results}`` (``{name: {budget: fold results}}``
    with label budgets); a parallel *executor* runs them as units first, and they are
    then read back from their fold files. An interrupt is told how far the run got."""
    from ..execution import SerialExecutor

    data, folds, plans = plan["data"], plan["folds"], plan["pipelines"]
    results = {}
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
    return results


def _run_experiment(cfg: RunConfig, out_dir: Path, folder, *, resume: bool, html: bool,
                    executor=None, on_start=None, on_cost=None,
                    time_cost: bool = True) -> dict:
    """The body of :func:`run_experiment`, inside its locked, checked run folder."""
    from ..execution import SerialExecutor
    from ..reporting.report import write_report

    t0 = time.perf_counter()
    plan = plan_experiment(cfg)  # every check, before any training
    data, folds, plans = plan["data"], plan["folds"], plan["pipelines"]
    folder.claim(data_source=data.source)
    out_dir.mkdir(parents=True, exist_ok=True)
    provenance = {"versions": versions(), "data_source": data.source}
    dump_config(cfg, out_dir / "config.yaml", extra=provenance)
    logger.info("%s: %d folds x %d pipelines -> %s", cfg.protocol.name, len(folds),
                len(cfg.pipelines), out_dir)
    executor = _executor(executor, cfg)
    budgets = _label_budgets(cfg)
    start = []
    if resume:
        done, total, what = _units_done(cfg, out_dir, len(folds), budgets)
        if done:
            start.append(f"resuming: {done} of {total} {what} already done in {out_dir}")
    for line in start:
        logger.info(line)
    if on_start is not None:
        on_start(start)
    serial = isinstance(executor, SerialExecutor)
    if on_cost is not None:  # timed with the threads the units will have when run here
        with executor.thread_limit() if serial else contextlib.nullcontext():
            on_cost(estimate_cost(cfg, plan, timed=time_cost))
    results = _run_pipelines(cfg, plan, out_dir, executor, budgets, resume=resume)
    # after a parallel run every fold file is read back (the refit null's included)
    report = _study_report(cfg, plans, data, folds, results, out_dir, provenance=provenance,
                           resume=resume or not serial)
    paths = write_report(report, out_dir, html=html)
    paths["config"] = out_dir / "config.yaml"
    return {"report": report, "paths": paths, "seconds": time.perf_counter() - t0}
