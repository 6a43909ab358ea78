"""Cross-validation reports: ``report.json``, ``results.csv``, ``report.md``, ``report.html``.

The report leads with one number per pipeline, the **headline**: the per-subject
balanced accuracy (macro F1 for four classes) of each subject's test windows pooled
over all folds, averaged over subjects, beside its chance level. Pooled metrics over
all windows (or trial votes) of a fold are kept, labelled "pooled", for comparison
with the literature.

The JSON schema is documented in ``docs/evaluation.md``. In short::

    {
      "protocol", "target", "leaky", "warning", "caveat", "n_classes", "class_names",
      "primary", "per_subject_models", "config", "data",
      "headline",                                  # the primary pipeline's headline
      "folds", "per_subject", "summary",           # the primary pipeline's, at top level
      "pipelines": {name: {
          "headline": {"metric", "label", "mean", "std", "n", "chance", "chance_rule",
                       "p_value"},
          "folds", "per_subject", "summary", "one_class", "confusion", "curves",
          "channel_importance"[, "p_value", "p_values" | "p_value_note"][, "refit_null"]
          [, "model"]}},
      "comparisons": [{"pipeline", "baseline", "metric", "level", "pairing", "value",
                       "differences", "mean", "std", "n", "ci95", "ci_method",
                       "cohens_dz", "primary_test", "test", "p_value", "min_p",
                       "sign_flip", "corrected_t", "p_value_holm", "holm_family",
                       "warning"}],
    }

- ``data`` (set by :func:`physiosync.experiment.run_experiment`, from
  :func:`physiosync.experiment.describe_data`): ``dataset``, ``root`` (absolute, as in
  ``config.yaml``), ``format``, ``subjects``, ``n_subjects``, ``trials_per_subject`` (a
  number, or ``[min, max]``), ``n_units``, ``n_windows``, ``synthetic`` (whether
  physiosync's synthetic writers wrote every source file) and ``origin`` (that, in words).

- ``folds[*]``: ``fold``, ``train``/``val``/``test`` (lists of ``[subject, trial]``),
  ``metrics`` and ``chance`` per level, ``chance_source`` (``"training labels"``, or
  ``"test labels"`` for fold files written before training labels were recorded),
  ``n_windows`` (``train``: training + validation windows, ``test``) and
  ``one_class_windows``. Levels: ``subject`` (mean over the fold's test subjects of
  the per-subject metric; ``accuracy``, ``balanced_accuracy``, ``macro_f1``),
  ``window`` and ``trial`` (pooled over the fold's test windows, or trial votes).
  ``chance.<level>`` maps each metric to its chance level
  (:func:`physiosync.evaluation.metrics.chance_levels`).
- ``per_subject.<subject>``: window-level metrics of the subject's test windows pooled
  over folds, and ``chance`` (metric -> chance level). Balanced accuracy and macro F1
  follow :func:`physiosync.evaluation.metrics.subject_scores` (null for a subject whose test
  windows hold one class).
- ``summary.<level>.<metric>``: ``{mean, std, n, chance}``; ``subject.*`` over subjects,
  ``window.*`` and ``trial.*`` over folds (std with ddof = 1; chance: the mean chance
  level of the same subjects or folds).
- ``one_class``: test windows predicted by the constant fallback of a model whose
  training labels held one class (``protocol.one_class: constant``): ``windows``,
  ``of_windows``, ``units``, ``subjects``, ``folds`` and ``summary_without`` (the
  ``subject.*`` summary without those windows; null when there are none).
- ``p_value`` (with ``protocol.permutations``): the permutation test of the headline
  under the protocol's primary null (:func:`permutation_nulls`,
  :func:`physiosync.evaluation.metrics.subject_permutation_test`): ``metric``, ``value``,
  ``p_value``, ``permutations``, ``null_mean``, ``null_q95``, ``null_name``, ``null``
  (its definition); ``p_values``: every null computed, by name. Under
  ``legacy-segment`` there is none, and ``p_value_note`` says why.
- ``refit_null`` (with ``protocol.permutation_refit``, set by
  :func:`physiosync.experiment.run_experiment`): ``metric``, ``observed``, ``null``
  (one score per refit), ``p_value``, ``n``, ``definition``.
- ``model`` (set by :func:`physiosync.experiment.run_experiment`): what the pipeline
  runs, from :func:`physiosync.experiment.describe_pipeline`: ``kind``, ``embedding``
  (encoder embedding per time scale), ``pretrained``, ``modalities`` and ``text``.
- ``comparisons[*]``: the primary pipeline minus each other one on the headline
  metric, paired by subject when every subject has its own model
  (``per_subject_models``) and neither pipeline shares anything between the subjects of
  a fold (``model.shared_across_subjects``), else by fold with the corrected resampled
  t-test as the primary test (see :func:`paired_comparison`). ``p_value_holm``: its
  ``p_value`` adjusted by Holm's step-down method over its family, every comparison of
  the same primary pipeline on the same metric (``holm_family`` says which), for the
  family-wise error rate of those several tests.

NaN is written as ``null``.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .._logging import verbose
from .._utils import atomic_write
from ..evaluation.metrics import (classification_metrics, headline_metric, model_chance_levels,
                      subject_permutation_test, subject_scores, trial_vote)
from ..evaluation.protocols import PROTOCOLS
from .text import (_METRIC_LABELS, CHANCE_NOTE, LEGACY_P_NOTE, _chance_of, _fmt, _fmt_p,
                   _headline_sentence, _null_name, _one_class_sentence, _pairing_sentence,
                   _table_cells, _table_header, _table_notes, data_sentence, displayable,
                   holm_families,
                   held_out_sentence,
                   label_efficiency_lines, metric_label,
                   model_selection_sentence, pipeline_table)
from .._utils.docs import fill_doc

__all__ = ["build_report", "write_report", "report_rows", "report_markdown", "report_text",
           "summarize_pipeline", "paired_comparison", "merge_reports", "check_report",
           "class_names",
           "permutation_nulls",
           "metric_label", "pipeline_table", "LEAKAGE_WARNING", "CHANCE_NOTE"]

LEAKAGE_WARNING = (
    "LEAKAGE WARNING: the legacy-segment protocol splits windows at random, so windows of "
    "the same trial (same subject, stimulus and label) sit in both training and test data. "
    "Its scores (about 98 % on DEAP in the literature) measure trial identification, not "
    "emotion recognition; honest protocols give about 55-65 %.")

_SUBJECT_LEVEL = ("accuracy", "balanced_accuracy", "macro_f1")  # metrics of subject_scores
_N_RESAMPLES = 10_000  # bootstrap resamples and Monte Carlo sign patterns


def _mean_std(values) -> dict:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "n": int(v.size)}


def _mean_std_chance(values, chances) -> dict:
    """:func:`_mean_std` of *values* plus the mean chance of the entries with a value."""
    pairs = [(v, c) for v, c in zip(values, chances) if v is not None and np.isfinite(v)]
    out = _mean_std([v for v, _ in pairs])
    ch = [c for _, c in pairs if c is not None and np.isfinite(c)]
    out["chance"] = float(np.mean(ch)) if ch else float("nan")
    return out


def _confusion(y, pred, n_classes: int) -> list:
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y, pred, labels=list(range(n_classes))).tolist()


#: Columns of ``results.csv`` (:func:`report_rows`): the first seven are those of the
#: per-fold table of earlier versions, with the same meaning on the rows they had.
RESULT_COLUMNS = ["pipeline", "fold", "target", "level", "metric", "value", "chance", "row",
                  "subject"]


def _fold_rows(name: str, target: str, folds: list) -> pd.DataFrame:
    """``pipeline, fold, target, level, metric, value, chance`` rows of report folds."""
    rows = []
    for f in folds:
        for level in ("subject", "window", "trial"):
            for metric, value in (f["metrics"].get(level) or {}).items():
                rows.append((name, f["fold"], target, level, metric, value,
                             _chance_of(f, level, metric)))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS[:7])


def _subject_rows(name: str, target: str, per_subject: dict) -> pd.DataFrame:
    """One row per subject and metric of a pipeline's ``per_subject`` table (the values
    behind the headline): ``fold`` empty, ``level`` ``"per_subject"``."""
    rows = []
    for subject, entry in (per_subject or {}).items():
        chance = entry.get("chance") if isinstance(entry.get("chance"), dict) else {}
        for metric, value in entry.items():
            if metric != "chance":
                rows.append((name, None, target, "per_subject", metric, value,
                             chance.get(metric), "subject",
                             int(subject) if str(subject).lstrip("-").isdigit() else subject))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def _predictions(results: list, n_classes: int) -> pd.DataFrame:
    """Test predictions of every fold, with ``fold``, ``pred`` and ``one_class`` columns."""
    frames = []
    for r in results:
        frame = pd.DataFrame(r["predictions"])
        frame["fold"] = r["fold"]
        frames.append(frame)
    if not frames:
        return pd.DataFrame()
    preds = pd.concat(frames, ignore_index=True)
    preds["pred"] = preds[[f"p{c}" for c in range(n_classes)]].to_numpy().argmax(1)
    # rows of the constant fallback of a one-class training split (missing: none)
    preds["one_class"] = preds["one_class"].eq(True) if "one_class" in preds else False
    return preds


def _subject_table(preds: pd.DataFrame, train_labels: dict, n_classes: int, *,
                   full: bool = True) -> dict:
    """``{subject: {metric: value, ..., "chance": {metric: chance}}}`` of pooled windows.

    *full*: every metric of :func:`classification_metrics` (else only the metrics of
    :func:`subject_scores`). Balanced accuracy and macro F1 are those of
    :func:`subject_scores`, as for the headline and its permutation test.
    """
    if not len(preds):
        return {}
    y, pred, subjects = (preds["y"].to_numpy(), preds["pred"].to_numpy(),
                         preds["subject"].to_numpy())
    scores = {m: subject_scores(y, pred, subjects, n_classes=n_classes, metric=m)
              for m in _SUBJECT_LEVEL}
    cols = [f"p{c}" for c in range(n_classes)]
    table = {}
    for s, g in preds.groupby("subject", sort=True):
        s = int(s)
        entry = (classification_metrics(g["y"].to_numpy(), g["pred"].to_numpy(),
                                         g[cols].to_numpy(), n_classes=n_classes) if full
                 else {})
        entry.update({m: scores[m][s] for m in _SUBJECT_LEVEL})
        chance = model_chance_levels(g["y"].to_numpy(), g["subject"].to_numpy(), train_labels,
                                     n_classes=n_classes, folds=g["fold"].to_numpy(),
                                     average="active")
        entry["chance"] = chance if full else {m: chance[m] for m in _SUBJECT_LEVEL}
        table[s] = entry
    return table


def _subject_summary(table: dict, metric: str) -> dict:
    """``subject.<metric>`` summaries over subjects, the headline *metric* first."""
    if not table:
        return {}
    metrics = [m for m in next(iter(table.values())) if m != "chance"]
    metrics = [metric] + [m for m in metrics if m != metric]
    return {f"subject.{m}": _mean_std_chance([v.get(m) for v in table.values()],
                                             [v["chance"].get(m) for v in table.values()])
            for m in metrics}


def _fold_entry(r: dict, fold_preds: pd.DataFrame, n_classes: int) -> dict:
    """One fold of the report: manifest, metrics and chance levels of three levels."""
    m, tl = r["metrics"], r.get("train_labels")
    y, subjects = fold_preds["y"].to_numpy(), fold_preds["subject"].to_numpy()
    proba = fold_preds[[f"p{c}" for c in range(n_classes)]].to_numpy()
    yt, _, _ = trial_vote(y, proba, fold_preds[["subject", "trial"]].to_numpy())
    # trial_vote orders trials by first appearance, as drop_duplicates does
    trial_subjects = fold_preds[["subject", "trial"]].drop_duplicates()["subject"].to_numpy()
    table = _subject_table(fold_preds, {r["fold"]: tl}, n_classes, full=False)
    subject = {k: _mean_std_chance([v[k] for v in table.values()],
                                   [v["chance"][k] for v in table.values()])
               for k in _SUBJECT_LEVEL}
    return {
        "fold": r["fold"], "train": r["train"], "val": r["val"], "test": r["test"],
        "metrics": {"subject": {k: s["mean"] for k, s in subject.items()},
                    "window": m["window"], "trial": m["trial"]},
        "chance": {"subject": {k: s["chance"] for k, s in subject.items()},
                   "window": model_chance_levels(y, subjects, tl, n_classes=n_classes),
                   "trial": model_chance_levels(yt, trial_subjects, tl, n_classes=n_classes)},
        "chance_source": "training labels" if tl is not None else "test labels",
        "n_windows": {"train": int(sum(tl["pooled"])) if tl is not None else None,
                      "test": int(len(fold_preds))},
        "one_class_windows": int(fold_preds["one_class"].sum()),
    }


def _headline(summary: dict, metric: str) -> dict:
    s = summary.get(f"subject.{metric}", {"mean": float("nan"), "std": float("nan"), "n": 0,
                                          "chance": float("nan")})
    rule = ("1/C, C = classes in each subject's test labels" if metric == "balanced_accuracy"
            else "per subject, the larger of the stratified predictor (training class "
                 "frequencies) and the best constant predictor; mean over subjects")
    return {"metric": f"subject.{metric}",
            "label": f"per-subject {_METRIC_LABELS[metric]}, mean over subjects",
            "mean": s["mean"], "std": s["std"], "n": s["n"], "chance": s.get("chance"),
            "chance_rule": rule, "p_value": None}


def _one_class(preds: pd.DataFrame, train_labels: dict, n_classes: int, metric: str) -> dict:
    """Count the constant fallback predictions and summarise the subjects without them."""
    out = {"windows": 0, "of_windows": int(len(preds)), "units": 0, "subjects": [],
           "folds": [], "summary_without": None}
    flagged = preds[preds["one_class"]] if len(preds) else preds
    if not len(flagged):
        return out
    rest = preds[~preds["one_class"]]
    out.update(windows=int(len(flagged)),
               units=int(len(flagged[["subject", "trial"]].drop_duplicates())),
               subjects=sorted(int(s) for s in flagged["subject"].unique()),
               folds=sorted(int(f) for f in flagged["fold"].unique()),
               summary_without=(_subject_summary(_subject_table(rest, train_labels, n_classes),
                                                 metric)
                                or {f"subject.{metric}": _mean_std_chance([], [])}))
    return out


def permutation_nulls(protocol: str) -> tuple:
    """The permutation nulls of a protocol's report, the primary one first.

    Parameters
    ----------
    protocol : str
        A protocol name (an unknown one gets the within-subject null).

    Returns
    -------
    nulls : tuple of str
        Names in :data:`physiosync.evaluation.metrics.NULLS`:
        ``("subject-stimulus-margins", "within-subject")`` for protocols that hold out
        subjects but keep the test stimuli in training (``loso``, ``subject-kfold``:
        there a model that recognises the video is significant under the
        within-subject null); ``("within-subject",)`` for the others; ``()`` for
        ``legacy-segment``, whose test windows share trials with training, so that no
        permutation of labels tests emotion recognition.
    """
    spec = PROTOCOLS.get(protocol)
    if spec is not None and spec.leaky:
        return ()
    if spec is not None and tuple(spec.held_out) == ("subject",):
        return ("subject-stimulus-margins", "within-subject")
    return ("within-subject",)


@fill_doc
def summarize_pipeline(results: list, *, protocol: str, target: str, n_classes: int = 2,
                       name: str = "physiosync", permutations: int = 0,
                       seed: int = 0) -> dict:
    """One pipeline's part of the report.

    Parameters
    ----------
    results : list of dict
        Fold records of :func:`physiosync.evaluation.runner.cross_validate` (fold files written before
        training labels were recorded work too; their chance levels then come from the
        test labels and ``chance_source`` says so).
    %(protocol_target)s
    %(n_classes)s
    name : str
        Pipeline name.
    permutations : int
        Permutations of each permutation test of the headline (0: none).
    seed : int
        Seed of the permutations.

    Returns
    -------
    part : dict
        ``headline``, ``folds``, ``per_subject``, ``summary``, ``one_class``,
        ``confusion`` (``window``/``trial``), ``curves``, ``channel_importance`` (mean
        over folds) and, with *permutations*, ``p_value`` (the protocol's primary null,
        :func:`permutation_nulls`) and ``p_values`` (every null it computes, by name);
        under ``legacy-segment`` no p-value but ``p_value_note`` (why). See the module
        docstring.
    """
    metric = headline_metric(n_classes)
    preds = _predictions(results, n_classes)
    train_labels = {r["fold"]: r.get("train_labels") for r in results}
    folds = [_fold_entry(r, preds[preds["fold"] == r["fold"]], n_classes) for r in results]
    curves = {"pretrain": {}, "finetune": []}
    importances = []
    for r in results:
        for enc, curve in (r.get("curves") or {}).get("pretrain", {}).items():
            curves["pretrain"].setdefault(enc, []).append({"fold": r["fold"], **curve})
        for curve in (r.get("curves") or {}).get("finetune", []):
            curves["finetune"].append({"fold": r["fold"], **curve})
        if r.get("channel_importance") is not None:
            importances.append(r["channel_importance"])
    per_subject = _subject_table(preds, train_labels, n_classes)
    summary = _subject_summary(per_subject, metric)
    frame = _fold_rows(name, target, folds)
    frame = frame[frame["level"] != "subject"]  # subject.* is over subjects, not folds
    for (level, m), group in frame.groupby(["level", "metric"], sort=False):
        summary[f"{level}.{m}"] = _mean_std_chance(group["value"].tolist(),
                                                   group["chance"].tolist())
    confusion, p_value, p_values = {}, None, None
    nulls = permutation_nulls(protocol)
    if len(preds):
        proba = preds[[f"p{c}" for c in range(n_classes)]].to_numpy()
        y = preds["y"].to_numpy()
        confusion["window"] = _confusion(y, preds["pred"].to_numpy(), n_classes)
        yt, pt, _ = trial_vote(y, proba, preds[["subject", "trial"]].to_numpy())
        confusion["trial"] = _confusion(yt, pt, n_classes)
        if permutations and nulls:
            p_values = {null: subject_permutation_test(
                y, preds["pred"].to_numpy(), preds["subject"].to_numpy(),
                preds[["subject", "trial"]].to_numpy(), n_classes=n_classes,
                n_permutations=permutations, seed=seed, null=null,
                stimuli=preds["trial"].to_numpy()) for null in nulls}
            p_value = p_values[nulls[0]]
    headline = _headline(summary, metric)
    part = {"headline": headline, "folds": folds, "per_subject": per_subject,
            "summary": summary, "one_class": _one_class(preds, train_labels, n_classes, metric),
            "confusion": confusion, "curves": curves if any(curves.values()) else {},
            "channel_importance": (np.mean(importances, axis=0).tolist() if importances
                                   else None)}
    if p_value is not None:
        part["p_value"] = p_value
        part["p_values"] = p_values
        headline["p_value"] = p_value["p_value"]
        headline["null"] = p_value["null_name"]
    elif permutations and not nulls:
        part["p_value_note"] = LEGACY_P_NOTE
    selection = _model_selection(results)
    if selection:  # only estimators that choose hyper-parameters: other reports unchanged
        part["model_selection"] = selection
    return part


def _model_selection(results: list) -> dict | None:
    """How often each hyper-parameter combination was chosen, over the fitted models.

    Reads the ``model_selection`` records of the fold files (one per fitted model, e.g.
    the grid point of the DE + SVM baseline picked on the protocol's validation
    windows). Returns ``{"fits", "chosen": [{"params", "count"}, ...]}``, most chosen
    first, and ``"how"``: how many fits chose on validation windows or fell back to
    the defaults (and why); None when no fold recorded a choice.
    """
    records = [m for r in results for m in (r.get("model_selection") or [])]
    if not records:
        return None
    chosen, how = {}, {}
    for m in records:
        params = m.get("params") or {}
        key = tuple(sorted(params.items()))
        chosen[key] = chosen.get(key, 0) + 1
        label = str(m.get("selection") or "unknown")
        how[label] = how.get(label, 0) + 1
    order = sorted(chosen.items(), key=lambda kv: (-kv[1], kv[0]))
    return {"fits": len(records),
            "chosen": [{"params": dict(k), "count": n} for k, n in order],
            "how": dict(sorted(how.items(), key=lambda kv: -kv[1]))}


def _fold_values(part: dict, metric: str, level: str) -> dict:
    return {str(f["fold"]): (f["metrics"].get(level) or {}).get(metric)
            for f in part.get("folds", [])}


def _shared_across_subjects(part: dict) -> str | None:
    """What the subjects of one fold share in a pipeline's models (None: nothing).

    Reads ``model.shared_across_subjects`` (set from the pipeline kind by
    :func:`physiosync.experiment.describe_pipeline`); reports written before it was
    recorded are read from what they hold: a pre-training (``model.pretrained`` or
    pre-training curves), fine-tuning curves (networks started from one seeded
    initialisation in every subject's model) or the stimulus-prior kind.
    """
    model = part.get("model") if isinstance(part.get("model"), dict) else {}
    if "shared_across_subjects" in model:
        return model["shared_across_subjects"]
    curves = part.get("curves") if isinstance(part.get("curves"), dict) else {}
    if model.get("pretrained") or curves.get("pretrain"):
        return "pre-trains one encoder per fold on all subjects' training trials"
    if model.get("kind") == "stimulus-prior":
        return "predicts each subject from the other subjects' labels"
    if curves.get("finetune"):
        return "trains every subject's network from the same seeded initial weights"
    return None


def _pairing(parts: dict, pipeline: str, baseline: str, per_subject: bool) -> tuple:
    """``(level, reason)``: pair by subject only where subjects are independent units."""
    if not per_subject:
        return "fold", ("by fold: one model per fold serves all its test subjects (pooled "
                        "fine-tuning or a cross-subject protocol), so the subjects of a fold "
                        "are not independent")
    for name in (pipeline, baseline):
        reason = _shared_across_subjects(parts[name])
        if reason:
            return "fold", (f"by fold: {name} {reason}, so the subjects of a fold share it "
                            "and are not independent")
    return "subject", ("by subject: both pipelines fit each subject's model on that "
                       "subject's data alone, so subjects are independent units")


_FOLD_TEST = ("corrected resampled t-test of Nadeau and Bengio (2003) over folds, df = k - 1: "
              "var(mean d) = (1/k + n_test/n_train) var(d), for the training data folds share")
_FOLD_CI = ("mean +/- t(k - 1) x the corrected standard error of the Nadeau-Bengio test "
            "(excludes 0 exactly when that test rejects at 0.05)")


def paired_comparison(report_parts: dict, pipeline: str, baseline: str, *,
                      metric: str | None = None, per_subject: bool = True,
                      n_classes: int = 2, seed: int = 0) -> dict:
    """Paired differences *pipeline* minus *baseline* on the headline metric.

    Pairs are the units at which the two pipelines' models are independent. By
    subject only when every subject has its own model (*per_subject*) **and** neither
    pipeline shares anything fitted or drawn between the subjects of a fold (a
    pre-training on all subjects, other subjects' labels, one seeded initialisation;
    the part's ``model.shared_across_subjects``); a fold effect shared by its subjects
    would otherwise pass for independent evidence. Else by fold (pooled fine-tuning,
    cross-subject protocols, shared pre-training; under ``loso`` a fold is one subject).

    The primary test follows the pairing: by subject, the exact two-sided sign-flip
    test of the mean difference with a studentised bootstrap interval; by fold, the
    corrected resampled t-test of Nadeau and Bengio (folds share training data, so
    their differences are correlated, which the sign-flip test ignores) with the
    interval of the same variance. Both tests are reported.

    Parameters
    ----------
    report_parts : dict
        ``{name: part}`` of :func:`summarize_pipeline` (or of a loaded report).
    pipeline, baseline : str
        Names in *report_parts*.
    metric : str | None
        Per-subject metric; None: :func:`physiosync.evaluation.metrics.headline_metric`.
    per_subject : bool
        Whether the protocol gives every subject its own model (within-subject
        protocols without ``protocol.pooled``). By subject, a unit's value is the
        subject's test windows pooled over folds; by fold, the mean over the fold's test
        subjects of the per-subject metric (reports written before it was recorded fall
        back to the fold's pooled window metric, and ``value`` says so).
    n_classes : int
        2 or 4 (for the default *metric*).
    seed : int
        Seed of the bootstrap (and of Monte Carlo sign patterns above 16 units).

    Returns
    -------
    comparison : dict
        ``pipeline``, ``baseline``, ``metric``, ``level`` (``"subject"``/``"fold"``),
        ``pairing`` (why that level), ``value`` (what each paired value is),
        ``differences`` (unit -> difference), ``mean``, ``std``, ``n``, ``ci95`` and
        ``ci_method``, ``cohens_dz``, ``primary_test`` (``"sign-flip"`` by subject,
        ``"corrected-t"`` by fold), ``test`` (its description), ``p_value`` (its
        p-value), ``min_p`` (the smallest p the sign-flip test can reach; None for the
        t-test), ``sign_flip`` (``p_value``, ``min_p``, ``n_zeros``, ``test``),
        ``corrected_t`` (fold pairs,
        :func:`physiosync.evaluation.statistics.corrected_resampled_ttest`; else None) and ``warning`` (when the design cannot reach p < 0.05, or has no
        pairs).
    """
    from ..evaluation.statistics import (cohens_dz, corrected_resampled_ttest, sign_flip_test,
                                         studentized_bootstrap_ci)

    metric = metric or headline_metric(n_classes)
    a, b = report_parts[pipeline], report_parts[baseline]
    label = _METRIC_LABELS.get(metric, metric)
    level, pairing = _pairing(report_parts, pipeline, baseline, per_subject)
    by_subject = level == "subject"
    if by_subject:
        va = {str(k): v.get(metric) for k, v in a.get("per_subject", {}).items()}
        vb = {str(k): v.get(metric) for k, v in b.get("per_subject", {}).items()}
        value = f"per-subject {label} (the subject's test windows pooled over folds)"
        key = f"subject.{metric}"
    else:
        va, vb = _fold_values(a, metric, "subject"), _fold_values(b, metric, "subject")
        value = f"per fold: mean over the fold's test subjects of the per-subject {label}"
        key = f"subject.{metric}"
        if not all("subject" in f["metrics"] for f in (*a["folds"], *b["folds"])):
            va, vb = _fold_values(a, metric, "window"), _fold_values(b, metric, "window")
            value = f"per fold: pooled window {label} (report without per-subject fold values)"
            key = f"window.{metric}"

    def finite(x):
        return x is not None and np.isfinite(x)

    units = sorted((u for u in set(va) & set(vb) if finite(va[u]) and finite(vb[u])),
                   key=lambda u: (0, int(u), "") if u.lstrip("-").isdigit() else (1, 0, u))
    diffs = {u: float(va[u] - vb[u]) for u in units}
    d = np.array(list(diffs.values()), dtype=float)
    flip = sign_flip_test(d, n_resamples=_N_RESAMPLES, seed=seed)
    stats = _mean_std(d)
    what = "subjects" if by_subject else "folds"
    kind = ("exact over all 2^n sign patterns" if flip["exact"]
            else f"{flip['n_patterns']} random sign patterns")
    sign_flip = {"p_value": flip["p_value"], "min_p": flip["min_p"],
                 "n_zeros": flip["n_zeros"],
                 "test": f"two-sided sign-flip permutation test of the mean difference ({kind})"}
    corrected, warning = None, None
    if by_subject:
        low, high = studentized_bootstrap_ci(d, n_resamples=_N_RESAMPLES, seed=seed)
        ci_method = (f"studentised (bootstrap-t) interval over subjects, {_N_RESAMPLES} "
                     f"resamples, seed {seed}")
        primary, test, p_value, min_p = ("sign-flip", sign_flip["test"], flip["p_value"],
                                         flip["min_p"])
        if stats["n"] and flip["min_p"] > 0.05:
            zeros = (f" ({flip['n_zeros']} of them with a zero difference, which no sign "
                     "flip changes)" if flip["n_zeros"] else "")
            warning = (f"with n = {stats['n']} {what}{zeros} the smallest two-sided p-value "
                       f"this design can reach is {flip['min_p']:.3g} > 0.05, whatever the "
                       "difference: read the effect size and its interval, not the p-value, "
                       f"or use more {what}.")
    else:
        sizes = {str(f["fold"]): f for f in a.get("folds", [])}
        n_train, n_test = [], []
        for u in units:
            f = sizes[u]
            if f.get("test"):
                n_train.append(len(f.get("train") or []) + len(f.get("val") or []))
                n_test.append(len(f["test"]))
            else:  # legacy-segment folds split windows, not units
                nw = f.get("n_windows") or {}
                n_train.append(nw.get("train") or 0)
                n_test.append(nw.get("test") or 0)
        corrected = corrected_resampled_ttest(d, n_train, n_test) if units else None
        if corrected is not None:
            corrected["sizes"] = "units" if all(sizes[u].get("test") for u in units) \
                else "windows"
        low, high = (corrected or {}).get("ci") or (None, None)
        ci_method = _FOLD_CI
        primary, test = "corrected-t", _FOLD_TEST
        p_value, min_p = (corrected or {}).get("p_value"), None
        if stats["n"] and (corrected or {}).get("p_value") is None:
            warning = (f"with n = {stats['n']} {what} (or differences that do not vary) the "
                       "corrected t-test has no p-value: read the effect size, or use more "
                       "folds.")
    if stats["n"] == 0:
        warning = f"no {what} with a value for both pipelines: nothing to compare."
    # an unbounded side (a bootstrap-t interval of very few distinct values) is None,
    # as strict JSON writes it
    low, high = (v if v is not None and np.isfinite(v) else None for v in (low, high))
    return {"pipeline": pipeline, "baseline": baseline, "metric": key,
            "level": level, "pairing": pairing, "value": value,
            "differences": diffs, "mean": stats["mean"], "std": stats["std"], "n": stats["n"],
            "ci95": [low, high], "ci_method": ci_method, "cohens_dz": cohens_dz(d),
            "primary_test": primary, "test": test, "p_value": p_value, "min_p": min_p,
            "sign_flip": sign_flip, "corrected_t": corrected, "warning": warning}


def class_names(target: str, n_classes: int) -> list:
    """Display names of the classes of a target."""
    if target == "four" or n_classes == 4:
        return ["HA-HV", "HA-LV", "LA-HV", "LA-LV"]
    return ["low", "high"][:n_classes] if n_classes <= 2 else [str(c) for c in range(n_classes)]


def _infer_per_subject_models(protocol: str, leaky: bool) -> bool:
    """Reports without ``per_subject_models``: within-subject protocols had them."""
    spec = PROTOCOLS.get(protocol)
    return bool(spec is not None and spec.per_subject_models and not leaky)


@fill_doc
def build_report(results, *, protocol: str, target: str, n_classes: int = 2,
                 config: dict | None = None, channels=None, permutations: int = 0,
                 seed: int = 0, per_subject_models: bool | None = None,
                 importance_methods: dict | None = None, models: dict | None = None,
                 data: dict | None = None) -> dict:
    """Assemble the report from :func:`physiosync.evaluation.runner.cross_validate` results.

    Parameters
    ----------
    results : list of dict | dict of str -> list of dict
        One pipeline's fold results, or ``{pipeline: results}`` for a comparison
        (the first pipeline is the primary one).
    %(protocol_target)s
    %(n_classes)s
    config : dict | None
        Resolved configuration (with versions and data source) stored in the report.
    channels : list of str | None
        EEG channel names, for the channel-importance topomap.
    permutations : int
        Permutations of each permutation test of each pipeline's headline (0: none;
        the nulls: :func:`permutation_nulls`).
    seed : int
        Seed of the permutations and of the comparisons' bootstrap.
    per_subject_models : bool | None
        Whether every subject has its own model (within-subject protocols without
        pooled fine-tuning); comparisons are then paired by subject, else by fold.
        None: within-subject protocols are assumed to have per-subject models.
    importance_methods : dict of str -> str | None
        How each pipeline's channel importance was computed (its
        :attr:`~physiosync.evaluation.pipelines.PipelineKind.importance_method`);
        pipelines without one get ``method`` None.
    models : dict of str -> dict | None
        What each pipeline runs (:func:`physiosync.experiment.describe_pipeline`),
        stored as the pipeline's ``model``; its ``shared_across_subjects`` sets the
        pairing of the comparisons (:func:`paired_comparison`).
    data : dict | None
        What data the run used (:func:`physiosync.experiment.describe_data`), stored as
        the report's ``data`` and named at the top of ``report.md`` and ``report.html``.

    Returns
    -------
    report : dict
        See the module docstring.
    """
    if not isinstance(results, dict):
        results = {"physiosync": results}
    spec = PROTOCOLS.get(protocol)  # None for a protocol this version does not know
    leaky = bool(spec and spec.leaky)
    if per_subject_models is None:
        per_subject_models = _infer_per_subject_models(protocol, leaky)
    parts = {}
    for name, res in results.items():
        parts[name] = summarize_pipeline(res, protocol=protocol, target=target,
                                         n_classes=n_classes, name=name,
                                         permutations=permutations, seed=seed)
        if channels is not None and parts[name]["channel_importance"] is not None:
            parts[name]["channel_importance"] = {
                "channels": list(channels), "values": parts[name]["channel_importance"],
                "method": (importance_methods or {}).get(name)}
        elif parts[name]["channel_importance"] is not None:
            parts[name]["channel_importance"] = None
        if (models or {}).get(name) is not None:
            parts[name]["model"] = models[name]
    primary = next(iter(parts))
    comparisons = holm_families([
        paired_comparison(parts, primary, other, per_subject=per_subject_models,
                          n_classes=n_classes, seed=seed)
        for other in parts if other != primary])
    return {"protocol": protocol, "target": target, "leaky": leaky,
            "warning": LEAKAGE_WARNING if leaky else None,
            "caveat": spec.caveat if spec else None,
            "n_classes": n_classes, "class_names": class_names(target, n_classes),
            "primary": primary, "per_subject_models": bool(per_subject_models),
            "config": config or {}, "data": data, "headline": parts[primary]["headline"],
            "folds": parts[primary]["folds"], "per_subject": parts[primary]["per_subject"],
            "summary": parts[primary]["summary"], "pipelines": parts,
            "comparisons": comparisons}


def merge_reports(reports: list, *, names=None) -> dict:
    """Merge the pipelines of several runs into one report with paired comparisons.

    The runs must share the protocol, the target and the folds (identical
    train/val/test manifests); otherwise the comparison would not be paired.

    Parameters
    ----------
    reports : list of dict
        Loaded ``report.json`` mappings; the first run's primary pipeline is primary.
    names : list of str | None
        Run names, used as prefixes when two runs hold a pipeline of the same name.
    """
    from ..exceptions import PhysioSyncError

    names = names or [f"run{i}" for i in range(len(reports))]
    first = reports[0]
    for name, rep in zip(names[1:], reports[1:]):
        for key in ("protocol", "target", "n_classes"):
            if rep.get(key) != first.get(key):
                raise PhysioSyncError(f"cannot merge run {name!r}: its {key} is "
                                      f"{rep.get(key)!r}, the first run's is "
                                      f"{first.get(key)!r}.")
        manifest = [(f["train"], f["val"], f["test"]) for f in rep["folds"]]
        if manifest != [(f["train"], f["val"], f["test"]) for f in first["folds"]]:
            raise PhysioSyncError(f"cannot merge run {name!r}: its folds differ from the first "
                                  "run's (use the same data, protocol, folds and seed).")
        theirs = rep.get("per_subject_models")
        if theirs is not None and first.get("per_subject_models") not in (None, theirs):
            raise PhysioSyncError(
                f"cannot merge run {name!r}: its models are "
                f"{'per subject' if theirs else 'pooled'}, the first run's are not; pairs "
                "of subjects and pairs of folds cannot be mixed (set protocol.pooled alike).")
    parts = {}
    for name, rep in zip(names, reports):
        for pipe, part in rep["pipelines"].items():
            key = pipe if pipe not in parts else f"{name}/{pipe}"
            parts[key] = part
    merged = dict(first)
    primary = next(iter(parts))
    by_subject = first.get("per_subject_models")
    if by_subject is None:
        by_subject = _infer_per_subject_models(first["protocol"], first["leaky"])
    merged["per_subject_models"] = bool(by_subject)
    merged["pipelines"] = parts
    merged["comparisons"] = holm_families([
        paired_comparison(parts, primary, other, per_subject=by_subject,
                          n_classes=first.get("n_classes", 2))
        for other in parts if other != primary])
    merged["config"] = {"runs": {n: r.get("config", {}) for n, r in zip(names, reports)}}
    return merged


#: What :func:`check_report` expects, in its messages.
_EXPECTED_REPORT = "expected a run folder or the report.json that `physiosync cv` writes"
#: The keys every report holds (:func:`build_report`).
_REPORT_KEYS = ("protocol", "target", "pipelines", "folds")
#: What reading a report of the wrong shape raises.
_SHAPE_ERRORS = (KeyError, TypeError, ValueError, AttributeError, IndexError)


def check_report(report, source) -> None:
    """Check, before anything is written, that *report* is a report that can be rendered.

    Parameters
    ----------
    report : object
        What was read from *source* (``json.loads``).
    source : str | Path
        Where it came from, for the message.

    Raises
    ------
    DataFormatError
        Naming *source* and what was expected: *report* is not a JSON object, is a fold
        file, lacks a key of every report, or cannot be rendered (``results.csv`` and
        ``report.md`` are rendered in memory to find out).
    """
    from ..exceptions import DataFormatError

    if not isinstance(report, dict):
        raise DataFormatError(f"{source} is not a physiosync report (it holds a JSON "
                              f"{type(report).__name__}); {_EXPECTED_REPORT}.")
    if "predictions" in report and "key" in report:
        raise DataFormatError(f"{source} is a fold file, not a report; {_EXPECTED_REPORT}.")
    missing = [k for k in _REPORT_KEYS if k not in report]
    if missing:
        raise DataFormatError(f"{source} is not a physiosync report (it has no "
                              f"{', '.join(missing)}); {_EXPECTED_REPORT}.")
    try:
        if not isinstance(report["pipelines"], dict) or not report["pipelines"]:
            raise ValueError("'pipelines' is not a non-empty object")
        report_rows(report)
        report_markdown(report)
    except _SHAPE_ERRORS as err:
        what = f"{type(err).__name__}: {err}" if isinstance(err, KeyError) else str(err)
        raise DataFormatError(f"{source} is a damaged report ({what[:200]}); "
                              f"{_EXPECTED_REPORT}, or rerun the run to write it "
                              "again.") from None


def _finite_or_none(obj):
    """Replace NaN/inf by None (strict JSON) and numpy scalars by Python ones."""
    if isinstance(obj, dict):
        return {str(k): _finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite_or_none(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (list, dict)):
        obj = obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    return obj


def report_rows(report: dict) -> pd.DataFrame:
    """``results.csv``: the per-fold rows, then the per-subject rows behind the headline.

    Columns ``pipeline, fold, target, level, metric, value, chance, row, subject``
    (:data:`RESULT_COLUMNS`). ``row`` says which kind of row it is:

    - ``"fold"``: one row per pipeline x fold x level x metric, ``subject`` empty;
      ``level`` is ``subject`` (the mean over the fold's test subjects of the
      per-subject metric), ``window`` or ``trial`` (pooled over the fold's test
      windows, or trial votes); ``chance`` is that metric's chance level on that fold.
    - ``"subject"``: one row per pipeline x subject x metric, ``fold`` empty and
      ``level`` ``"per_subject"``: the subject's test windows pooled over all folds,
      the values whose mean over subjects is the headline (``summary.subject.*``);
      ``chance`` is that subject's chance level.

    The first seven columns keep their meaning on the fold rows, so a reader of
    earlier versions' files selects those with ``row == "fold"`` (or a ``level`` among
    ``subject``, ``window`` and ``trial``).
    """
    frames = []
    for kind in ("fold", "subject"):
        for name, part in report["pipelines"].items():
            if kind == "fold":
                frame = _fold_rows(name, report["target"], part["folds"])
                frame["row"], frame["subject"] = "fold", None
            else:
                frame = _subject_rows(name, report["target"], part.get("per_subject"))
            frames.append(frame)
    rows = pd.concat([f for f in frames if len(f)] or [frames[0]], ignore_index=True)
    # integer columns with empty cells stay integers (``fold`` of subject rows, ``subject``
    # of fold rows) instead of turning into floats
    for col in ("fold", "subject"):
        with contextlib.suppress(TypeError, ValueError):  # ids that are not integers stay
            rows[col] = rows[col].astype("Int64")
    return rows[RESULT_COLUMNS]


# --------------------------------------------------------------------------- text
def _summary_keys(summary: dict) -> list:
    order = {"subject": 0, "window": 1, "trial": 2}
    return sorted(summary, key=lambda k: order.get(str(k).split(".")[0], 3))


def report_markdown(report: dict) -> str:
    """The Markdown summary (``report.md``).

    The warnings and caveat, the primary pipeline's headline, then one table with a row
    per pipeline (:func:`pipeline_table`: the headline with its chance level and
    permutation p-value, and the paired difference to the primary pipeline with its 95 %
    interval and p-value); then, per pipeline, what it runs, its one-class fallbacks and
    every metric beside its chance level; then the paired comparisons in full.
    """
    report = displayable(report)
    n_classes = report.get("n_classes", 2)
    lines = [f"# physiosync cross-validation: {report['target']} ({report['protocol']})", ""]
    if report.get("leaky"):
        lines += [f"> **{report['warning']}**", ""]
    if report.get("caveat"):
        lines += [f"> **Caveat ({report['protocol']}):** {report['caveat']}", ""]
    data = data_sentence(report)
    if data:
        lines += [f"**Data:** {data}.", ""]
    pipes = report["pipelines"]
    primary = report.get("primary") or next(iter(pipes))
    lines += [f"**Headline ({primary}):** {_headline_sentence(pipes[primary], n_classes)}.", ""]
    rows = pipeline_table(report)
    refit = any(r["refit_p"] is not None for r in rows)
    header = _table_header(rows, refit=refit) + ["model"]
    lines += ["## Pipelines", "", "| " + " | ".join(header) + " |",
              "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_table_cells(r, refit=refit) + [r["model"] or ""]) + " |"
              for r in rows]
    lines += [""] + _table_notes(rows, legacy=bool(report.get("leaky"))) + [""]
    for name, part in pipes.items():
        lines += [f"## {name}", ""]
        if isinstance(part.get("model"), dict) and part["model"].get("text"):
            lines += [f"Model: {part['model']['text']}.", ""]
        chosen = model_selection_sentence(part)
        if chosen:
            lines += [f"Hyper-parameters: {chosen}", ""]
        held = held_out_sentence(part)
        if held:
            lines += [f"Pre-training, held out: {held}", ""]
        one = _one_class_sentence(part, n_classes)
        if one:
            lines += [f"> **One-class fallback:** {one}", ""]
        lines += ["| metric | mean ± std | chance | n |", "|---|---|---|---|"]
        summary = part["summary"]
        for key in _summary_keys(summary):
            s = summary[key]
            unit = "subjects" if key.startswith("subject.") else "folds"
            lines.append(f"| {metric_label(key)} (`{key}`) | {_fmt(s['mean'])} ± "
                         f"{_fmt(s['std'])} | {_fmt(s.get('chance'))} | {s['n']} {unit} |")
        pv = part.get("p_value")
        nulls_of = part.get("p_values") or ({_null_name(pv): pv} if isinstance(pv, dict)
                                            else {})
        for name_of, q in nulls_of.items():
            primary_null = (" (primary)" if len(nulls_of) > 1 and name_of == _null_name(pv)
                            else "")
            p = q.get("p_value", q.get("value"))
            lines.append(f"| {name_of} permutation p{primary_null} of `{q['metric']}` "
                         f"({q['permutations']} permutations) | {_fmt_p(p)} | null mean "
                         f"{_fmt(q.get('null_mean'))}, 95th percentile "
                         f"{_fmt(q.get('null_q95'))} | |")
        rn = part.get("refit_null")
        if isinstance(rn, dict):
            null = [v for v in (rn.get("null") or []) if v is not None]
            lines.append(f"| refit null p of `{rn.get('metric')}` ({rn.get('n')} refits), "
                         f"observed {_fmt(rn.get('observed'))} | {_fmt_p(rn.get('p_value'))} | "
                         f"null mean {_fmt(float(np.mean(null)) if null else None)} | |")
        lines.append("")
        nulls = [f"{name_of} permutation null: {q['null']}."
                 for name_of, q in nulls_of.items() if isinstance(q.get("null"), str)]
        if part.get("p_value_note"):
            nulls.append(f"{part['p_value_note']}.")
        if isinstance(rn, dict) and isinstance(rn.get("definition"), str):
            nulls.append(f"refit null: {rn['definition']}.")
        if nulls:
            lines += ["Null hypotheses: " + " ".join(nulls), ""]
    comps = report.get("comparisons") or []
    if comps:
        lines += ["## Paired comparisons", "",
                  "| pipeline − baseline | metric | n | mean difference [95 % CI] | d_z | "
                  "p (primary test) | Holm p | sign-flip p (min p) | corrected t p |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for c in comps:
            ci = c.get("ci95") or [None, None]
            ct = c.get("corrected_t") or {}
            flip = c.get("sign_flip") or {"p_value": c.get("p_value"),
                                          "min_p": c.get("min_p")}
            lines.append(
                f"| {c['pipeline']} − {c['baseline']} | {c['metric']} | {c['n']} "
                f"{c.get('level', '')}s | {_fmt(c['mean'])} [{_fmt(ci[0])}, {_fmt(ci[1])}] | "
                f"{_fmt(c.get('cohens_dz'), 2)} | {_fmt_p(c.get('p_value'))} "
                f"({c.get('primary_test') or 'sign-flip'}) | {_fmt_p(c.get('p_value_holm'))} | "
                f"{_fmt_p(flip.get('p_value'))} "
                f"({_fmt_p(flip.get('min_p'))}) | {_fmt_p(ct.get('p_value'))} |")
        lines.append("")
        lines += [f"- {c['pipeline']} − {c['baseline']}: {_pairing_sentence(c)}"
                  for c in comps]
        for c in comps:
            if c.get("warning"):
                lines.append(f"- **Warning ({c['pipeline']} − {c['baseline']}):** "
                             f"{c['warning']}")
        tests = {c.get("test") for c in comps if c.get("test")}
        lines += [""] + [f"Primary test: {t}." for t in sorted(tests)]
        families = sorted({c["holm_family"] for c in comps if c.get("holm_family")})
        lines += [f"Holm p: the primary test's p adjusted over {f}." for f in families]
        lines += ["Min p: the smallest p-value the sign-flip test can reach with these "
                  "units (zero differences do not count). By fold, the sign-flip test "
                  "ignores that folds share training data and is shown for reference only.",
                  "Intervals: " + "; ".join(sorted({str(c.get("ci_method", "bootstrap"))
                                                    for c in comps}))
                  + ". Cohen's d_z = mean / std of the differences.", ""]
    if isinstance(report.get("label_efficiency"), dict):
        lines += label_efficiency_lines(report["label_efficiency"], markdown=True)
    lines += [CHANCE_NOTE,
              "Per-subject (`subject.*`): each subject's test windows pooled over folds, "
              "mean and std over subjects; pooled (`window.*`, `trial.*`): all test windows "
              "(or trial votes) of a fold together, mean and std over folds (ddof = 1).", ""]
    return "\n".join(lines)


def report_text(report: dict) -> str:
    """The plain-text summary printed after ``physiosync cv`` and ``demo``.

    The leakage warning and the protocol's caveat first; then one row per pipeline
    (:func:`pipeline_table`): the headline with its chance level, its permutation
    p-value, and the paired difference to the primary pipeline with its 95 % interval
    and p-value; then the pooled window and trial metrics with their chance levels,
    what each pipeline runs, one-class fallbacks and the paired comparisons with their
    warnings.
    """
    report = displayable(report)
    n_classes = report.get("n_classes", 2)
    metric = headline_metric(n_classes)
    pipes = report["pipelines"]
    lines = []
    for key in ("warning", "caveat"):
        if report.get(key):
            lines += [str(report[key]), ""]
    data = data_sentence(report)
    if data:
        lines.append(f"data: {data}")
    rows = pipeline_table(report)
    title = metric_label(next((r["metric"] for r in rows if r["metric"]), None)
                         or f"subject.{metric}")
    lines.append(f"headline: {title}, mean ± std over subjects; pooled window "
                 f"{_METRIC_LABELS[metric]} and pooled trial accuracy: mean ± std over folds")
    refit = any(r["refit_p"] is not None for r in rows)
    name_w = max([14] + [len(n) for n in pipes])
    primary = next((r["pipeline"] for r in rows if r["primary"]), "")
    cols = [("headline", 15), ("chance", 7), ("p", 8)] + ([("refit p", 8)] if refit else []) \
        + [(f"{primary} − pipeline", 8), ("mean paired difference [95 % CI]", 26),
           ("paired p", 8), ("Holm p", 8)]

    def table(header, body):
        widths = [max([w, len(c)] + [len(r[i + 1]) for r in body])
                  for i, (c, w) in enumerate(header)]
        out = [f"{'pipeline':<{name_w}}"
               + "".join(f" {c:>{w}}" for (c, _), w in zip(header, widths))]
        out += [(f"{r[0]:<{name_w}}" + "".join(f" {c:>{w}}" for c, w in zip(r[1:], widths)))
                .rstrip() for r in body]
        return out

    body = []
    for r in rows:
        cells = _table_cells(r, refit=refit)
        body.append(cells[:2] + cells[3:])  # the subject counts: in report.md and .html
    lines += table(cols, body)
    lines += [""] + _table_notes(rows, legacy=bool(report.get("leaky")))

    def ms(s):
        return "n/a" if not s or s.get("mean") is None or not np.isfinite(s["mean"]) \
            else f"{s['mean']:.3f} ± {s['std']:.3f}"

    pooled = []
    for name, part in pipes.items():
        s = part.get("summary") or {}
        win, tri = s.get(f"window.{metric}"), s.get("trial.accuracy")
        pooled.append([name, ms(win), _fmt((win or {}).get("chance")), ms(tri),
                       _fmt((tri or {}).get("chance"))])
    lines += [""] + table([("pooled window", 15), ("chance", 7), ("pooled trial", 15),
                           ("chance", 7)], pooled)
    models = [(r["pipeline"], r["model"]) for r in rows if r["model"]]
    if models:
        lines.append("")
        lines += [f"{name:<{name_w}} {text}" for name, text in models]
    for name, part in pipes.items():
        chosen = model_selection_sentence(part)
        if chosen:
            lines += ["", f"hyper-parameters ({name}): {chosen}"]
        held = held_out_sentence(part)
        if held:
            lines += ["", f"pre-training, held out ({name}): {held}"]
        one = _one_class_sentence(part, n_classes)
        if one:
            lines += ["", f"one-class fallback ({name}): {one}"]
    for c in report.get("comparisons") or []:
        ci = c.get("ci95") or [None, None]
        test = c.get("primary_test") or "sign-flip"
        extra = f" (min p {_fmt_p(c.get('min_p'))})" if c.get("min_p") is not None else ""
        holm = (f", Holm p = {_fmt_p(c['p_value_holm'])}" if c.get("p_value_holm") is not None
                else "")
        lines += ["", f"{c['pipeline']} − {c['baseline']} ({c['metric']}, paired by "
                  f"{c.get('level')}, n = {c['n']}): {_fmt(c['mean'])} [95 % CI "
                  f"{_fmt(ci[0])}, {_fmt(ci[1])}], {test} p = {_fmt_p(c.get('p_value'))}"
                  f"{extra}{holm}", f"  {_pairing_sentence(c)}"]
        if c.get("warning"):
            lines.append(f"  warning: {c['warning']}")
    if isinstance(report.get("label_efficiency"), dict):
        lines += [""] + label_efficiency_lines(report["label_efficiency"], markdown=False)
    return "\n".join(lines)


@verbose
def write_report(report: dict, out_dir, *, html: bool = True,
                 verbose: bool | str | int | None = None) -> dict:
    """Write ``report.json``, ``results.csv``, ``report.md`` and ``report.html``.

    Each file is written atomically.

    Parameters
    ----------
    report : dict
        From :func:`build_report` (or :func:`merge_reports`).
    out_dir : str | Path
        Folder to write into; created if needed.
    html : bool
        Also write ``report.html`` (:func:`physiosync.reporting.html.write_html_report`).
    %(verbose)s
        A figure of ``report.html`` that cannot be drawn is logged as a warning
        (``"error"`` hides it).

    Returns
    -------
    paths : dict of str -> Path
        ``{"json", "csv", "md"[, "html"]}``.
    """
    report = displayable(report)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    public = _finite_or_none({k: v for k, v in report.items() if not k.startswith("_")})
    paths = {"json": out_dir / "report.json", "csv": out_dir / "results.csv",
             "md": out_dir / "report.md"}
    # Every file is rendered before any is written: a report that cannot be rendered
    # leaves the folder as it was.
    texts = {"json": json.dumps(public, indent=2, allow_nan=False),
             "csv": report_rows(report).to_csv(index=False), "md": report_markdown(report)}
    if html:
        from .html import render_html

        paths["html"] = out_dir / "report.html"
        texts["html"] = render_html(public)
    for key, text in texts.items():
        # A path's undecodable bytes (lone surrogates, e.g. in the data root) are written
        # as \udcXX escapes, as in run.log: the files stay UTF-8 text. JSON escapes them
        # itself, and reads them back as they were.
        atomic_write(paths[key], text, errors="backslashreplace")
    return paths
