"""Labels and sentences shared by the Markdown, plain-text and HTML reports.

Both :mod:`physiosync.reporting.report` and :mod:`physiosync.reporting.html` import
from here, so that neither has to import the other to word a report the same way.
"""

from __future__ import annotations

import numpy as np

from ..evaluation.metrics import headline_metric

__all__ = ["CHANCE_NOTE", "metric_label"]

#: How chance levels are defined (printed under the tables of every report).
CHANCE_NOTE = (
    "Chance levels sit beside their metric: balanced accuracy 1/C (C = classes in the test "
    "labels); accuracy: always predicting the majority class of the training labels (per "
    "subject when every subject has its own model), scored on the test labels; ROC "
    "AUC 0.5; F1 and macro F1: the larger of the stratified predictor (drawing classes at "
    "the training frequencies, expected confusion matrix) and the best constant predictor.")

_LEVEL_LABELS = {"subject": "per-subject", "window": "pooled window", "trial": "pooled trial"}
_METRIC_LABELS = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy",
                  "macro_f1": "macro F1", "f1": "F1 (high)", "roc_auc": "ROC AUC",
                  "weighted_f1": "weighted F1"}


def metric_label(key: str) -> str:
    """Readable name of a summary key: ``"window.accuracy"`` -> ``"pooled window accuracy"``."""
    level, _, metric = str(key).partition(".")
    if not metric:
        return _METRIC_LABELS.get(level, level)
    return f"{_LEVEL_LABELS.get(level, level)} {_METRIC_LABELS.get(metric, metric)}"


def _chance_of(fold: dict, level: str, metric: str):
    """A fold's chance level of *metric*; reports before per-metric chance levels held
    one number per level (the test majority), which belongs to accuracy only."""
    chance = (fold.get("chance") or {}).get(level)
    if isinstance(chance, dict):
        return chance.get(metric)
    return chance if metric == "accuracy" else None


def _fmt(value, digits=3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _fmt_p(p) -> str:
    if p is None or (isinstance(p, float) and not np.isfinite(p)):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


def _headline_of(part: dict, n_classes: int) -> dict:
    """A part's headline; older reports without one fall back on their summary."""
    if part.get("headline"):
        return part["headline"]
    metric = headline_metric(n_classes)
    s = (part.get("summary") or {}).get(f"subject.{metric}")
    if s is None:
        return {"metric": None, "label": None, "mean": None, "std": None, "n": 0,
                "chance": None}
    return {"metric": f"subject.{metric}", "label": metric_label(f"subject.{metric}"),
            "mean": s.get("mean"), "std": s.get("std"), "n": s.get("n"),
            "chance": s.get("chance")}


def _headline_sentence(part: dict, n_classes: int) -> str:
    h = _headline_of(part, n_classes)
    if not h.get("metric"):
        return "no per-subject headline in this report"
    text = (f"{metric_label(h['metric'])} {_fmt(h['mean'])} ± {_fmt(h['std'])} over "
            f"{h['n']} subjects (chance {_fmt(h.get('chance'))})")
    pv = part.get("p_value")
    if isinstance(pv, dict) and str(pv.get("metric", "")).startswith("subject."):
        text += (f"; within-subject permutation p = {_fmt_p(pv.get('p_value'))} "
                 f"({pv.get('permutations')} permutations)")
    rn = part.get("refit_null")
    if isinstance(rn, dict):
        text += (f"; refit null p = {_fmt_p(rn.get('p_value'))} ({rn.get('n')} refits on "
                 "permuted training labels)")
    return text


def _one_class_sentence(part: dict, n_classes: int) -> str | None:
    oc = part.get("one_class") or {}
    if not oc.get("windows"):
        return None
    folds = ", ".join(str(f) for f in oc.get("folds", []))
    n_subjects = len(oc.get("subjects", []))
    text = (f"{oc['windows']} of {oc.get('of_windows')} test windows ({oc.get('units')} units; "
            f"{n_subjects} subject{'s' if n_subjects != 1 else ''}; fold"
            f"{'s' if len(oc.get('folds', [])) != 1 else ''} {folds}) are the constant "
            "prediction of a model whose training labels held one class "
            "(protocol.one_class: constant)")
    metric = _headline_of(part, n_classes).get("metric")
    without = (oc.get("summary_without") or {}).get(metric) if metric else None
    if oc["windows"] >= (oc.get("of_windows") or 0):
        text += "; no other test window remains, so the scores measure nothing"
    elif without:
        text += (f"; without them: {metric_label(metric)} {_fmt(without.get('mean'))} ± "
                 f"{_fmt(without.get('std'))} over {without.get('n')} subjects (chance "
                 f"{_fmt(without.get('chance'))})")
    return text + "."
