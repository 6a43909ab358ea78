"""The label-efficiency part of a report: headline against label budget, and its area.

A label-efficiency study (``protocol.labelled_trials``) cross-validates every
pipeline on the same folds once per budget of labelled training trials per subject
(:mod:`physiosync.evaluation.label_budget`). :func:`label_efficiency_section` turns
the reports of the budgets (one ``build_report()``
each) into the ``label_efficiency`` part of the study's report::

    "label_efficiency": {
      "budgets": ["2", "4", ..., "all"],
      "labelled": {budget: mean labelled trials per subject and fold},
      "metric", "label",
      "curves": {pipeline: [{"budget", "mean", "std", "n", "chance", "ci95",
                             "ci_method", "p_value"}]},   # ci95: over the pipeline's
                                                          # independent units
      "auc": {pipeline: {"value", "n"}}, "auc_definition",
      "comparisons": [paired comparison of the per-unit areas, primary minus each other],
      "by_budget": {budget: [the paired comparisons of that budget's report]},
    }

The **area under the curve** of a subject (or fold) is the trapezoidal area of its
headline metric over the budgets placed at equal steps, divided by the number of
steps: a mean of the curve in score units (0.5 for a pipeline at chance everywhere
on a balanced binary target), comparable between pipelines of one study. A unit
counts only if it has a value at every budget. The areas are compared exactly as
the headlines are, at the level at which the pipelines' models are independent
(``paired_comparison()``).
"""

from __future__ import annotations

import numpy as np

from .summary import _shared_across_subjects, paired_comparison
from .._utils.docs import fill_doc

__all__ = ["label_efficiency_section", "unit_auc", "AUC_DEFINITION"]

#: How the area under a label-efficiency curve is defined (stored in the report).
AUC_DEFINITION = ("trapezoidal area of the per-unit headline metric over the budgets at equal "
                  "steps, divided by the number of steps (the mean height of the curve, in "
                  "score units); units without a value at every budget are left out")


def unit_auc(values) -> float:
    """Area under one unit's curve: the trapezoid rule at equal steps, per step.

    Parameters
    ----------
    values : sequence of float
        The unit's metric at each budget, in budget order.

    Returns
    -------
    auc : float
        NaN if a value is missing or not finite; the value itself for one budget.
    """
    v = np.asarray([np.nan if x is None else x for x in values], dtype=float)
    if v.size == 0 or not np.all(np.isfinite(v)):
        return float("nan")
    if v.size == 1:
        return float(v[0])
    return float(((v[1:] + v[:-1]) / 2).mean())


def _interval(part: dict, short: str, per_subject: bool, seed: int) -> tuple:
    """The 95 % interval of a pipeline's headline, over its independent units.

    By subject (a studentised bootstrap) where every subject has its own model and the
    pipeline shares nothing between the subjects of a fold; else over folds, with the
    corrected standard error of Nadeau and Bengio around the headline (folds share
    training data, and a fold's subjects share its model or pre-training).
    """
    from .statistics import corrected_resampled_ttest, studentized_bootstrap_ci
    from scipy.stats import t as student_t

    mean = part["headline"].get("mean")
    if per_subject and not _shared_across_subjects(part):
        values = [v.get(short) for v in (part.get("per_subject") or {}).values()]
        values = [v for v in values if v is not None and np.isfinite(v)]
        return (list(studentized_bootstrap_ci(values, seed=seed)),
                "studentised bootstrap over subjects")
    folds = [f for f in part.get("folds") or []
             if (f.get("metrics", {}).get("subject") or {}).get(short) is not None]
    values = [f["metrics"]["subject"][short] for f in folds]
    n_test = [len(f.get("test") or []) for f in folds]
    n_train = [len(f.get("train") or []) + len(f.get("val") or []) for f in folds]
    t = corrected_resampled_ttest(values, n_train, n_test)
    if t.get("se") is None or mean is None or not np.isfinite(mean):
        return [None, None], "over folds (too few folds for an interval)"
    half = float(student_t.ppf(0.975, t["k"] - 1) * t["se"])
    return ([mean - half, mean + half],
            "headline +/- t(k - 1) x the corrected standard error of the fold values "
            "(Nadeau and Bengio)")


def _mean_labelled(report: dict) -> float | None:
    """Mean number of labelled training units per subject and fold of a report."""
    counts = []
    for fold in report.get("folds") or []:
        units = (fold.get("train") or []) + (fold.get("val") or [])
        per = {}
        for s, _ in units:
            per[s] = per.get(s, 0) + 1
        counts += list(per.values())
    return float(np.mean(counts)) if counts else None


@fill_doc
def label_efficiency_section(reports: dict, *, per_subject: bool, n_classes: int = 2,
                             seed: int = 0) -> dict:
    """The ``label_efficiency`` part of a study's report.

    Parameters
    ----------
    reports : dict of str -> dict
        ``{budget label: report}`` in increasing budget order (``"all"`` last), each
        from ``build_report()`` on that budget's fold
        results, with the same pipelines in the same order (the first is primary).
    per_subject : bool
        Whether the protocol gives every subject its own model (the report's
        ``per_subject_models``). The areas are then paired, and the intervals taken,
        as the headlines' are: by subject only where neither pipeline shares anything
        between the subjects of a fold, else by fold
        (``paired_comparison()``).
    %(n_classes)s
    seed : int
        Seed of the intervals and of the paired tests.

    Returns
    -------
    section : dict
        See the module docstring.
    """
    budgets = list(reports)
    last = reports[budgets[-1]]
    names = list(last["pipelines"])
    metric = last["headline"]["metric"]  # "subject.<metric>"
    short = metric.split(".", 1)[1]
    curves, auc_parts = {}, {}
    for name in names:
        points = []
        for b in budgets:
            part = reports[b]["pipelines"][name]
            head = part["headline"]
            ci, how = _interval(part, short, per_subject, seed)
            points.append({"budget": b, "mean": head.get("mean"), "std": head.get("std"),
                           "n": head.get("n"), "chance": head.get("chance"), "ci95": ci,
                           "ci_method": how, "p_value": head.get("p_value")})
        curves[name] = points
        # per-subject and per-fold areas, in the shape paired_comparison reads
        subjects = set().union(*(reports[b]["pipelines"][name].get("per_subject", {})
                                 for b in budgets))
        per_subject_auc = {
            s: {short: unit_auc([(reports[b]["pipelines"][name].get("per_subject", {})
                                  .get(s) or {}).get(short) for b in budgets])}
            for s in subjects}
        fold_values = {b: {f["fold"]: f["metrics"].get("subject", {}).get(short)
                           for f in reports[b]["pipelines"][name].get("folds", [])}
                       for b in budgets}
        folds = []
        for f in last["pipelines"][name].get("folds", []):
            entry = {k: f.get(k) for k in ("fold", "train", "val", "test", "n_windows")}
            entry["metrics"] = {"subject": {short: unit_auc(
                [fold_values[b].get(f["fold"]) for b in budgets])}}
            folds.append(entry)
        auc_parts[name] = {"per_subject": per_subject_auc, "folds": folds,
                           "model": last["pipelines"][name].get("model") or {},
                           "curves": last["pipelines"][name].get("curves") or {}}
    auc = {}
    for name in names:
        values = [v[short] for v in auc_parts[name]["per_subject"].values()
                  if np.isfinite(v[short])]
        auc[name] = {"value": float(np.mean(values)) if values else None, "n": len(values)}
    primary = names[0]
    comparisons = [paired_comparison(auc_parts, primary, other, metric=short,
                                     per_subject=per_subject, n_classes=n_classes, seed=seed)
                   for other in names[1:]]
    for c in comparisons:
        c["metric"] = f"auc.{metric}"
        c["value"] = f"area under the label-efficiency curve of the {c['value']}"
    return {"budgets": budgets, "labelled": {b: _mean_labelled(reports[b]) for b in budgets},
            "metric": metric, "label": last["headline"].get("label"), "curves": curves,
            "auc": auc, "auc_definition": AUC_DEFINITION, "comparisons": comparisons,
            "by_budget": {b: reports[b].get("comparisons") or [] for b in budgets}}
