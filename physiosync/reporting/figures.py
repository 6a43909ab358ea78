"""The figures of ``report.html``: data in, a :class:`matplotlib.figure.Figure` out.

Each function draws one figure from plain values (lists, arrays, the curve entries of
fold records) that :mod:`physiosync.reporting.html` has read from a report; none reads
a report, writes a file or touches pyplot: figures are drawn with the object API on
their own Agg canvas, so drawing neither opens windows nor changes the user's backend.
matplotlib (and MNE, for the scalp maps) are imported on first use.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Mapping

import numpy as np

from ..evaluation.statistics import real_or_none as _num

__all__ = ["new_figure", "per_subject_dots", "per_subject_bars", "confusion_figure",
           "curves_figure", "topomap_figure", "comparisons_figure",
           "label_efficiency_figure", "fmt_count"]


def fmt_count(x) -> str:
    """A count as text: ``"12"``, ``"2.5"`` or ``"n/a"``."""
    v = _num(x)
    if v is None:
        return "n/a"
    return str(int(v)) if v.is_integer() else f"{v:.3g}"


def floats(values) -> np.ndarray:
    """A float array of a validated report's values (None: empty), None and
    infinities as NaN."""
    out = [_num(v) for v in values or []]
    return np.array([np.nan if v is None else v for v in out], dtype=float)


def series(entry: Mapping, x_key: str, y_key: str):
    """``(x, y)`` float arrays of a curve, or None when ``y`` has no finite value."""
    y = floats(entry.get(y_key))
    if not np.isfinite(y).any():
        return None
    x = floats(entry.get(x_key))
    if len(x) != len(y):  # missing or inconsistent x: number the points
        x = np.arange(len(y), dtype=float)
    return x, y


def new_figure(width: float, height: float):
    """A matplotlib Figure on its own Agg canvas (pyplot is never involved)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def per_subject_dots(names: list, subjects: list, values: np.ndarray, flagged: dict,
                     chance: dict, label: str):
    """Pipelines on the x axis, one dot per subject: readable with ten pipelines.

    *values*: ``(len(names), len(subjects))`` scores, NaN where missing; *flagged*: name ->
    subjects whose test windows include one-class fallbacks (hollow dots); *chance*:
    subject -> chance level, in subject order; *label*: the metric's name.
    """
    from matplotlib.lines import Line2D

    n_s, n_p = len(subjects), len(names)
    fig = new_figure(min(max(6.5, 1.5 + 0.8 * n_p), 24.0), 4.4)
    ax = fig.add_subplot()
    # a subject keeps its horizontal offset in every column, so a line joins its dots
    offsets = np.linspace(-0.28, 0.28, n_s) if n_s > 1 else np.zeros(1)
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

def per_subject_bars(names: list, subjects: list, values: np.ndarray, flagged: dict,
                     chance: dict, label: str):
    """Bars grouped by subject, one per pipeline (hatched: one-class fallbacks), with
    each subject's chance level; arguments as :func:`per_subject_dots`."""
    from matplotlib.patches import Patch

    n_s, n_p = len(subjects), len(names)
    fig = new_figure(min(max(6.5, 2.5 + n_s * (0.3 + 0.15 * n_p)), 24.0), 3.9)
    ax = fig.add_subplot()
    width = 0.8 / n_p
    for j, name in enumerate(names):
        labelled = False
        for hatch in (None, "//"):  # plain bars, then subjects with one-class fallbacks
            xs, ys = [], []
            for i, s in enumerate(subjects):
                v = values[j, i]
                if np.isfinite(v) and (s in flagged[name]) == (hatch is not None):
                    xs.append(i - 0.4 + width * (j + 0.5))
                    ys.append(float(v))
            if xs:
                ax.bar(xs, ys, width=width, color=f"C{j % 10}", hatch=hatch,
                       edgecolor="black" if hatch else None, linewidth=0.5 if hatch else 0,
                       label="_nolegend_" if labelled else name)
                labelled = True
    cx = [i for i, s in enumerate(subjects) if s in chance]
    cy = [chance[subjects[i]] for i in cx]
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

def confusion_figure(mats: list, class_names):
    """Row-normalised confusion matrices with their counts, one panel per
    ``(name, matrix)`` of *mats*; ``class_names(k)``: the names of *k* classes."""
    ncols = min(len(mats), 3)
    nrows = math.ceil(len(mats) / ncols)
    k_max = max(m.shape[0] for _, m in mats)
    side = max(3.0, 0.75 * k_max + 1.8)
    fig = new_figure(side * ncols + 0.8, side * nrows)
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
                count = fmt_count(m[i, j])
                text = count if count == "n/a" else f"{count}\n{norm[i, j]:.0%}"
                ax.text(j, i, text, ha="center", va="center", fontsize="small",
                        color="white" if norm[i, j] > 0.5 else "black")
        labels = class_names(k)
        ax.set_xticks(range(k), labels, rotation=30 if k > 2 else 0)
        ax.set_yticks(range(k), labels)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(name)
    for ax in axes[len(mats):]:
        ax.set_axis_off()
    fig.colorbar(im, ax=list(axes[:len(mats)]), shrink=0.8, label="fraction of true class")
    return fig

def _draw_held_out(ax_loss, ax_acc, held: list) -> None:
    """Held-out loss (with its collapsed and random-encoder levels) and retrieval
    accuracies (with chance), one colour per run label, one line per fold."""
    colours = {label: f"C{i % 10}" for i, label in enumerate(dict.fromkeys(l for l, _ in held))}
    seen, styles = set(), ("-", "--", ":")
    for label, h in held:
        c = colours[label]
        _plot_line(ax_loss, series(h, "step", "loss"), color=c, linewidth=0.9, alpha=0.8,
                   label=label if label not in seen else "_nolegend_")
        for level, style in ((_num((h.get("collapsed") or {}).get("loss")), "--"),
                             (_num((h.get("random_encoder") or {}).get("loss")), ":")):
            if level is not None:
                ax_loss.axhline(level, color=c, linestyle=style, linewidth=0.8, alpha=0.6)
        terms = sorted(k for k in h if str(k).startswith("retrieval_"))
        for j, key in enumerate(terms):
            xy = series(h, "step", key)
            if xy is not None:
                _plot_line(ax_acc, xy, color=c, linestyle=styles[j % 3], linewidth=0.9,
                           alpha=0.8, label=(f"{label} {key[len('retrieval_'):]}"
                                             if label not in seen else "_nolegend_"))
        for level in {v for v in map(_num, (h.get("chance") or {}).values()) if v is not None}:
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


def curves_figure(pre: list, fine: list, collapsed: list, held: list):
    """Training curves: (a) pre-training losses ``[(label, [(x, y)])]`` with the
    *collapsed* levels, (b) fine-tuning ``[(name, [(train xy, validation xy)])]``,
    (c, d) the held-out diagnostic ``[(label, held-out entry)]`` (panels only for
    what is given)."""
    n_ax = bool(pre) + bool(fine) + 2 * bool(held)
    fig = new_figure(6.0 * n_ax + 1.0, 4.0)
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


def topomap_figure(items: list):
    """Scalp maps of ``[(name, (channels, values, method))]`` on the standard 10-20
    layout (bars when fewer than three channels have a position)."""
    import mne

    from .._utils.montage import standard_montage

    montage = standard_montage()  # "standard_1020" under its current MNE name
    ncols = min(len(items), 3)
    nrows = math.ceil(len(items) / ncols)
    fig = new_figure(4.0 * ncols, 3.7 * nrows)
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

def comparisons_figure(strips: list):
    """Per-unit paired differences ``[(label, values, ci95 or None)]``: dots, their mean
    and interval, and the zero line."""
    fig = new_figure(max(5.0, 2.0 * len(strips) + 1.5), 3.8)
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

def label_efficiency_figure(budgets: list, curves: dict, chance: list, ylabel: str):
    """Each pipeline's headline against the label budget, ``curves``: name ->
    ``(mean, ci)`` arrays (``ci``: ``(n, 2)``), with its interval and the mean of *chance*."""
    fig = new_figure(6.5, 3.8)
    ax = fig.subplots()
    x = np.arange(len(budgets))
    for i, (name, (mean, ci)) in enumerate(curves.items()):
        ax.plot(x[:len(mean)], mean, marker="o", color=f"C{i % 10}", label=name)
        ax.fill_between(x[:len(mean)], ci[:, 0], ci[:, 1], color=f"C{i % 10}", alpha=0.15,
                        linewidth=0)
    if chance:
        ax.axhline(float(np.mean(chance)), color="0.4", linestyle="--", linewidth=1,
                   label="chance")
    ax.set_xticks(x, budgets)
    ax.set_xlabel("labelled training trials per subject")
    ax.set_ylabel(ylabel)
    ax.legend(fontsize="small")
    return fig
