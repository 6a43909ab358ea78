"""The study's report from its fold results, and the refit permutation null.

:func:`_study_report` builds the report of a study from its pipelines' fold results
(:func:`~physiosync.evaluation.summary.build_report`): with label budgets, one report per
budget, the study's being that of the largest with the label-efficiency curves of all of
them; with ``protocol.permutation_refit``, each pipeline's refit null (:func:`_refit_null`,
which runs the refits). :mod:`physiosync.reporting` then writes it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from .._logging import logger
from ..config import RunConfig
from .data import ExperimentData, describe_data
from .planning import _describe, _label_budgets, _per_subject
from .running import _run_pipeline


def _study_report(cfg: RunConfig, plans: list, data: ExperimentData, folds: list,
                  results: dict, out_dir: Path, *, provenance: dict, resume: bool) -> dict:
    """The report of a study whose pipelines gave *results* (``{name: fold results}``, or
    ``{name: {budget: fold results}}`` with label budgets); *provenance* goes into its
    configuration as ``run``, and the refit null, if any, runs into *out_dir*."""
    from ..evaluation.summary import build_report

    budgets = _label_budgets(cfg)
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
        from ..evaluation.label_budget import budget_label
        from ..evaluation.label_efficiency import label_efficiency_section

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
    return report


_REFIT_DEFINITION = ("the pipeline retrained on the same folds with each subject's training "
                     "(and, separately, validation) unit labels shuffled within that subject, "
                     "and scored on the true test labels")


def _pooled_score(results: list, n_classes: int) -> float:
    """Headline subject-level score of a pipeline's test predictions pooled over folds."""
    import pandas as pd

    from ..evaluation.metrics import subject_level_score

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
    from .._logging import progress, progress_bars
    from ..evaluation.runner import permute_training_labels
    from ..evaluation.metrics import headline_metric
    from .._utils import derive_seed

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
