"""The numbers of a cross-validation report, computed from fold records alone.

:func:`build_report` turns the fold records of
:func:`physiosync.evaluation.runner.cross_validate` into the report dictionary
(``report.json``; its typed definition and versions: :mod:`physiosync.evaluation.schema`):
each pipeline's part (:func:`summarize_pipeline`: the headline, the folds, the
per-subject table, the summaries over subjects and folds, one-class fallbacks, confusion
matrices, permutation p-values) and the paired comparisons of the primary pipeline with
the others (:func:`paired_comparison`, Holm-adjusted by :func:`holm_families`).
:func:`merge_reports` pairs the pipelines of several runs on the same folds.
:mod:`physiosync.reporting` only renders what is computed here.

NaN stands for a value that cannot be computed; the writers store it as ``null``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._utils.docs import fill_doc
from ..dataset_specs import QUADRANTS
from ..exceptions import PhysioSyncError
from .metrics import (classification_metrics, headline_metric, model_chance_levels,
                      subject_permutation_test, subject_scores, trial_vote)
from .protocols import PROTOCOLS
from .schema import METRIC_LABELS, REPORT_VERSION, migrate_report
from .statistics import holm_families

__all__ = ["build_report", "merge_reports", "summarize_pipeline", "paired_comparison",
           "permutation_nulls", "class_names", "fold_rows",
           "LEAKAGE_WARNING", "LEGACY_P_NOTE", "METRIC_LABELS", "RESULT_COLUMNS"]

#: Why a ``legacy-segment`` report carries no permutation p-value.
LEGACY_P_NOTE = (
    "no permutation p-value: under legacy-segment the windows of a test trial are also in "
    "training, so the predictions follow the labels through the trial's identity and no "
    "permutation of the labels tests emotion recognition")

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


#: Columns of ``results.csv`` (:func:`physiosync.reporting.report.report_rows`): the
#: first seven are those of the per-fold table of earlier versions, with the same meaning
#: on the rows they had.
RESULT_COLUMNS = ["pipeline", "fold", "target", "level", "metric", "value", "chance", "row",
                  "subject"]


def fold_rows(name: str, target: str, folds: list) -> pd.DataFrame:
    """``pipeline, fold, target, level, metric, value, chance`` rows of report folds."""
    rows = []
    for f in folds:
        for level in ("subject", "window", "trial"):
            for metric, value in (f["metrics"].get(level) or {}).items():
                rows.append((name, f["fold"], target, level, metric, value,
                             ((f.get("chance") or {}).get(level) or {}).get(metric)))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS[:7])


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
            "label": f"per-subject {METRIC_LABELS[metric]}, mean over subjects",
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
    frame = fold_rows(name, target, folds)
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
    from .statistics import (cohens_dz, corrected_resampled_ttest, sign_flip_test,
                                         studentized_bootstrap_ci)

    metric = metric or headline_metric(n_classes)
    a, b = report_parts[pipeline], report_parts[baseline]
    label = METRIC_LABELS.get(metric, metric)
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


def class_names(target: str, n_classes: int, dataset: str | None = None) -> list:
    """Display names of the classes of a target (the dataset's declared names when
    *dataset* is given and declares *n_classes* of them)."""
    if dataset is not None:
        from ..dataset_specs import dataset_spec

        try:
            names = list(dataset_spec(dataset).class_names(target))
        except PhysioSyncError:  # a report of an unknown dataset or target
            names = []
        if len(names) == n_classes:
            return names
    if target == "four" or n_classes == 4:
        return list(QUADRANTS)
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
    return {"schema_version": REPORT_VERSION, "protocol": protocol, "target": target,
            "leaky": leaky,
            "warning": LEAKAGE_WARNING if leaky else None,
            "caveat": spec.caveat if spec else None,
            "n_classes": n_classes,
            "class_names": class_names(target, n_classes,
                                       ((config or {}).get("data") or {}).get("name")),
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

    reports = [migrate_report(r) for r in reports]
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
