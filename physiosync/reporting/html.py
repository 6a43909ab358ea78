"""A self-contained HTML page for a cross-validation report.

:func:`render_html` turns the report dictionary written by
:func:`physiosync.evaluation.summary.build_report` (the schema is documented in
``docs/evaluation.md``) into one HTML page; :func:`write_html_report` writes it to disk
atomically. The page needs nothing outside itself: figures are PNG images embedded as
base64 ``data:`` URIs and the style sheet is inline.

matplotlib (and MNE, for the topographic map) are imported only when a page is
rendered. Figures are drawn with the object API (:class:`matplotlib.figure.Figure` on an
Agg canvas), so rendering neither opens pyplot windows nor changes the user's backend.
"""

from __future__ import annotations

import base64
import html
import io
import math
import textwrap
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .._logging import logger, verbose
from .._utils import atomic_write
from ..evaluation.summary import METRIC_LABELS as _METRIC_LABELS
from ..evaluation.summary import _chance_of, _real
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

_CSS = """\
body{font-family:system-ui,-apple-system,"Segoe UI",Helvetica,Arial,sans-serif;
 max-width:1150px;margin:1.5em auto;padding:0 1em;color:#222;line-height:1.45}
h1{font-size:1.55em;margin-bottom:.3em}
h2{font-size:1.25em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.15em}
h3{font-size:1.05em;margin-bottom:.3em}
.meta{color:#555;margin-top:0}
.warning{border:3px solid #c00;background:#fdeaea;color:#800;padding:.8em 1em;
 font-weight:bold;margin:1em 0}
table{border-collapse:collapse;margin:.4em 0 1em;font-size:.93em}
th,td{border:1px solid #ccc;padding:.25em .65em;text-align:right}
th:first-child,td:first-child{text-align:left}
thead th{background:#f2f2f2}
figure{margin:1em 0}
img{max-width:100%;height:auto}
figcaption{font-size:.9em;color:#555}
.skip{color:#666;font-style:italic}
pre{background:#f6f6f6;padding:.8em;overflow:auto;font-size:.85em}
footer{font-size:.85em;color:#555;border-top:1px solid #ddd;margin-top:2em;padding-top:.5em}
.caveat{border:2px solid #d98c00;background:#fff6e0;color:#5a3b00;padding:.6em 1em;margin:1em 0}
.headline{border:1px solid #888;background:#f4f8fc;padding:.2em 1em;margin:1em 0}
.headline .null{font-size:.9em;color:#444}
.headline .one-class{color:#7a4b00}
"""

_LEVEL_ORDER = {"subject": 0, "window": 1, "trial": 2}
#: Up to this many pipelines the per-subject figure groups bars by subject; above, it draws
#: one column of dots per pipeline, which stays readable for a whole baseline suite.
_MAX_GROUPED_BARS = 3


# --------------------------------------------------------------------------- helpers
def _esc(text) -> str:
    return html.escape(str(text), quote=True)


#: ``float(x)`` when ``x`` is a finite real number, else None.
_num = _real


def _fmt(x, digits: int = 3) -> str:
    v = _num(x)
    return "n/a" if v is None else f"{v:.{digits}f}"


def _fmt_count(x) -> str:
    v = _num(x)
    if v is None:
        return "n/a"
    return str(int(v)) if v.is_integer() else f"{v:.3g}"


def _fmt_p(p) -> str:
    v = _num(p)
    if v is None:
        return "n/a"
    return "< 0.001" if v < 0.001 else f"{v:.3g}"


def _mean_std(mean, std) -> str:
    if _num(mean) is None:
        return "n/a"
    return f"{_fmt(mean)} ± {_fmt(std)}"


def _dict(x) -> dict:
    return x if isinstance(x, Mapping) else {}


def _list(x) -> list:
    return x if isinstance(x, (list, tuple)) else []


def _subject_key(key):
    """Sort key: integer-like subjects numerically, then the others by name."""
    try:
        return (0, int(str(key)), "")
    except ValueError:
        return (1, 0, str(key))


def _floats(values) -> np.ndarray:
    """A float array with None and non-numbers as NaN."""
    out = [_num(v) for v in _list(values)]
    return np.array([np.nan if v is None else v for v in out], dtype=float)


def _pipelines(report: Mapping) -> dict:
    """``{name: pipeline dict}``, empty for a report without ``pipelines``."""
    return {str(k): _dict(v) for k, v in _dict(report.get("pipelines")).items()}


def _primary(report: Mapping, pipes: dict) -> str | None:
    name = report.get("primary")
    if name is not None and str(name) in pipes:
        return str(name)
    return next(iter(pipes), None)


def _per_subject(pipe: Mapping) -> dict:
    """The pipeline's per-subject metrics with the subject keys as strings."""
    return {str(k): _dict(v) for k, v in _dict(pipe.get("per_subject")).items()}


def _class_names(report: Mapping, k: int) -> list:
    names = _list(report.get("class_names"))
    if len(names) == k:
        return [str(n) for n in names]
    return [str(i) for i in range(k)]


def _skip(sentence: str) -> str:
    return f'<p class="skip">{_esc(sentence)}</p>'


def _table(header: list, rows: list, cls: str | None = None) -> str:
    attr = f' class="{_esc(cls)}"' if cls else ""
    head = "".join(f"<th>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>"
                   for row in rows)
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _section(sec_id: str, title: str, body: str) -> str:
    return f'<section id="{_esc(sec_id)}">\n<h2>{_esc(title)}</h2>\n{body}\n</section>'


# --------------------------------------------------------------------------- figures
def _new_figure(width: float, height: float):
    """A matplotlib Figure on its own Agg canvas (pyplot is never involved)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


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
               f"{_esc(_headline_sentence(pipe, int(n_classes)))}.</p>"]
        nulls = []
        pv, rn = _dict(pipe.get("p_value")), _dict(pipe.get("refit_null"))
        if isinstance(pv.get("null"), str) and str(pv.get("metric", "")).startswith("subject."):
            nulls.append(f"Permutation null ({_null_name(pv)}, primary): {pv['null']}.")
            for name, q in _dict(pipe.get("p_values")).items():
                if name != _null_name(pv) and isinstance(_dict(q).get("null"), str):
                    nulls.append(f"Also reported, {name} null: {q['null']}.")
        if isinstance(rn.get("definition"), str):
            nulls.append(f"Refit null: {rn['definition']}.")
        if nulls:
            box.append(f'<p class="null">{_esc(" ".join(nulls))}</p>')
        for name, p in pipes.items():
            one = _one_class_sentence(p, int(n_classes))
            if one:
                box.append(f'<p class="one-class"><strong>One-class fallback ({_esc(name)}):'
                           f"</strong> {_esc(one)}</p>")
        parts.append('<div class="headline">' + "".join(box) + "</div>")
    return "\n".join(parts)


def _pipelines_section(report: Mapping, pipes: dict) -> str:
    """One row per pipeline: headline, chance, p-value, paired difference to the primary."""
    title = "Pipelines side by side"
    if not pipes:
        return _section("sec-pipelines", title, _skip("The report holds no pipeline."))
    rows = pipeline_table({**report, "pipelines": pipes})
    refit = any(r["refit_p"] is not None for r in rows)
    table = _table(_table_header(rows, refit=refit) + ["model"],
                   [_table_cells(r, refit=refit) + [r["model"] or ""] for r in rows],
                   "pipelines")
    notes = _table_notes(rows, legacy=bool(report.get("leaky")))
    return _section("sec-pipelines", title, table + "<p>" + _esc(" ".join(notes)) + "</p>")


def _summary_section(pipes: dict, primary: str | None, n_classes: int = 2) -> str:
    if not pipes:
        return _section("sec-summary", "Summary", _skip("The report holds no pipeline."))
    blocks = []
    for name, pipe in pipes.items():
        title = f"{name} (primary)" if name == primary else name
        blocks.append(f"<h3>{_esc(title)}</h3>")
        summary = _dict(pipe.get("summary"))
        if not summary:
            blocks.append(_skip("No summary for this pipeline."))
            continue
        model = _dict(pipe.get("model"))
        if model.get("text"):
            blocks.append(f"<p>Model: {_esc(model['text'])}.</p>")
        chosen = model_selection_sentence(pipe)
        if chosen:
            blocks.append(f"<p>Hyper-parameters: {_esc(chosen)}</p>")
        held = held_out_sentence(pipe)
        if held:
            blocks.append(f"<p>Pre-training, held out: {_esc(held)}</p>")
        blocks.append(f"<p>Headline: {_esc(_headline_sentence(pipe, n_classes))}.</p>")
        keys = sorted(summary, key=lambda k: _LEVEL_ORDER.get(str(k).split(".")[0], 3))
        rows = []
        for key in keys:
            s = _dict(summary[key])
            unit = "subjects" if str(key).startswith("subject.") else "folds"
            n = _fmt_count(s.get("n"))
            if n != "n/a":
                n = f"{n} {unit if n != '1' else unit[:-1]}"
            rows.append([metric_label(key), key, _mean_std(s.get("mean"), s.get("std")),
                         _fmt(s.get("chance")), n])
        pv = _dict(pipe.get("p_value"))
        for name_of, q in (_dict(pipe.get("p_values")) or ({_null_name(pv): pv} if pv
                                                           else {})).items():
            q = _dict(q)
            p = q.get("p_value", q.get("value"))
            rows.append([f"{name_of} permutation p ({_fmt_count(q.get('permutations'))} "
                         "permutations)", str(q.get("metric", "n/a")), _fmt_p(p),
                         f"null mean {_fmt(q.get('null_mean'))}", ""])
        rn = _dict(pipe.get("refit_null"))
        if rn:
            null = _floats(rn.get("null"))
            null = null[np.isfinite(null)]
            rows.append([f"refit null p ({_fmt_count(rn.get('n'))} refits, observed "
                         f"{_fmt(rn.get('observed'))})", str(rn.get("metric", "n/a")),
                         _fmt_p(rn.get("p_value")),
                         f"null mean {_fmt(null.mean() if null.size else None)}", ""])
        blocks.append(_table(["metric", "key", "mean ± std", "chance", "n"], rows, "summary"))
    return _section("sec-summary", "Summary", "\n".join(blocks))


def _chance_value(entry: Mapping, metric: str):
    """Chance level of *metric* in a per-subject entry or fold; older reports held one
    number (the test majority), which belongs to accuracy only."""
    chance = entry.get("chance")
    if isinstance(chance, Mapping):
        return _num(chance.get(metric))
    return _num(chance) if metric == "accuracy" else None


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
    flagged = {name: {str(s) for s in _list(_dict(pipes[name].get("one_class")).get("subjects"))}
               for name in names}

    def chance_by_subject():
        """Each subject's chance level, from the first pipeline that has one."""
        out = {}
        for s in subjects:
            for name in order:
                c = _chance_value(per_subject[name].get(s, {}), metric)
                if c is not None:
                    out[s] = c
                    break
        return out

    def draw_dots():
        """Pipelines on the x axis, one dot per subject: readable with ten pipelines."""
        from matplotlib.lines import Line2D

        n_s, n_p = len(subjects), len(names)
        fig = _new_figure(min(max(6.5, 1.5 + 0.8 * n_p), 24.0), 4.4)
        ax = fig.add_subplot()
        # a subject keeps its horizontal offset in every column, so a line joins its dots
        offsets = np.linspace(-0.28, 0.28, n_s) if n_s > 1 else np.zeros(1)
        values = np.array([_floats([per_subject[name].get(s, {}).get(metric)
                                    for s in subjects]) for name in names])
        xs = np.arange(n_p)[:, None] + offsets[None, :]
        for i in range(n_s):
            ax.plot(xs[:, i], values[:, i], color="0.6", linewidth=0.6, alpha=0.5, zorder=1)
        for j, name in enumerate(names):
            hollow = np.array([s in flagged[name] for s in subjects])
            color = f"C{j % 10}"
            for mask, face in ((~hollow, color), (hollow, "none")):
                ax.scatter(xs[j, mask], values[j, mask], s=22, facecolors=face,
                           edgecolors=color, linewidths=1.0, zorder=3)
            if np.isfinite(values[j]).any():
                ax.hlines(np.nanmean(values[j]), j - 0.36, j + 0.36, colors="black",
                          linewidth=2.2, zorder=4)
        handles = [Line2D([], [], color="black", linewidth=2.2, label="mean over subjects")]
        chance = chance_by_subject()
        if chance:
            cy = np.array([chance.get(s, np.nan) for s in subjects])
            if np.nanmax(cy) - np.nanmin(cy) > 1e-9:  # chance differs between subjects
                ax.scatter(xs.ravel(), np.tile(cy, n_p), marker="_", s=40, color="black",
                           linewidths=1.0, zorder=2)
                handles.append(Line2D([], [], color="black", marker="_", linestyle="none",
                                      label=f"chance of {label} (subject)"))
            mean_chance = float(np.nanmean(cy))
            ax.axhline(mean_chance, color="0.35", linestyle="--", linewidth=1, zorder=0)
            handles.append(Line2D([], [], color="0.35", linestyle="--",
                                  label=f"mean chance ({mean_chance:.2f})"))
        if any(flagged.values()):
            handles.append(Line2D([], [], marker="o", linestyle="none", markerfacecolor="none",
                                  markeredgecolor="black",
                                  label="includes one-class\nfallback predictions"))
        rotate = n_p > 5 or max(len(n) for n in names) > 12
        ax.set_xticks(range(n_p), names, rotation=30 if rotate else 0,
                      ha="right" if rotate else "center")
        ax.set_xlim(-0.6, n_p - 0.4)
        ax.set_ylim(0, 1)
        ax.set_ylabel(f"{label} (subject)")
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  fontsize="small")
        return fig

    def draw():
        from matplotlib.patches import Patch

        n_s, n_p = len(subjects), len(names)
        if n_p > _MAX_GROUPED_BARS:
            return draw_dots()
        fig = _new_figure(min(max(6.5, 2.5 + n_s * (0.3 + 0.15 * n_p)), 24.0), 3.9)
        ax = fig.add_subplot()
        width = 0.8 / n_p
        for j, name in enumerate(names):
            labelled = False
            for hatch in (None, "//"):  # plain bars, then subjects with one-class fallbacks
                xs, ys = [], []
                for i, s in enumerate(subjects):
                    v = _num(per_subject[name].get(s, {}).get(metric))
                    if v is not None and (s in flagged[name]) == (hatch is not None):
                        xs.append(i - 0.4 + width * (j + 0.5))
                        ys.append(v)
                if xs:
                    ax.bar(xs, ys, width=width, color=f"C{j % 10}", hatch=hatch,
                           edgecolor="black" if hatch else None, linewidth=0.5 if hatch else 0,
                           label="_nolegend_" if labelled else name)
                    labelled = True
        cx, cy = [], []
        for i, s in enumerate(subjects):
            for name in order:
                c = _chance_value(per_subject[name].get(s, {}), metric)
                if c is not None:
                    cx.append(i)
                    cy.append(c)
                    break
        if cy:
            cx_arr = np.asarray(cx, dtype=float)
            ax.hlines(cy, cx_arr - 0.45, cx_arr + 0.45, colors="black", linewidth=1.6,
                      label=f"chance of {label} (subject)")
            mean_chance = float(np.mean(cy))
            ax.axhline(mean_chance, color="0.35", linestyle="--", linewidth=1,
                       label=f"mean chance ({mean_chance:.2f})")
        handles, labels = ax.get_legend_handles_labels()
        if any(flagged.values()):
            handles.append(Patch(facecolor="white", edgecolor="black", hatch="//"))
            labels.append("includes one-class\nfallback predictions")
        ax.set_xticks(range(n_s), [str(s) for s in subjects])
        ax.set_xlim(-0.6, n_s - 0.4)
        ax.set_ylim(0, 1)
        ax.set_xlabel("subject")
        ax.set_ylabel(f"{label} (subject)")
        ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  fontsize="small")
        return fig

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
    return _section("sec-per-subject", title, _figure("fig-per-subject", draw, alt, caption))


def _confusion_matrix(pipe: Mapping) -> np.ndarray | None:
    m = _dict(pipe.get("confusion")).get("window")
    if not isinstance(m, (list, tuple)) or not m:
        return None
    try:
        arr = np.array([_floats(row) for row in m], dtype=float)
    except ValueError:  # ragged rows
        return None
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.size == 0:
        return None
    return arr


def _confusion_section(report: Mapping, pipes: dict) -> str:
    mats = [(n, m) for n, p in pipes.items() if (m := _confusion_matrix(p)) is not None]
    title = "Confusion matrices"
    if not mats:
        return _section("sec-confusion", title, _skip("No confusion matrices in this report."))

    def draw():
        ncols = min(len(mats), 3)
        nrows = math.ceil(len(mats) / ncols)
        k_max = max(m.shape[0] for _, m in mats)
        side = max(3.0, 0.75 * k_max + 1.8)
        fig = _new_figure(side * ncols + 0.8, side * nrows)
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        im = None
        for ax, (name, m) in zip(axes, mats):
            k = m.shape[0]
            totals = np.nansum(m, axis=1, keepdims=True)
            norm = np.divide(np.nan_to_num(m), totals, out=np.zeros_like(m),
                             where=totals > 0)
            im = ax.imshow(norm, vmin=0.0, vmax=1.0, cmap="Blues")
            for i in range(k):
                for j in range(k):
                    count = _fmt_count(m[i, j])
                    text = count if count == "n/a" else f"{count}\n{norm[i, j]:.0%}"
                    ax.text(j, i, text, ha="center", va="center", fontsize="small",
                            color="white" if norm[i, j] > 0.5 else "black")
            labels = _class_names(report, k)
            ax.set_xticks(range(k), labels, rotation=30 if k > 2 else 0)
            ax.set_yticks(range(k), labels)
            ax.set_xlabel("predicted")
            ax.set_ylabel("true")
            ax.set_title(name)
        for ax in axes[len(mats):]:
            ax.set_axis_off()
        fig.colorbar(im, ax=list(axes[:len(mats)]), shrink=0.8, label="fraction of true class")
        return fig

    caption = ("Window-level confusion matrices summed over test folds (rows: true class, "
               "columns: predicted class). Colour: fraction of each true class; text: counts.")
    alt = f"Confusion matrices for {', '.join(n for n, _ in mats)}."
    return _section("sec-confusion", title, _figure("fig-confusion", draw, alt, caption))


def _series(entry: Mapping, x_key: str, y_key: str):
    """``(x, y)`` float arrays of a curve, or None when ``y`` has no finite value."""
    y = _floats(entry.get(y_key))
    if not np.isfinite(y).any():
        return None
    x = _floats(entry.get(x_key))
    if len(x) != len(y):  # missing or inconsistent x: number the points
        x = np.arange(len(y), dtype=float)
    return x, y


def _collect_curves(pipes: dict):
    """Pre-training ``[(label, [(x, y)])]`` and fine-tuning ``[(name, [(x, y_tr, y_va)])]``."""
    pre, fine = [], []
    for name, pipe in pipes.items():
        curves = _dict(pipe.get("curves"))
        pretrain = curves.get("pretrain")
        groups = (pretrain.items() if isinstance(pretrain, Mapping)
                  else [("", pretrain)] if isinstance(pretrain, (list, tuple)) else [])
        for kind, entries in groups:
            lines = [s for e in _list(entries) if isinstance(e, Mapping)
                     and (s := _series(e, "step", "loss")) is not None]
            if lines:
                pre.append((f"{name} ({kind})" if kind else name, lines))
        lines = []
        for e in _list(curves.get("finetune")):
            if not isinstance(e, Mapping):
                continue
            tr, va = _series(e, "epoch", "train_loss"), _series(e, "epoch", "val_loss")
            if tr is not None or va is not None:
                lines.append((tr, va))
        if lines:
            fine.append((name, lines))
    return pre, fine


def _collect_held_out(pipes: dict):
    """``(measured, notes)``: ``[(label, held_out entry)]`` of the pre-training runs whose
    held-out diagnostic has points, and the distinct ``cells`` texts of those without."""
    measured, notes = [], []
    for name, pipe in pipes.items():
        for kind, entries in _dict(_dict(pipe.get("curves")).get("pretrain")).items():
            for e in _list(entries):
                held = _dict(_dict(e).get("held_out"))
                if _series(held, "step", "loss") is not None:
                    measured.append((f"{name} ({kind})", held))
                elif isinstance(held.get("cells"), str) and held["cells"] not in notes:
                    notes.append(held["cells"])
    return measured, notes


def _draw_held_out(ax_loss, ax_acc, held: list) -> None:
    """Held-out loss (with its collapsed and random-encoder levels) and retrieval
    accuracies (with chance), one colour per run label, one line per fold."""
    colours = {label: f"C{i % 10}" for i, label in enumerate(dict.fromkeys(l for l, _ in held))}
    seen, styles = set(), ("-", "--", ":")
    for label, h in held:
        c = colours[label]
        _plot_line(ax_loss, _series(h, "step", "loss"), color=c, linewidth=0.9, alpha=0.8,
                   label=label if label not in seen else "_nolegend_")
        for level, style in ((_num(_dict(h.get("collapsed")).get("loss")), "--"),
                             (_num(_dict(h.get("random_encoder")).get("loss")), ":")):
            if level is not None:
                ax_loss.axhline(level, color=c, linestyle=style, linewidth=0.8, alpha=0.6)
        terms = sorted(k for k in h if str(k).startswith("retrieval_"))
        for j, key in enumerate(terms):
            xy = _series(h, "step", key)
            if xy is not None:
                _plot_line(ax_acc, xy, color=c, linestyle=styles[j % 3], linewidth=0.9,
                           alpha=0.8, label=(f"{label} {key[len('retrieval_'):]}"
                                             if label not in seen else "_nolegend_"))
        for level in {v for v in map(_num, _dict(h.get("chance")).values()) if v is not None}:
            ax_acc.axhline(level, color="0.35", linestyle="--", linewidth=0.8)
        seen.add(label)
    ax_loss.set_title("(c) pre-training, held-out cells")
    ax_loss.set_ylabel("held-out loss")
    ax_acc.set_title("(d) held-out retrieval accuracy")
    ax_acc.set_ylabel("top-1 accuracy")
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("step")
        ax.legend(fontsize="x-small")


def _plot_line(ax, xy, **kwargs):
    x, y = xy
    ax.plot(x, y, marker="o" if len(y) < 3 else None, markersize=2.5, **kwargs)


def _smoothing_window(n: int) -> int:
    """Moving-average width for a curve of *n* points (1 = no smoothing)."""
    return max(5, n // 20) if n >= 30 else 1


def _curves_section(pipes: dict) -> str:
    pre, fine = _collect_curves(pipes)
    # Loss of a collapsed encoder (every embedding the same) recorded with the
    # pre-training curves: one reference line per distinct value.
    collapsed = sorted({round(v, 6) for pipe in pipes.values()
                        for entries in _dict(_dict(pipe.get("curves")).get("pretrain")).values()
                        for e in _list(entries) if isinstance(e, Mapping)
                        and (v := _num(e.get("collapsed"))) is not None})
    held, held_notes = _collect_held_out(pipes)
    title = "Training curves"
    if not pre and not fine:
        return _section("sec-curves", title, _skip(
            "No pipeline recorded training curves (baselines such as band power have none)."))

    def draw():
        n_ax = bool(pre) + bool(fine) + 2 * bool(held)
        fig = _new_figure(6.0 * n_ax + 1.0, 4.0)
        axes = list(fig.subplots(1, n_ax, squeeze=False).ravel())
        if pre:
            ax = axes.pop(0)
            for c, (label, lines) in enumerate(pre):
                for i, (x, y) in enumerate(lines):
                    k = _smoothing_window(len(y))
                    name = label if i == 0 else "_nolegend_"
                    if k > 1:  # noisy per-step losses: faint raw line, bold moving average
                        _plot_line(ax, (x, y), color=f"C{c % 10}", linewidth=0.6, alpha=0.2,
                                   label="_nolegend_")
                        ys = np.convolve(np.asarray(y, float), np.ones(k) / k, mode="valid")
                        _plot_line(ax, (np.asarray(x, float)[k // 2:k // 2 + len(ys)], ys),
                                   color=f"C{c % 10}", linewidth=1.2, alpha=0.9, label=name)
                    else:
                        _plot_line(ax, (x, y), color=f"C{c % 10}", linewidth=0.9, alpha=0.7,
                                   label=name)
            for level in collapsed:
                ax.axhline(level, color="0.35", linestyle="--", linewidth=1.0,
                           label="collapsed encoder" if len(collapsed) == 1
                           else f"collapsed encoder ({level:.2f})")
            ax.set_title("(a) pre-training, training batches")
            ax.set_xlabel("step")
            ax.set_ylabel("training loss")
            ax.legend(fontsize="small")
        if fine:
            ax = axes.pop(0)
            for c, (name, lines) in enumerate(fine):
                first_tr = first_va = True
                for tr, va in lines:
                    if tr is not None:
                        _plot_line(ax, tr, color=f"C{c % 10}", linewidth=0.9, alpha=0.6,
                                   label=f"{name} train" if first_tr else "_nolegend_")
                        first_tr = False
                    if va is not None:
                        _plot_line(ax, va, color=f"C{c % 10}", linewidth=0.9, alpha=0.6,
                                   linestyle="--",
                                   label=f"{name} validation" if first_va else "_nolegend_")
                        first_va = False
            ax.set_title("(b) fine-tuning")
            ax.set_xlabel("epoch")
            ax.set_ylabel("loss")
            ax.legend(fontsize="small")
        if held:
            _draw_held_out(axes.pop(0), axes.pop(0), held)
        return fig

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
    return _section("sec-curves", title, _figure("fig-curves", draw, alt, caption))


def _importance(pipe: Mapping):
    """``(channels, values, method)`` with finite values and unique names, or None."""
    ci = _dict(pipe.get("channel_importance"))
    channels, values = _list(ci.get("channels")), _list(ci.get("values"))
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


def _positioned_info(channels: list, montage):
    """An ``mne.Info`` of the channels that have a position in ``montage`` (None when
    fewer than three do), and their indices into ``channels``."""
    import mne

    def make(names):
        info = mne.create_info(names, sfreq=128.0, ch_types="eeg", verbose=False)
        info.set_montage(montage, match_case=False, on_missing="ignore", verbose=False)
        return info

    info = make(channels)
    keep = [i for i, ch in enumerate(info["chs"])
            if np.isfinite(ch["loc"][:3]).all() and np.any(ch["loc"][:3] != 0)]
    if len(keep) < 3:
        return None, keep
    return make([channels[i] for i in keep]), keep


def _topomap_section(pipes: dict) -> str:
    items = [(n, imp) for n, p in pipes.items() if (imp := _importance(p)) is not None]
    title = "EEG channel importance"
    if not items:
        return _section("sec-topomap", title,
                        _skip("No pipeline reports EEG channel importance."))

    def draw():
        import mne

        from .._utils.montage import standard_montage

        montage = standard_montage()  # "standard_1020" under its current MNE name
        ncols = min(len(items), 3)
        nrows = math.ceil(len(items) / ncols)
        fig = _new_figure(4.0 * ncols, 3.7 * nrows)
        axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
        for ax, (name, (chans, vals, method)) in zip(axes, items):
            info, keep = _positioned_info(chans, montage)
            if info is not None:
                v = vals[keep]
                if v.min() >= 0:
                    cmap, vlim = "Reds", (0.0, float(v.max()) or 1.0)
                else:
                    top = float(np.abs(v).max())
                    cmap, vlim = "RdBu_r", (-top, top)
                im, _ = mne.viz.plot_topomap(v, info, axes=ax, show=False, cmap=cmap,
                                             vlim=vlim)
                fig.colorbar(im, ax=ax, shrink=0.75, label="importance")
            else:
                ax.bar(range(len(chans)), vals, color="C3")
                ax.set_xticks(range(len(chans)), chans, rotation=90, fontsize="small")
                ax.set_ylabel("importance")
            wrapped = "\n".join(textwrap.wrap(method, 34))
            ax.set_title(f"{name}\n{wrapped}", fontsize="small")
        for ax in axes[len(items):]:
            ax.set_axis_off()
        return fig

    caption = ("EEG channel importance per pipeline on the standard 10-20 layout (channels "
               "without a standard position are left out; bars are shown when fewer than "
               "three channels have one). The method is named above each map.")
    alt = f"Scalp maps of EEG channel importance for {', '.join(n for n, _ in items)}."
    return _section("sec-topomap", title, _figure("fig-topomap", draw, alt, caption))


def _comparisons_section(report: Mapping) -> str:
    comps = [c for c in _list(report.get("comparisons")) if isinstance(c, Mapping)]
    title = "Paired comparisons"
    if not comps:
        return _section("sec-comparisons", title,
                        _skip("No paired comparisons in this report."))
    rows = []
    for c in comps:
        ci = _list(c.get("ci95")) or [None, None]
        diff = _fmt(c.get("mean")) if _num(c.get("mean")) is None or len(ci) != 2 else (
            f"{_fmt(c.get('mean'))} [{_fmt(ci[0])}, {_fmt(ci[1])}]")
        flip = _dict(c.get("sign_flip")) or {"p_value": c.get("p_value"),
                                             "min_p": c.get("min_p")}
        rows.append([f"{c.get('pipeline', '?')} − {c.get('baseline', '?')}",
                     str(c.get("metric", "n/a")), str(c.get("level", "n/a")),
                     _fmt_count(c.get("n")), diff, _fmt(c.get("std")),
                     _fmt(c.get("cohens_dz"), 2),
                     f"{_fmt_p(c.get('p_value'))} ({c.get('primary_test') or 'sign-flip'})",
                     _fmt_p(_real(c.get("p_value_holm"))),
                     _fmt_p(flip.get("p_value")), _fmt_p(flip.get("min_p")),
                     _fmt_p(_dict(c.get("corrected_t")).get("p_value")),
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
        diffs = _dict(c.get("differences"))
        values = [v for _, v in sorted(((k, _num(d)) for k, d in diffs.items()),
                                       key=lambda kv: _subject_key(kv[0]))
                  if v is not None]
        if values:
            label = (f"{c.get('pipeline', '?')} − {c.get('baseline', '?')}\n"
                     f"{c.get('metric', '')} ({c.get('level', '')})")
            ci = [_num(x) for x in _list(c.get("ci95"))]
            strips.append((label, np.asarray(values),
                           ci if len(ci) == 2 and None not in ci else None))

    def draw():
        fig = _new_figure(max(5.0, 2.0 * len(strips) + 1.5), 3.8)
        ax = fig.subplots()
        rng = np.random.default_rng(0)
        for i, (_, v, ci) in enumerate(strips):
            ax.scatter(i + rng.uniform(-0.12, 0.12, len(v)), v, s=22, alpha=0.75,
                       color=f"C{i % 10}", edgecolors="none")
            ax.hlines(v.mean(), i - 0.25, i + 0.25, colors="black", linewidth=2)
            if ci is not None:
                ax.vlines(i + 0.3, ci[0], ci[1], colors="black", linewidth=1.2)
        ax.axhline(0.0, color="0.3", linewidth=1)
        ax.set_xticks(range(len(strips)), [label for label, _, _ in strips], fontsize="small")
        ax.set_xlim(-0.6, len(strips) - 0.4)
        ax.set_ylabel("difference")
        return fig

    if strips:
        caption = ("Per-unit differences (pipeline minus baseline; one dot per subject or "
                   "fold) with their mean (black bar), its 95 % interval (vertical "
                   "line, right) and the zero line.")
        alt = f"Dot plot of per-unit differences for {len(strips)} paired comparison(s)."
        body.append(_figure("fig-comparisons", draw, alt, caption))
    else:
        body.append(_skip("The comparisons carry no per-unit differences to plot."))
    return _section("sec-comparisons", title, "\n".join(body))


def _label_efficiency_section(report: Mapping) -> str:
    """The label-efficiency curves (headline against budget) and the areas' table."""
    sec = _dict(report.get("label_efficiency"))
    curves = {name: [p for p in _list(points) if isinstance(p, Mapping)]
              for name, points in _dict(sec.get("curves")).items()}
    budgets = [str(b) for b in _list(sec.get("budgets"))]
    t = label_efficiency_table(sec)
    body = [f"<p>{_esc(t['intro'])}</p>", _table(t["header"], t["rows"], "label-efficiency")]
    body += [f"<p>{_esc(note)}</p>" for note in t["notes"]]

    def draw():
        fig = _new_figure(6.5, 3.8)
        ax = fig.subplots()
        x = np.arange(len(budgets))
        for i, (name, points) in enumerate(curves.items()):
            mean = np.array([_num(p.get("mean")) or np.nan for p in points], dtype=float)
            ci = np.array([[(_num(c) if _num(c) is not None else np.nan)
                            for c in (_list(p.get("ci95")) + [None, None])[:2]]
                           for p in points], dtype=float)
            ax.plot(x[:len(mean)], mean, marker="o", color=f"C{i % 10}", label=name)
            ax.fill_between(x[:len(mean)], ci[:, 0], ci[:, 1], color=f"C{i % 10}", alpha=0.15,
                            linewidth=0)
        chance = [_num(p.get("chance")) for pts in curves.values() for p in pts]
        chance = [c for c in chance if c is not None]
        if chance:
            ax.axhline(float(np.mean(chance)), color="0.4", linestyle="--", linewidth=1,
                       label="chance")
        ax.set_xticks(x, budgets)
        ax.set_xlabel("labelled training trials per subject")
        ax.set_ylabel(metric_label(sec.get("metric") or "subject.balanced_accuracy"))
        ax.legend(fontsize="small")
        return fig

    body.append(_figure("fig-label-efficiency", draw,
                        f"Label-efficiency curves of {len(curves)} pipeline(s).",
                        "Per-subject headline (mean over subjects) at each label budget, with "
                        "its 95 % interval (band) and the chance level (dashed)."))
    return _section("sec-label-efficiency", "Label efficiency", "\n".join(body))


def _folds_section(pipes: dict, primary: str | None, n_classes: int = 2) -> str:
    title = f"Folds of {primary}" if primary else "Folds"
    folds = [f for f in _list(_dict(pipes.get(primary)).get("folds")) if isinstance(f, Mapping)]
    if not folds:
        return _section("sec-folds", title, _skip("No per-fold results in this report."))
    metric = "balanced_accuracy" if n_classes == 2 else "macro_f1"
    label = _METRIC_LABELS[metric]

    def size(units) -> str:
        return str(len(units)) if isinstance(units, (list, tuple)) else "n/a"

    rows = []
    for i, f in enumerate(folds):
        metrics = _dict(f.get("metrics"))
        fold = f.get("fold", i)
        rows.append([_fmt_count(fold) if _num(fold) is not None else str(fold),
                     size(f.get("train")), size(f.get("val")), size(f.get("test")),
                     _fmt(_dict(metrics.get("subject")).get(metric)),
                     _fmt(_chance_of(f, "subject", metric)),
                     _fmt(_dict(metrics.get("window")).get(metric)),
                     _fmt(_chance_of(f, "window", metric)),
                     _fmt(_dict(metrics.get("trial")).get("accuracy")),
                     _fmt(_chance_of(f, "trial", "accuracy")),
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

    text = yaml.safe_dump(_plain(_dict(report.get("config"))), sort_keys=False,
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
        The report dictionary of :func:`physiosync.evaluation.summary.build_report` (or its JSON
        round trip, where subject keys are strings). Optional parts (``pipelines``,
        ``confusion``, ``curves``, ``channel_importance``, ``comparisons``) may be
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
          if isinstance(report.get("label_efficiency"), Mapping) else []),
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
