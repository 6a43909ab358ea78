"""Cross-validation: every fold of a pipeline, each persisted, resumed when done.

:func:`cross_validate` runs every :class:`~physiosync.evaluation.protocols.Fold` on a
:class:`~physiosync.training.sampling.SlotData`, writes each fold's manifest, metrics and
predictions atomically to ``out_dir/fold_XX.json``, and skips folds already completed
with the same settings, so an interrupted run resumes where it stopped.

This module is also the public home of the cross-validation API, whose parts live by
job: the fold loop every pipeline kind shares (:func:`run_fold_with`,
:class:`FoldRunner`, :func:`fold_metrics`, in :mod:`~physiosync.evaluation.fold_loop`),
the runners (:class:`PhysioSyncRunner` and :func:`run_fold`, :class:`EstimatorRunner`,
in :mod:`~physiosync.evaluation.runners`) and the fold files (keys, resume, checksums,
in :mod:`~physiosync.evaluation.fold_store`).

:func:`run_fold` runs one fold with PhysioSync: LS-TCL pre-training on the fold's
``pretrain`` units only (every subject's training stimuli within subjects, the training
subjects across subjects), then fine-tuning per subject or pooled, with epoch selection
on the fold's ``val`` units, then predictions for its ``test`` units. Nothing of the
test units is seen before prediction.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from .._logging import deprecated_show_progress, logger, progress, verbose
from ..exceptions import TrainingDivergedError
from ..training.sampling import SlotData
# The public names of cross-validation, importable from here as the docs name them.
from .fold_loop import (FoldRunner, fold_cells, fold_metrics, one_class_models,
                        permute_training_labels, run_fold_with, train_label_counts)
from .fold_store import (fold_checksum, fold_key, fold_path, pending_folds, reusable_fold,
                         write_fold)
from .runners import EstimatorRunner, PhysioSyncRunner, run_fold

__all__ = ["FoldRunner", "PhysioSyncRunner", "EstimatorRunner", "run_fold_with",
           "run_fold", "cross_validate",
           "pending_folds", "fold_checksum",
           "fold_metrics", "fold_cells", "one_class_models", "train_label_counts",
           "permute_training_labels"]


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
    n_classes = data.n_classes
    split = {k: run_kwargs[k] for k in ("per_subject", "val_size", "seed") if k in run_kwargs}
    results = []
    for fold in progress(folds, desc=str((settings or {}).get("pipeline", "cv"))):
        key = fold_key(fold, settings, run_kwargs)
        path = fold_path(out_dir, fold)
        if resume:
            done, why = reusable_fold(path, key, data_key)
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
        results.append(write_fold(path, {
            "key": key, **({} if data_key is None else {"data_key": data_key}),
            **fold.manifest(),
            "metrics": fold_metrics(pred, n_classes, train_labels),
            "train_labels": train_labels,
            "predictions": pred.to_dict(orient="records"), **details}))
    return results
