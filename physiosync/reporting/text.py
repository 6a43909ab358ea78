"""Labels and sentences shared by the Markdown, plain-text and HTML reports.

Both :mod:`physiosync.reporting.report` and :mod:`physiosync.reporting.html` import
from here, so that neither has to import the other to word a report the same way.
"""

from __future__ import annotations

import numpy as np

from .._utils.docs import fill_doc
from ..evaluation.schema import migrate_report, validate_report
from ..evaluation.statistics import real_or_none as _real
from ..evaluation.summary import LEGACY_P_NOTE
from ..evaluation.summary import METRIC_LABELS as _METRIC_LABELS

__all__ = ["CHANCE_NOTE", "LEGACY_COMPARISON_NOTE", "metric_label", "model_selection_sentence",
           "pipeline_table", "displayable", "held_out_sentence", "data_sentence",
           "significance_sentence"]

#: How chance levels are defined (printed under the tables of every report).
CHANCE_NOTE = (
    "Chance levels sit beside their metric: balanced accuracy 1/C (C = classes in the test "
    "labels); accuracy: always predicting the majority class of the training labels (per "
    "subject when every subject has its own model), scored on the test labels; ROC "
    "AUC 0.5; F1 and macro F1: the larger of the stratified predictor (drawing classes at "
    "the training frequencies, expected confusion matrix) and the best constant predictor.")

_LEVEL_LABELS = {"subject": "per-subject", "window": "pooled window", "trial": "pooled trial"}


def metric_label(key: str) -> str:
    """Readable name of a summary key: ``"window.accuracy"`` -> ``"pooled window accuracy"``."""
    level, _, metric = str(key).partition(".")
    if not metric:
        return _METRIC_LABELS.get(level, level)
    return f"{_LEVEL_LABELS.get(level, level)} {_METRIC_LABELS.get(metric, metric)}"


def _fmt(value, digits=3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _fmt_p(p) -> str:
    if p is None or (isinstance(p, float) and not np.isfinite(p)):
        return "n/a"
    return "< 0.001" if p < 0.001 else f"{p:.3g}"


#: Why the paired comparisons of a ``legacy-segment`` report carry no p-value.
LEGACY_COMPARISON_NOTE = (
    "no paired p-value under legacy-segment: both scores come from test windows whose "
    "trials are also in training, so their difference measures trial identification, and "
    "its test says nothing about emotion recognition")


def displayable(report: dict) -> dict:
    """*report* without the p-values its protocol cannot support.

    Every renderer reads a report through this function. A report of an earlier schema
    version is first migrated (:func:`~physiosync.evaluation.schema.migrate_report`;
    one of a later version is refused), then validated
    (:func:`~physiosync.evaluation.schema.validate_report`: a field of the wrong type
    is refused in one line, so the renderers index the report directly). Under a leaky protocol (``legacy-segment``)
    every pipeline's permutation p-value is dropped (reports written before this rule
    held one) and replaced by ``p_value_note``
    (:data:`~physiosync.evaluation.summary.LEGACY_P_NOTE`), and the paired comparisons
    keep their differences and effect sizes but lose their tests (``p_value_note``:
    :data:`LEGACY_COMPARISON_NOTE`, also added to their ``warning``); other reports are
    returned as migrated.
    """
    report = validate_report(migrate_report(report))
    if not report.get("leaky"):
        return report
    pipes = {}
    for name, part in report["pipelines"].items():
        part = {k: v for k, v in part.items() if k not in ("p_value", "p_values")}
        part["p_value_note"] = LEGACY_P_NOTE
        part["headline"] = {**part["headline"], "p_value": None}
        pipes[name] = part
    out = {**report, "pipelines": pipes}
    if out.get("headline") is not None:
        out["headline"] = {**out["headline"], "p_value": None}
    comps = []
    for c in out.get("comparisons") or []:
        # the differences stay; no test of leaky scores is shown
        comps.append({**c, "p_value": None, "p_value_holm": None, "min_p": None,
                      "sign_flip": None, "corrected_t": None,
                      "p_value_note": LEGACY_COMPARISON_NOTE,
                      "warning": " ".join(filter(None, (c.get("warning"),
                                                        LEGACY_COMPARISON_NOTE + ".")))})
    if comps:
        out["comparisons"] = comps
    return out


def data_sentence(report: dict) -> str | None:
    """What data a report was computed on, in one sentence (None: the report does not say).

    ``"DEAP (dat) at /abs/root: 6 subjects x 12 trials (72 units, 1008 windows);
    synthetic (written by physiosync's synthetic writer)"``, from the report's ``data``
    (:func:`physiosync.experiment.describe_data`); reports written before it held one are
    read from their configuration (dataset and root only).
    """
    data = report.get("data")
    if data and data.get("dataset"):
        text = f"{data['dataset']}"
        if data.get("format"):
            text += f" ({data['format']})"
        if data.get("root"):
            text += f" at {data['root']}"
        trials = data.get("trials_per_subject")
        if isinstance(trials, (list, tuple)) and len(trials) == 2:
            trials = f"{trials[0]}-{trials[1]}"
        if data.get("n_subjects") is not None:
            text += f": {data['n_subjects']} subjects"
            if trials is not None:
                text += f" x {trials} trials"
            sessions = data.get("sessions")
            if sessions and len(sessions) > 1:
                text += f" in {len(sessions)} sessions ({', '.join(map(str, sessions))})"
            extra = [f"{data[k]} {w}" for k, w in (("n_units", "units"),
                                                    ("n_windows", "windows"))
                     if data.get(k) is not None]
            if extra:
                text += f" ({', '.join(extra)})"
        if data.get("origin"):
            text += f"; {data['origin']}"
        notes = data.get("notes") or []
        if notes:
            text += ". " + " ".join(str(n) for n in notes)
        return text
    cfg = report.get("config") or {}
    section = cfg.get("data") if isinstance(cfg.get("data"), dict) else cfg.get("dataset")
    if isinstance(section, dict) and (section.get("name") or section.get("root")):
        return (f"{section.get('name') or 'dataset'} at {section.get('root') or 'n/a'} "
                "(a report written before the data were described)")
    return None


def _null_name(pv: dict) -> str:
    """The null of a p-value record (every migrated record names it)."""
    return str(pv.get("null_name") or "within-subject")


def _pairing_sentence(c: dict) -> str:
    """Why a comparison is paired as it is."""
    return f"paired {c.get('pairing')}; primary test: {c.get('primary_test')}."


#: The headline of a part that has none (a damaged report).
_NO_HEADLINE = {"metric": None, "label": None, "mean": None, "std": None, "n": 0,
                "chance": None}


def _headline_of(part: dict) -> dict:
    """A part's headline (every migrated part has one)."""
    return part.get("headline") or _NO_HEADLINE


def _headline_sentence(part: dict) -> str:
    h = _headline_of(part)
    if not h.get("metric"):
        return "no per-subject headline in this report"
    text = (f"{metric_label(h['metric'])} {_fmt(h['mean'])} ± {_fmt(h['std'])} over "
            f"{h['n']} subjects (chance {_fmt(h.get('chance'))})")
    pv = part.get("p_value")
    if pv is not None and pv.get("metric", "").startswith("subject."):
        text += (f"; {_null_name(pv)} permutation p = {_fmt_p(pv.get('p_value'))} "
                 f"({pv.get('permutations')} permutations)")
        other = {k: v for k, v in (part.get("p_values") or {}).items()
                 if k != _null_name(pv)}
        for name, v in other.items():
            text += f"; {name} permutation p = {_fmt_p(v.get('p_value'))}"
    elif part.get("p_value_note"):
        text += f"; {part['p_value_note']}"
    rn = part.get("refit_null")
    if rn is not None:
        text += (f"; refit null p = {_fmt_p(rn.get('p_value'))} ({rn.get('n')} refits on "
                 "permuted training labels)")
    return text


def _one_class_sentence(part: dict) -> str | None:
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
    metric = _headline_of(part).get("metric")
    without = (oc.get("summary_without") or {}).get(metric) if metric else None
    if oc["windows"] >= (oc.get("of_windows") or 0):
        text += "; no other test window remains, so the scores measure nothing"
    elif without:
        text += (f"; without them: {metric_label(metric)} {_fmt(without.get('mean'))} ± "
                 f"{_fmt(without.get('std'))} over {without.get('n')} subjects (chance "
                 f"{_fmt(without.get('chance'))})")
    return text + "."


def model_selection_sentence(part: dict, top: int = 3) -> str | None:
    """The hyper-parameters a pipeline's models chose, e.g. for the DE + SVM grid.

    ``"chosen on the validation windows in 38 of 40 fits (2: default (validation windows
    of one class)): C=1, gamma=1 in 25; C=10, gamma=0.1 in 10; ..."``; None when the
    part records no choice.
    """
    sel = part.get("model_selection") or {}
    if not sel.get("chosen"):
        return None
    fits = sel.get("fits", 0)
    how = dict(sel.get("how") or {})
    on_val = how.pop("validation", 0)
    text = f"chosen on the validation windows in {on_val} of {fits} fits"
    if how:
        text += " (" + "; ".join(f"{n}: {label}" for label, n in how.items()) + ")"
    combos = [", ".join(f"{k}={v:g}" if isinstance(v, (int, float)) else f"{k}={v}"
                        for k, v in c["params"].items()) + f" in {c['count']}"
              for c in sel["chosen"][:top]]
    rest = len(sel["chosen"]) - top
    return (text + ": " + "; ".join(combos) + (f"; {rest} other combination"
                                                f"{'s' if rest != 1 else ''}" if rest > 0
                                                else "") + ".")


def held_out_sentence(part: dict) -> str | None:
    """The held-out diagnostic of a pipeline's pre-training, at its last evaluated step.

    ``"long: held-out loss 14.4 (random encoder 17.7, collapsed 9.59), retrieval
    temporal_eeg 0.29 (random 0.16, chance 0.091), ...; short: ..."``, means over folds;
    None when the pipeline recorded no held-out curve (older fold files, or no
    pre-training). Runs without held-out cells give their reason instead.
    """
    runs = (part.get("curves") or {}).get("pretrain")
    runs = runs if isinstance(runs, dict) else {}  # none, or an early report's list
    texts, notes = [], []
    for kind, entries in runs.items():
        held = [e["held_out"] for e in entries if e.get("held_out") is not None]
        measured = [h for h in held if h.get("loss")]
        if not measured:
            for h in held:  # one note per reason, not one per fold and encoder
                if h.get("cells") and h["cells"] not in notes:
                    notes.append(h["cells"])
            continue

        def mean(values):
            values = [v for v in values if isinstance(v, (int, float))]
            return float(np.mean(values)) if values else None

        def last(key):
            return mean(h[key][-1] for h in measured if h.get(key))

        def level(name, key):
            return mean((h.get(name) or {}).get(key) for h in measured)

        accs = sorted(k for k in measured[0] if k.startswith("retrieval_"))
        texts.append(
            f"{kind}: held-out loss {_fmt(last('loss'), 2)} (random encoder "
            f"{_fmt(level('random_encoder', 'loss'), 2)}, collapsed "
            f"{_fmt(level('collapsed', 'loss'), 2)})" + "".join(
                f", retrieval {k[len('retrieval_'):]} {_fmt(last(k))} (random "
                f"{_fmt(level('random_encoder', k))}, chance {_fmt(level('chance', k))})"
                for k in accs))
    if texts:
        cells = next(h.get("cells") for e in runs.values() for h in
                     (x.get("held_out") for x in e) if h and h.get("loss"))
        return (f"on held-out cells never trained on ({cells}), last evaluation, mean over "
                f"folds: " + "; ".join(texts) + ".")
    return ("no held-out diagnostic: " + "; ".join(notes) + ".") if notes else None


@fill_doc
def pipeline_table(report: dict) -> list:
    """One row per pipeline: the headline, its chance and p-value, the paired difference.

    The rows of the side-by-side table of ``report.md``, ``report.html`` and the CLI
    summary, read from a report dictionary (or its JSON round trip) alone.

    Parameters
    ----------
    %(report)s

    Returns
    -------
    rows : list of dict
        In report order, the primary (first) pipeline first. Each row holds
        ``pipeline``, ``primary`` (bool), ``model`` (what the pipeline runs, or None),
        ``metric`` (the headline key), ``mean``, ``std``, ``n`` (subjects), ``chance``,
        ``p_value``, ``permutations`` and ``null`` (the permutation test of the headline
        under the protocol's primary null, and the null's name; None without
        ``protocol.permutations`` and under ``legacy-segment``), ``refit_p`` (the refit
        null's p-value, or None) and ``difference``: None on the primary row, else
        ``headline`` (the primary pipeline's headline minus this one's, the difference
        of the two numbers the table shows) and the paired comparison *primary minus
        this pipeline* as ``mean`` (the mean paired difference over its units: equal to
        ``headline`` when paired by subject and both pipelines score the same subjects;
        by fold, the mean of the fold values), ``ci95``, ``p_value`` (of its primary
        test), ``p_holm`` (``p_value`` Holm-adjusted over the comparisons of the primary
        pipeline on this metric), ``min_p``, ``level`` (``"subject"`` or ``"fold"``),
        ``test`` (``"sign-flip"`` or ``"corrected-t"``), ``n`` and ``warning`` (all
        None when the report holds no such comparison).
    """
    report = displayable(report)
    pipes = report["pipelines"]
    primary = report.get("primary")
    if primary not in pipes:
        primary = next(iter(pipes), None)
    comparisons = {c["baseline"]: c for c in report.get("comparisons") or []
                   if c["pipeline"] == primary}

    rows = []
    for name, part in pipes.items():
        h = _headline_of(part)
        pv, rn = part.get("p_value"), part.get("refit_null")
        subject_p = pv is not None and pv.get("metric", "").startswith("subject.")
        row = {"pipeline": name, "primary": name == primary,
               "model": (part.get("model") or {}).get("text"),
               "metric": h.get("metric"), "mean": _real(h.get("mean")),
               "std": _real(h.get("std")), "n": h.get("n"), "chance": _real(h.get("chance")),
               "p_value": _real(pv.get("p_value")) if subject_p else None,
               "permutations": pv.get("permutations") if subject_p else None,
               "null": _null_name(pv) if subject_p else None,
               "refit_p": _real(rn.get("p_value")) if rn is not None else None,
               "difference": None}
        if name != primary:
            c = comparisons.get(name) or {}
            ci = [_real(v) for v in c["ci95"]] if c.get("ci95") else [None, None]
            ha, hb = _real(_headline_of(pipes[primary]).get("mean")), row["mean"]
            row["difference"] = {"headline": None if ha is None or hb is None else ha - hb,
                                 "mean": _real(c.get("mean")), "ci95": ci,
                                 "p_value": _real(c.get("p_value")),
                                 "p_holm": _real(c.get("p_value_holm")),
                                 "min_p": _real(c.get("min_p")), "level": c.get("level"),
                                 "test": c.get("primary_test") or "sign-flip",
                                 "n": c.get("n"), "warning": c.get("warning")}
        rows.append(row)
    return rows


def _mean_std_text(mean, std) -> str:
    return "n/a" if mean is None else f"{_fmt(mean)} ± {_fmt(std)}"


_UNITS = {"subject": "subjects", "fold": "folds"}


def _difference_text(diff) -> str:
    """``"0.052 [-0.010, 0.110] (4 folds)"``: the mean paired difference, its interval and
    the units it is over; empty on the primary row."""
    if diff is None:
        return ""
    if diff["mean"] is None:
        return "n/a"
    n = diff.get("n")
    unit = f" ({n} {_UNITS.get(diff.get('level'), 'units')})" if n is not None else ""
    return f"{_fmt(diff['mean'])} [{_fmt(diff['ci95'][0])}, {_fmt(diff['ci95'][1])}]{unit}"


def _table_cells(row: dict, *, refit: bool) -> list:
    """The cells of a :func:`pipeline_table` row, as the three reports print them:
    pipeline, headline (mean ± std), n, chance, p[, refit p], headline difference, mean
    paired difference [95 % CI] (units), paired p, Holm p."""
    diff = row["difference"]
    cells = [row["pipeline"], _mean_std_text(row["mean"], row["std"]),
             _fmt(row["n"], 0) if _real(row["n"]) is not None else "n/a", _fmt(row["chance"]),
             "—" if row["permutations"] is None else _fmt_p(row["p_value"])]
    if refit:
        cells.append("—" if row["refit_p"] is None else _fmt_p(row["refit_p"]))
    if diff is None:
        return cells + ["", "", "", ""]
    return cells + [_fmt(diff.get("headline")), _difference_text(diff),
                    _fmt_p(diff.get("p_value")), _fmt_p(diff.get("p_holm"))]


def _table_header(rows: list, *, refit: bool) -> list:
    primary = next((r["pipeline"] for r in rows if r["primary"]), "primary")
    metric = next((r["metric"] for r in rows if r.get("metric")), None)
    head = metric_label(metric) if metric else "headline"
    return (["pipeline", f"{head}, mean ± std", "subjects", "chance", "p"]
            + (["refit p"] if refit else [])
            + [f"{primary} − pipeline", "mean paired difference [95 % CI]", "paired p",
               "Holm p"])


_NULL_SHORT = {
    "within-subject": "within-subject (labels shuffled between each subject's units)",
    "subject-stimulus-margins": ("subject-stimulus margins (label tables that keep every "
                                 "subject's and every stimulus's class counts)")}
#: The paired test and interval of each pairing level, in the table notes.
_PAIRED_NOTE = {
    "subject": ("two-sided sign-flip permutation test over subjects; studentised bootstrap "
                "interval"),
    "fold": ("corrected resampled t-test of Nadeau and Bengio over folds; interval of the "
             "same corrected variance")}


def _table_notes(rows: list, *, legacy: bool = False) -> list:
    """Sentences under the side-by-side table: what p and the difference are."""
    notes = []
    perms = sorted({r["permutations"] for r in rows if r["permutations"] is not None})
    if perms:
        nulls = sorted({r["null"] for r in rows if r.get("null")})
        notes.append(
            "p: permutation test of the headline ("
            + "/".join(str(p) for p in perms) + " permutations, predictions fixed; null: "
            + "; ".join(_NULL_SHORT.get(n, n) for n in nulls) + ")"
            + ("; —: the pipeline has none." if any(r["permutations"] is None for r in rows)
               else "."))
    elif legacy:
        notes.append(f"p: — ({LEGACY_P_NOTE}).")
    else:
        notes.append("p: — because no permutation test was run (protocol.permutations is 0); "
                     "set protocol.permutations (e.g. 1000) for a p-value per pipeline.")
    if any(r["refit_p"] is not None for r in rows):
        notes.append("refit p: the pipeline retrained on permuted training labels "
                     "(protocol.permutation_refit).")
    diffs = [r["difference"] for r in rows if r["difference"] is not None]
    if diffs:
        primary = next((r["pipeline"] for r in rows if r["primary"]), "primary")
        level = next((d["level"] for d in diffs if d.get("level")), None)
        ns = sorted({d["n"] for d in diffs if d.get("n") is not None})
        unit = _UNITS.get(level, "units")
        by_fold = any(d.get("level") == "fold" for d in diffs)
        notes.append(
            f"{primary} − pipeline: the difference of the two headlines (over subjects). "
            f"Mean paired difference: the mean over the {'/'.join(str(n) for n in ns) or 'n/a'}"
            f" {unit} of {primary} minus the pipeline, with its 95 % interval"
            + (" (by fold a unit's value is the mean over the fold's test subjects, so this "
               "mean differs from the difference of the headlines, whose subjects pool "
               "their windows over folds)" if by_fold else
               " (equal to the difference of the headlines when both score the same "
               "subjects)")
            + f"; paired p: {_PAIRED_NOTE.get(level, _PAIRED_NOTE['subject'])} (why this "
            "pairing, and the other test, under Paired comparisons).")
        if any(d.get("p_holm") is not None for d in diffs):
            notes.append(
                f"Holm p: the paired p-values adjusted by Holm's step-down method over one "
                f"family, the {len(diffs)} pipeline{'s' if len(diffs) != 1 else ''} compared "
                f"with {primary} on the headline metric (family-wise error rate).")
    return notes


def label_efficiency_table(section: dict) -> dict:
    """The label-efficiency curves of a study as one table, with its sentences.

    Parameters
    ----------
    section : dict
        The ``label_efficiency`` part of a report
        (:func:`physiosync.reporting.label_efficiency.label_efficiency_section`).

    Returns
    -------
    table : dict
        ``intro`` (what the cells are), ``header``, ``rows`` (one per pipeline: its
        headline at each budget with the interval, its area under the curve, and the
        paired difference of areas to the primary pipeline with its p-value) and
        ``notes`` (the pairing and the test).
    """
    budgets = [str(b) for b in section.get("budgets") or []]
    labelled = section.get("labelled") or {}
    comps = {c.get("baseline"): c for c in section.get("comparisons") or []}
    primary = next(iter(section.get("curves") or {}), "")
    header = (["pipeline"] + [f"{b} ({_fmt(labelled.get(b), 1)})" for b in budgets]
              + ["area", f"{primary} − pipeline (area) [95 % CI]", "paired p"])
    rows = []
    for name, points in (section.get("curves") or {}).items():
        cells = [name]
        for p in points:
            ci = p.get("ci95") or [None, None]
            cells.append(f"{_fmt(p.get('mean'))} [{_fmt(ci[0])}, {_fmt(ci[1])}]")
        auc = (section.get("auc") or {}).get(name) or {}
        c = comps.get(name)
        if c is None:
            diff, p_value = "", ""
        else:
            ci = c.get("ci95") or [None, None]
            diff = f"{_fmt(c.get('mean'))} [{_fmt(ci[0])}, {_fmt(ci[1])}]"
            p_value = _fmt_p(c.get("p_value"))
        rows.append(cells + [_fmt(auc.get("value")), diff, p_value])
    label = section.get("label") or metric_label(section.get("metric", ""))
    intro = (f"Label efficiency: {label} [95 % CI] at each budget of labelled training trials "
             "per subject (in brackets: the mean number used per subject and fold); area: "
             f"{section.get('auc_definition', 'area under the curve')}.")
    tests = sorted({str(c.get("test")) for c in comps.values() if c.get("test")})
    level = next((c.get("level") for c in comps.values() if c.get("level")), None)
    notes = [f"Areas paired by {level}; test: {'; '.join(tests)}."] if tests else []
    return {"intro": intro, "header": header, "rows": rows, "notes": notes}


def label_efficiency_lines(section: dict, *, markdown: bool = True) -> list:
    """:func:`label_efficiency_table` as Markdown (``report.md``) or plain-text lines."""
    t = label_efficiency_table(section)
    header, rows = t["header"], t["rows"]
    if markdown:
        return (["## Label efficiency", "", t["intro"], "",
                 "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                + ["| " + " | ".join(r) + " |" for r in rows] + [""] + t["notes"] + [""])
    widths = [max(len(r[i]) for r in [header] + rows) for i in range(len(header))]
    return ([t["intro"]]
            + ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip()
               for r in [header] + rows] + t["notes"])


@fill_doc
def significance_sentence(report: dict, *, options: str | None = None) -> str:
    """"Is it significant?" answered from a report, in one sentence, with what to change.

    The primary pipeline's headline against chance (its permutation p-value, or how to
    get one), then what its paired differences to the other pipelines rest on: with
    few units the tests cannot resolve small differences, and the sentence says which
    options add units.

    Parameters
    ----------
    %(report)s
    options : str | None
        How the caller adds units, e.g. ``"--folds, --subjects"``, named after "more
        folds and subjects".

    Returns
    -------
    sentence : str
    """
    rows = pipeline_table(report)
    if not rows:
        return "significance: the report holds no pipeline."
    first = next((r for r in rows if r["primary"]), rows[0])
    name = first["pipeline"]
    text = f"significance: {name} {_fmt(first['mean'])} against chance {_fmt(first['chance'])}: "
    if first["permutations"] is not None:
        n = int(first["permutations"])
        floor = first["p_value"] is not None and first["p_value"] <= 1 / (n + 1) + 1e-12
        shown = _fmt_p(first["p_value"])
        shown = shown if shown.startswith("<") else f"= {shown}"
        text += (f"{first['null']} permutation p {shown} ({n} "
                 f"permutations{', the smallest p they can give' if floor else ''})")
    elif report.get("leaky"):
        text += f"no p-value ({LEGACY_P_NOTE})"
    else:
        text += ("no p-value, since no permutation test was run: add --set "
                 "protocol.permutations=1000 (cheap: the predictions are reused, nothing is "
                 "refitted)")
    diffs = [r for r in rows if r["difference"] is not None and r["difference"].get("n")]
    if diffs:
        d = diffs[0]["difference"]
        unit = _UNITS.get(d.get("level"), "units")
        held = [r["pipeline"] for r in diffs if r["difference"].get("p_holm") is not None
                and r["difference"]["p_holm"] <= 0.05]
        more = "folds and subjects" if unit == "folds" else "subjects"
        text += (f"; {name} against {', '.join(r['pipeline'] for r in diffs)}: paired over "
                 f"{d['n']} {unit}, "
                 + (f"Holm p <= 0.05 for {', '.join(held)}" if held
                    else "no difference significant at 0.05 after Holm's adjustment"))
        if d["n"] < 10:
            text += (f"; {d['n']} {unit} resolve only large differences: more {more}"
                     + (f" ({options})" if options else "") + " test smaller ones")
    return text + "."
