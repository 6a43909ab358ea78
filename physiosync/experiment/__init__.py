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

The job is split into modules, each importable on its own; this package re-exports their
public names:

========================================  ==============================================
:mod:`~physiosync.experiment.data`        the data: :class:`ExperimentData`,
                                          :func:`load_experiment_data` (with the source
                                          files' content key), :func:`describe_data`
:mod:`~physiosync.experiment.planning`    before training: :func:`plan_folds`, the
                                          pipelines resolved into plans,
                                          :func:`preflight`, :func:`plan_experiment`,
                                          :func:`describe_pipeline`
:mod:`~physiosync.experiment.estimate`    what a study trains and its time here:
                                          :func:`estimate_cost`, :class:`CostEstimate`
:mod:`~physiosync.experiment.running`     a pipeline's folds into fold files (fold
                                          batches, label budgets) and :func:`run_unit`,
                                          one unit as an executor runs it
:mod:`~physiosync.experiment.report`      the study's report from its fold results, and
                                          the refit permutation null
:mod:`~physiosync.experiment.study`       :func:`run_experiment`: the whole study in its
                                          run folder, on an executor
========================================  ==============================================
"""

from .data import ExperimentData, describe_data, load_experiment_data, open_dataset
from .estimate import CostEstimate, estimate_cost
from .planning import describe_pipeline, plan_experiment, plan_folds, preflight
from .running import run_unit
from .study import describe_run, run_experiment, versions

__all__ = ["ExperimentData", "open_dataset", "load_experiment_data", "plan_folds",
           "describe_pipeline", "describe_data", "preflight", "plan_experiment",
           "CostEstimate", "estimate_cost", "run_experiment", "run_unit", "describe_run",
           "versions"]
