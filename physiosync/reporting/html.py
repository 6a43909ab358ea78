"""A self-contained HTML page for a cross-validation report.

:func:`render_html` turns the report dictionary written by
:func:`physiosync.evaluation.summary.build_report` (the schema is documented in
``docs/evaluation.md``) into one HTML page; :func:`write_html_report` writes it to disk
atomically. The page needs nothing outside itself: figures are PNG images embedded as
base64 ``data:`` URIs and the style sheet is inline.

This module reads the report and lays out the page; the figures are drawn by the pure
functions of :mod:`physiosync.reporting.figures` (values in, a matplotlib Figure out),
which import matplotlib (and MNE, for the topographic map) only when a page is rendered.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .._logging import logger, verbose
from .._utils import atomic_write
from ..evaluation.statistics import real_or_none as _real
from ..evaluation.summary import METRIC_LABELS as _METRIC_LABELS
from . import figures
from ._page import CSS as _CSS
from ._page import esc as _esc
from ._page import fmt as _fmt
from ._page import fmt_p as _fmt_p
from ._page import mean_std as _mean_std
from ._page import num as _num
from ._page import section as _section
from ._page import skip as _skip
from ._page import table as _table
from .figures import floats as _floats
from .figures import fmt_count as _fmt_count
from .figures import series as _series
from .text import (CHANCE_NOTE, _headline_sentence, _null_name,
                   _one_class_sentence, _pairing_sentence, _table_cells,
                   _table_header, _table_notes, data_sentence, displayable,
                   held_out_sentence,
                   label_efficiency_table, metric_label, model_selection_sentence,
                   pipeline_table)

__all__ = ["render_html", "write_html_report"]

FOOTNOTE = (CHANCE_NOTE + " Per-subject metrics pool the test windows of a subject over "
            "all folds; pooled metrics pool all test windows (or trial votes) of a fold. Standard "
            "deviations are over subjects or folds (ddof = 1).")

_DEFAULT_WARNING = ("LEAKAGE WARNING: this protocol lets windows of the same trial sit in "
                    "both training and test data; its scores are not emotion recognition "
                    "accuracies.")

_LEVEL_ORDER = {"subject": 0, "window": 1, "trial": 2}
#: Up to this many pipelines the per-subject figure groups bars by subject; above, it draws
#: one column of dots per pipeline, which stays readable for a whole baseline suite.
_MAX_GROUPED_BARS = 3


def _subject_key(key):
    """Sort key: integer-like subjects numerically, then the others by name."""
    try:
        return (0, int(str(key)), "")
    except ValueError:
        return (1, 0, str(key))


def _pipelines(report: Mapping) -> dict:
    """``{name: pipeline dict}`` (a validated report holds at least one)."""
    return {str(k): v for k, v in report["pipelines"].items()}


def _primary(report: Mapping, pipes: dict) -> str | None:
    name = report.get("primary")
    if name is not None and str(name) in pipes:
        return str(name)
    return next(iter(pipes), None)


def _per_subject(pipe: Mapping) -> dict:
    """The pipeline's per-subject metrics with the subject keys as strings."""
    return {str(k): v for k, v in (pipe.get("per_subject") or {}).items()}


def _class_names(report: Mapping, k: int) -> list:
    names = report.get("class_names") or []
    if len(names) == k:
        return [str(n) for n in names]
    return [str(i) for i in range(k)]


# --------------------------------------------------------------------------- figures
def _png_uri(fig, dpi: int = 100) -> str:
    """Save ``fig`` as PNG into a ``data:`` URI and release its artists."""
    buf = io.BytesIO()
    try:
        fig.savefig(buf, format="png", dpi=dpi)
    finally:
        fig.clear()
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _figure(fig_id: str, draw, alt: str, caption: str) -> str:
    """Run ``draw()`` (returns a Figure) and wrap the PNG in ``<figure>``.

    A drawing error is logged and reported in the page instead of losing the report.
    """
    try:
        uri = _png_uri(draw())
    except Exception as err:  # noqa: BLE001 - one broken figure must not sink the page
        logger.warning("HTML report: figure %s could not be drawn: %r", fig_id, err)
        return _skip(f"This figure could not be drawn ({type(err).__name__}: {err}).")
    return (f'<figure id="{_esc(fig_id)}"><img src="{uri}" alt="{_esc(alt)}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>")


# --------------------------------------------------------------------------- sections
def _header(report: Mapping, pipes: dict, primary: str | None) -> str:
    from .._version import __version__

    target = report.get("target", "n/a")
    protocol = report.get("protocol", "n/a")
    parts = [f"<h1>physiosync cross-validation: {_esc(target)} ({_esc(protocol)})</h1>"]
    if report.get("leaky"):
        text = report.get("warning") or _DEFAULT_WARNING
        parts.append(f'<div class="warning" role="alert">{_esc(text)}</div>')
    if report.get("caveat"):
        parts.append(f'<div class="caveat" role="note"><strong>Caveat ({_esc(protocol)}):'
                     f"</strong> {_esc(report['caveat'])}</div>")
    meta = [f"physiosync {__version__}"]
    data = data_sentence(report)
    if data:
        meta.append(f"data: {data}")
    n_classes = report.get("n_classes")
    if n_classes is not None:
        meta.append(f"classes: {n_classes}")
    parts.append(f'<p class="meta">{_esc(" · ".join(meta))}</p>')
    if primary is not None:
        n_classes = _num(n_classes) or 2
        pipe = pipes[primary]
        box = [f"<p><strong>Headline ({_esc(primary)}):</strong> "
               f"{_esc(_headline_sentence(pipe))}.</p>"]
        nulls = []
        pv, rn = pipe.get("p_value") or {}, pipe.get("refit_null") or {}
        if "null" in pv and pv.get("metric", "").startswith("subject."):
            nulls.append(f"Permutation null ({_null_name(pv)}, primary): {pv['null']}.")
            for name, q in (pipe.get("p_values") or {}).items():
                if name != _null_name(pv) and "null" in q:
                    nulls.append(f"Also reported, {name} null: {q['null']}.")
        if "definition" in rn:
            nulls.append(f"Refit null: {rn['definition']}.")
        if nulls:
            box.append(f'<p class="null">{_esc(" ".join(nulls))}</p>')
        for name, p in pipes.items():
            one = _one_class_sentence(p)
            if one:
                box.append(f'<p class="one-class"><strong>One-class fallback ({_esc(name)}):'
                           f"</strong> {_esc(one)}</p>")
        parts.append('<div class="headline">' + "".join(box) + "</div>")
    return "\n".join(parts)


def _pipelines_section(report: Mapping, pipes: dict) -> str:
    """One row per pipeline: headline, chance, p-value, paired difference to the primary."""
    title = "Pipelines side by side"
    rows = pipeline_table({**report, "pipelines": pipes})
    refit = any(r["refit_p"] is not None for r in rows)
    table = _table(_table_header(rows, refit=refit) + ["model"],
                   [_table_cells(r, refit=refit) + [r["model"] or ""] for r in rows],
                   "pipelines")
    notes = _table_notes(rows, legacy=bool(report.get("leaky")))
    return _section("sec-pipelines", title, table + "<p>" + _esc(" ".join(notes)) + "</p>")


def _summary_section(pipes: dict, primary: str | None, n_classes: int = 2) -> str:
    blocks = []
    for name, pipe in pipes.items():
        title = f"{name} (primary)" if name == primary else name
        blocks.append(f"<h3>{_esc(title)}</h3>")
        summary = pipe.get("summary") or {}
        if not summary:
            blocks.append(_skip("No summary for this pipeline."))
            continue
        model = pipe.get("model") or {}
        if model.get("text"):
            blocks.append(f"<p>Model: {_esc(model['text'])}.</p>")
        chosen = model_selection_sentence(pipe)
        if chosen:
            blocks.append(f"<p>Hyper-parameters: {_esc(chosen)}</p>")
        held = held_out_sentence(pipe)
        if held:
            blocks.append(f"<p>Pre-training, held out: {_esc(held)}</p>")
        blocks.append(f"<p>Headline: {_esc(_headline_sentence(pipe))}.</p>")
        keys = sorted(summary, key=lambda k: _LEVEL_ORDER.get(str(k).split(".")[0], 3))
        rows = []
        for key in keys:
            s = summary[key]
            unit = "subjects" if str(key).startswith("subject.") else "folds"
            n = _fmt_count(s.get("n"))
            if n != "n/a":
                n = f"{n} {unit if n != '1' else unit[:-1]}"
            rows.append([metric_label(key), key, _mean_std(s.get("mean"), s.get("std")),
                         _fmt(s.get("chance")), n])
        pv = pipe.get("p_value") or {}
        for name_of, q in (pipe.get("p_values") or ({_null_name(pv): pv} if pv
                                                    else {})).items():
            p = q.get("p_value", q.get("value"))
            rows.append([f"{name_of} permutation p ({_fmt_count(q.get('permutations'))} "
                         "permutations)", str(q.get("metric", "n/a")), _fmt_p(p),
                         f"null mean {_fmt(q.get('null_mean'))}", ""])
        rn = pipe.get("refit_null") or {}
        if rn:
            null = _floats(rn.get("null"))
            null = null[np.isfinite(null)]
            rows.append([f"refit null p ({_fmt_count(rn.get('n'))} refits, observed "
                         f"{_fmt(rn.get('observed'))})", str(rn.get("metric", "n/a")),
                         _fmt_p(rn.get("p_value")),
                         f"null mean {_fmt(null.mean() if null.size else None)}", ""])
        blocks.append(_table(["metric", "key", "mean ± std", "chance", "n"], rows, "summary"))
    return _section("sec-summary", "Summary", "\n".join(blocks))


def _chance_value(chance, metric: str):
    """The chance level of *metric* in *chance* (metric -> chance level, or None), or None."""
    return _num((chance or {}).get(metric))


def _per_subject_section(pipes: dict, primary: str | None, n_classes: int = 2) -> str:
    per_subject = {name: _per_subject(p) for name, p in pipes.items()}

    def with_values(metric):
        return [n for n, ps in per_subject.items()
                if any(_num(v.get(metric)) is not None for v in ps.values())]

    metric = "balanced_accuracy" if n_classes == 2 else "macro_f1"
    names = with_values(metric)
    if not names:  # e.g. every subject's test windows hold one class
        metric = "accuracy"
        names = with_values(metric)
    label = _METRIC_LABELS.get(metric, metric)
    title = f"Per-subject {label}"
    if not names:
        return _section("sec-per-subject", "Per-subject scores",
                        _skip("No per-subject scores in this report."))
    subjects = sorted({s for n in names for s in per_subject[n]}, key=_subject_key)
    order = ([primary] if primary in per_subject else []) + list(per_subject)
    flagged = {name: {str(s) for s in (pipes[name].get("one_class") or {}).get("subjects", [])}
               for name in names}

    values = np.array([_floats([per_subject[name].get(s, {}).get(metric) for s in subjects])
                       for name in names])
    chance = {}  # each subject's chance level, from the first pipeline that has one
    for s in subjects:
        for name in order:
            c = _chance_value(per_subject[name].get(s, {}).get("chance"), metric)
            if c is not None:
                chance[s] = c
                break
    draw = figures.per_subject_dots if len(names) > _MAX_GROUPED_BARS else figures.per_subject_bars

    rule = ("1/C, C = classes in the subject's test labels" if metric == "balanced_accuracy"
            else "the majority class of the training labels, scored on the subject's test "
                 "labels" if metric == "accuracy"
            else "the larger of the stratified and the best constant predictor")
    if len(names) > _MAX_GROUPED_BARS:
        caption = (f"{label[0].upper() + label[1:]} of each subject's test windows pooled "
                   "over folds: one column per pipeline, one dot per subject (a grey line "
                   "joins a subject's dots), black bar: the mean over subjects; dashed line: "
                   f"the mean chance level over subjects ({rule}; black dashes: each "
                   "subject's, when they differ). Hollow dots: the subject's test windows "
                   "include constant predictions of a model whose training labels held "
                   "one class.")
        alt = (f"Dot plot of per-subject {label} for {len(names)} pipelines "
               f"({', '.join(names)}) over {len(subjects)} subjects, with chance levels.")
    else:
        caption = (f"{label[0].upper() + label[1:]} of each subject's test windows pooled "
                   "over folds, per pipeline. Black ticks: the chance level of the same "
                   f"metric for that subject ({rule}); dashed line: mean chance over "
                   "subjects. Hatched bars: the subject's test windows include constant "
                   "predictions of a model whose training labels held one class.")
        alt = (f"Grouped bar chart of per-subject {label} for {', '.join(names)} "
               f"over {len(subjects)} subjects, with chance levels.")
    figure = _figure("fig-per-subject",
                     lambda: draw(names, subjects, values, flagged, chance, label), alt, caption)
    return _section("sec-per-subject", title, figure)


def _confusion_matrix(pipe: Mapping) -> np.ndarray | None:
    m = (pipe.get("confusion") or {}).get("window")
    if not m:
        return None
    return np.array([_floats(row) for row in m], dtype=float)  # validated: square


def _confusion_section(report: Mapping, pipes: dict) -> str:
    mats = [(n, m) for n, p in pipes.items() if (m := _confusion_matrix(p)) is not None]
    title = "Confusion matrices"
    if not mats:
        return _section("sec-confusion", title, _skip("No confusion matrices in this report."))


    caption = ("Window-level confusion matrices summed over test folds (rows: true class, "
               "columns: predicted class). Colour: fraction of each true class; text: counts.")
    alt = f"Confusion matrices for {', '.join(n for n, _ in mats)}."
    return _section("sec-confusion", title, _figure("fig-confusion",
                                           lambda: figures.confusion_figure(
                                               mats, lambda k: _class_names(report, k)),
                                           alt, caption))


def _collect_curves(pipes: dict):
    """Pre-training ``[(label, [(x, y)])]`` and fine-tuning ``[(name, [(x, y_tr, y_va)])]``."""
    pre, fine = [], []
    for name, pipe in pipes.items():
        curves = pipe.get("curves") or {}
        pretrain = curves.get("pretrain")
        # by encoder kind; early reports recorded one list of runs
        groups = (pretrain.items() if isinstance(pretrain, Mapping)
                  else [("", pretrain)] if pretrain is not None else [])
        for kind, entries in groups:
            lines = [s for e in entries if (s := _series(e, "step", "loss")) is not None]
            if lines:
                pre.append((f"{name} ({kind})" if kind else name, lines))
        lines = []
        for e in curves.get("finetune") or []:
            tr, va = _series(e, "epoch", "train_loss"), _series(e, "epoch", "val_loss")
            if tr is not None or va is not None:
                lines.append((tr, va))
        if lines:
            fine.append((name, lines))
    return pre, fine


def _pretrain_by_kind(pipe: Mapping) -> Mapping:
    """The pipeline's pre-training runs by encoder kind (none in an early report's list)."""
    pretrain = (pipe.get("curves") or {}).get("pretrain")
    return pretrain if isinstance(pretrain, Mapping) else {}


def _collect_held_out(pipes: dict):
    """``(measured, notes)``: ``[(label, held_out entry)]`` of the pre-training runs whose
    held-out diagnostic has points, and the distinct ``cells`` texts of those without."""
    measured, notes = [], []
    for name, pipe in pipes.items():
        for kind, entries in _pretrain_by_kind(pipe).items():
            for e in entries:
                held = e.get("held_out") or {}
                if _series(held, "step", "loss") is not None:
                    measured.append((f"{name} ({kind})", held))
                elif "cells" in held and held["cells"] not in notes:
                    notes.append(held["cells"])
    return measured, notes


def _curves_section(pipes: dict) -> str:
    pre, fine = _collect_curves(pipes)
    # Loss of a collapsed encoder (every embedding the same) recorded with the
    # pre-training curves: one reference line per distinct value.
    collapsed = sorted({round(v, 6) for pipe in pipes.values()
                        for entries in _pretrain_by_kind(pipe).values()
                        for e in entries if (v := _num(e.get("collapsed"))) is not None})
    held, held_notes = _collect_held_out(pipes)
    title = "Training curves"
    if not pre and not fine:
        return _section("sec-curves", title, _skip(
            "No pipeline recorded training curves (baselines such as band power have none)."))


    parts = []
    if pre:
        parts.append("(a) pre-training loss per step on the training batches, one line per "
                     "fold and window length (long runs: faint per-step values under a "
                     "moving average)"
                     + ("; dashed grey: the loss of a collapsed encoder (all embeddings "
                        "equal). A training loss below it is no evidence of learning: an "
                        "encoder can memorise its training windows (see (c) and (d))"
                        if collapsed else ""))
    if fine:
        parts.append("(b) fine-tuning loss per epoch, one thin line per fold (and subject); "
                     "solid: training, dashed: validation")
    if held:
        parts.append("(c) pre-training loss on held-out cells the encoder never trains on "
                     f"({held[0][1].get('cells', 'held-out cells')}), with, in the run's "
                     "colour, the collapsed level (dashed) and a random encoder's (dotted: "
                     "the initial weights on the same batches); (d) top-1 retrieval of the "
                     "true partner per contrastive term on those cells, chance dashed grey. "
                     "Learning shows as held-out loss below the random encoder and "
                     "retrieval above chance")
    elif held_notes:
        parts.append("no held-out diagnostic of pre-training: " + "; ".join(held_notes))
    caption = "; ".join(parts) + "."
    alt = "Loss curves: " + caption
    return _section("sec-curves", title, _figure("fig-curves",
                                        lambda: figures.curves_figure(pre, fine, collapsed, held),
                                        alt, caption))


def _importance(pipe: Mapping):
    """``(channels, values, method)`` with finite values and unique names, or None."""
    ci = pipe.get("channel_importance")
    if not isinstance(ci, Mapping):  # none, or the bare list of an early report
        return None
    channels, values = ci.get("channels") or [], ci.get("values") or []
    if not channels or len(channels) != len(values):
        return None
    chans, vals, seen = [], [], set()
    for ch, v in zip(channels, values):
        v = _num(v)
        if v is None or str(ch) in seen:
            continue
        seen.add(str(ch))
        chans.append(str(ch))
        vals.append(v)
    if not chans:
        return None
    return chans, np.asarray(vals, dtype=float), str(ci.get("method") or "importance")


def _topomap_section(pipes: dict) -> str:
    items = [(n, imp) for n, p in pipes.items() if (imp := _importance(p)) is not None]
    title = "EEG channel importance"
    if not items:
        return _section("sec-topomap", title,
                        _skip("No pipeline reports EEG channel importance."))


    caption = ("EEG channel importance per pipeline on the standard 10-20 layout (channels "
               "without a standard position are left out; bars are shown when fewer than "
               "three channels have one). The method is named above each map.")
    alt = f"Scalp maps of EEG channel importance for {', '.join(n for n, _ in items)}."
    return _section("sec-topomap", title, _figure("fig-topomap",
                                                  lambda: figures.topomap_figure(items), alt,
                                                  caption))


def _comparisons_section(report: Mapping) -> str:
    comps = report.get("comparisons") or []
    title = "Paired comparisons"
    if not comps:
        return _section("sec-comparisons", title,
                        _skip("No paired comparisons in this report."))
    rows = []
    for c in comps:
        ci = c.get("ci95") or [None, None]
        diff = _fmt(c.get("mean")) if _num(c.get("mean")) is None else (
            f"{_fmt(c.get('mean'))} [{_fmt(ci[0])}, {_fmt(ci[1])}]")
        flip = c.get("sign_flip") or {"p_value": c.get("p_value"),
                                             "min_p": c.get("min_p")}
        rows.append([f"{c.get('pipeline', '?')} − {c.get('baseline', '?')}",
                     str(c.get("metric", "n/a")), str(c.get("level", "n/a")),
                     _fmt_count(c.get("n")), diff, _fmt(c.get("std")),
                     _fmt(c.get("cohens_dz"), 2),
                     f"{_fmt_p(c.get('p_value'))} ({c.get('primary_test') or 'sign-flip'})",
                     _fmt_p(_real(c.get("p_value_holm"))),
                     _fmt_p(flip.get("p_value")), _fmt_p(flip.get("min_p")),
                     _fmt_p((c.get("corrected_t") or {}).get("p_value")),
                     str(c.get("test") or "n/a")])
    body = [_table(["pipeline − baseline", "metric", "paired by", "n",
                    "mean difference [95 % CI]", "std", "d_z", "p (primary test)", "Holm p",
                    "sign-flip p", "min p", "corrected t p", "primary test"], rows,
                   "comparisons")]
    for c in comps:
        body.append(f"<p>{_esc(c.get('pipeline', '?'))} − {_esc(c.get('baseline', '?'))}: "
                    f"{_esc(_pairing_sentence(c))}</p>")
    body.append("<p>" + _esc(
        "By subject, the primary test is the two-sided sign-flip permutation test of the "
        "mean difference, with a studentised bootstrap interval; by fold, the corrected "
        "resampled t-test of Nadeau and Bengio (2003), with the interval of the same "
        "corrected variance (folds share training data, which the sign-flip test ignores: "
        "it is shown for reference). Min p: the smallest p-value the sign-flip test can "
        "reach (zero differences do not count); d_z: mean / std of the differences.")
        + "</p>")
    for family in sorted({str(c["holm_family"]) for c in comps if c.get("holm_family")}):
        body.append(f"<p>{_esc('Holm p: the primary test p adjusted over ' + family)}.</p>")
    for c in comps:
        if c.get("warning"):
            body.append(f'<p class="caveat"><strong>Warning ({_esc(c.get("pipeline", "?"))} − '
                        f'{_esc(c.get("baseline", "?"))}):</strong> {_esc(c["warning"])}</p>')

    strips = []
    for c in comps:
        diffs = c.get("differences") or {}
        values = [v for _, v in sorted(((k, _num(d)) for k, d in diffs.items()),
                                       key=lambda kv: _subject_key(kv[0]))
                  if v is not None]
        if values:
            label = (f"{c.get('pipeline', '?')} − {c.get('baseline', '?')}\n"
                     f"{c.get('metric', '')} ({c.get('level', '')})")
            ci = [_num(x) for x in c.get("ci95") or []]
            strips.append((label, np.asarray(values),
                           ci if len(ci) == 2 and None not in ci else None))


    if strips:
        caption = ("Per-unit differences (pipeline minus baseline; one dot per subject or "
                   "fold) with their mean (black bar), its 95 % interval (vertical "
                   "line, right) and the zero line.")
        alt = f"Dot plot of per-unit differences for {len(strips)} paired comparison(s)."
        body.append(_figure("fig-comparisons", lambda: figures.comparisons_figure(strips), alt,
                            caption))
    else:
        body.append(_skip("The comparisons carry no per-unit differences to plot."))
    return _section("sec-comparisons", title, "\n".join(body))


def _label_efficiency_section(report: Mapping) -> str:
    """The label-efficiency curves (headline against budget) and the areas' table."""
    sec = report["label_efficiency"]
    curves = sec.get("curves") or {}
    budgets = [str(b) for b in sec.get("budgets") or []]
    t = label_efficiency_table(sec)
    body = [f"<p>{_esc(t['intro'])}</p>", _table(t["header"], t["rows"], "label-efficiency")]
    body += [f"<p>{_esc(note)}</p>" for note in t["notes"]]


    mean_ci = {name: (np.array([_num(p.get("mean")) or np.nan for p in points], dtype=float),
                      np.array([[(_num(c) if _num(c) is not None else np.nan)
                                 for c in ([*(p.get("ci95") or [])] + [None, None])[:2]]
                                for p in points], dtype=float))
               for name, points in curves.items()}
    chance = [_num(p.get("chance")) for pts in curves.values() for p in pts]
    chance = [c for c in chance if c is not None]
    ylabel = metric_label(sec.get("metric") or "subject.balanced_accuracy")
    body.append(_figure("fig-label-efficiency",
                        lambda: figures.label_efficiency_figure(budgets, mean_ci, chance, ylabel),
                        f"Label-efficiency curves of {len(curves)} pipeline(s).",
                        "Per-subject headline (mean over subjects) at each label budget, with "
                        "its 95 % interval (band) and the chance level (dashed)."))
    return _section("sec-label-efficiency", "Label efficiency", "\n".join(body))


def _folds_section(pipes: dict, primary: str | None, n_classes: int = 2) -> str:
    title = f"Folds of {primary}" if primary else "Folds"
    folds = pipes[primary]["folds"]
    if not folds:
        return _section("sec-folds", title, _skip("No per-fold results in this report."))
    metric = "balanced_accuracy" if n_classes == 2 else "macro_f1"
    label = _METRIC_LABELS[metric]

    def size(units) -> str:
        return "n/a" if units is None else str(len(units))

    rows = []
    for i, f in enumerate(folds):
        metrics, chance = f["metrics"], f.get("chance") or {}
        fold = f.get("fold", i)
        rows.append([_fmt_count(fold) if _num(fold) is not None else str(fold),
                     size(f.get("train")), size(f.get("val")), size(f.get("test")),
                     _fmt((metrics.get("subject") or {}).get(metric)),
                     _fmt(_chance_value(chance.get("subject"), metric)),
                     _fmt((metrics.get("window") or {}).get(metric)),
                     _fmt(_chance_value(chance.get("window"), metric)),
                     _fmt((metrics.get("trial") or {}).get("accuracy")),
                     _fmt(_chance_value(chance.get("trial"), "accuracy")),
                     _fmt_count(f.get("one_class_windows"))])
    header = ["fold", "n train", "n val", "n test", f"per-subject {label}", "chance",
              f"pooled window {label}", "chance", "pooled trial accuracy", "chance",
              "one-class windows"]
    note = (f"<p>Units are (subject, trial) pairs. Per-subject {_esc(label)}: the mean over "
            "the fold's test subjects; pooled: all test windows (or trial votes) of the fold "
            "together. Each chance column belongs to the metric on its left.</p>")
    return _section("sec-folds", title, note + _table(header, rows, "folds"))


def _plain(x):
    """A copy of ``x`` that :func:`yaml.safe_dump` accepts."""
    if isinstance(x, Mapping):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set, frozenset)):
        return [_plain(v) for v in x]
    if x is None or isinstance(x, (bool, int, float, str)):
        return x
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


def _config_section(report: Mapping) -> str:
    import yaml

    text = yaml.safe_dump(_plain(report.get("config") or {}), sort_keys=False,
                          allow_unicode=True, default_flow_style=False)
    return _section("sec-config", "Configuration",
                    f"<details><summary>Resolved configuration (YAML)</summary>"
                    f"<pre>{_esc(text)}</pre></details>")


# --------------------------------------------------------------------------- public API
@verbose
def render_html(report: Mapping, *, verbose: bool | str | int | None = None) -> str:
    """Render a cross-validation report as one self-contained HTML page.

    Parameters
    ----------
    report : Mapping
        The report dictionary of ``physiosync.evaluation.summary.build_report()`` (or its JSON
        round trip, where subject keys are strings), migrated and validated
        (:func:`~physiosync.evaluation.schema.validate_report`). Optional parts
        (``confusion``, ``curves``, ``channel_importance``, ``comparisons``, ...) may be
        missing; their sections then say so in one sentence. NaN and None values
        show as ``n/a``.
    %(verbose)s
        A figure that cannot be drawn is logged as a warning (``"error"`` hides it).

    Returns
    -------
    str
        The HTML text: title and, for leaky protocols, a red warning box; the
        protocol's caveat; the headline of the primary pipeline (per-subject balanced
        accuracy, or macro F1 for four classes, with its chance level, permutation
        p-values and one-class fallbacks); one table with a row per pipeline (the
        headline, its chance level and permutation p-value, the paired difference to
        the primary pipeline with its interval and p-value); a summary table per
        pipeline with a chance level beside every metric; the per-subject headline
        metric (grouped bars, or one column of dots per pipeline above three), confusion
        matrices, training curves, EEG channel importance and paired comparisons (with
        effect sizes, intervals and the smallest reachable p-value) as embedded PNG
        figures and tables; the per-fold table of the primary pipeline; the
        configuration as YAML; a footnote.

    Raises
    ------
    TypeError
        If ``report`` is not a mapping.
    DataFormatError
        If a field has the wrong type, or a required one is missing (one line naming
        the field's path), or the report is of a later schema version.
    """
    if not isinstance(report, Mapping):
        raise TypeError(f"report must be a dict, not {type(report).__name__}")
    report = displayable(dict(report))
    pipes = _pipelines(report)
    primary = _primary(report, pipes)
    title = (f"physiosync cross-validation: {report.get('target', 'n/a')} "
             f"({report.get('protocol', 'n/a')})")
    n_classes = int(_num(report.get("n_classes")) or 2)
    body = [
        _header(report, pipes, primary),
        _pipelines_section(report, pipes),
        _summary_section(pipes, primary, n_classes),
        _per_subject_section(pipes, primary, n_classes),
        _confusion_section(report, pipes),
        _curves_section(pipes),
        _topomap_section(pipes),
        _comparisons_section(report),
        *([_label_efficiency_section(report)]
          if report.get("label_efficiency") is not None else []),
        _folds_section(pipes, primary, n_classes),
        _config_section(report),
        f"<footer><p>{_esc(FOOTNOTE)}</p></footer>",
    ]
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_esc(title)}</title>\n<style>\n{_CSS}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


@verbose
def write_html_report(report: Mapping, path, *, verbose: bool | str | int | None = None) -> Path:
    """Write the HTML page of a cross-validation report, atomically.

    The page is written to a temporary file in the destination folder, flushed to disk
    and moved over ``path``, so readers never see a half-written file.

    Parameters
    ----------
    report : Mapping
        The report dictionary; see :func:`render_html`.
    path : str | os.PathLike
        The HTML file to write. Missing parent folders are created; an existing file is
        replaced.
    %(verbose)s
        A figure that cannot be drawn is logged as a warning (``"error"`` hides it).

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    IsADirectoryError
        If ``path`` is an existing folder.
    """
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the path of the HTML file")
    text = render_html(report)
    path.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write(path, text)
