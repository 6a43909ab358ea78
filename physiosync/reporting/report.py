"""Cross-validation report files: ``report.json``, ``results.csv``, ``report.md``, ``report.html``.

This module renders; it computes nothing. The report dictionary comes from
``physiosync.evaluation.summary.build_report()`` (or
``merge_reports()``); its keys are documented in
``docs/evaluation.md`` and typed in :mod:`physiosync.evaluation.schema`.
:func:`write_report` writes the four files atomically; :func:`report_markdown` and
:func:`report_text` are the Markdown file and the summary printed by the CLI;
:func:`report_rows` is ``results.csv``; :func:`check_report` tells a damaged or foreign
``report.json`` from a report before anything is written.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import numpy as np
import pandas as pd

from .._logging import verbose
from .._utils import atomic_write
from ..evaluation.metrics import headline_metric
from ..evaluation.schema import migrate_report, validate_report
from ..evaluation.summary import METRIC_LABELS, RESULT_COLUMNS, fold_rows
from .text import (CHANCE_NOTE, _fmt, _fmt_p, _headline_sentence, _null_name,
                   _one_class_sentence, _pairing_sentence, _table_cells, _table_header,
                   _table_notes, data_sentence, displayable, held_out_sentence,
                   label_efficiency_lines, metric_label, model_selection_sentence,
                   pipeline_table)

__all__ = ["write_report", "report_rows", "report_markdown", "report_text", "check_report",
           "metric_label", "pipeline_table", "CHANCE_NOTE"]


def _subject_rows(name: str, target: str, per_subject: dict) -> pd.DataFrame:
    """One row per subject and metric of a pipeline's ``per_subject`` table (the values
    behind the headline): ``fold`` empty, ``level`` ``"per_subject"``."""
    rows = []
    for subject, entry in (per_subject or {}).items():
        chance = entry.get("chance") or {}
        for metric, value in entry.items():
            if metric != "chance":
                rows.append((name, None, target, "per_subject", metric, value,
                             chance.get(metric), "subject",
                             int(subject) if str(subject).lstrip("-").isdigit() else subject))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


#: What :func:`check_report` expects, in its messages.
_EXPECTED_REPORT = "expected a run folder or the report.json that `physiosync cv` writes"
#: The keys every report holds (``physiosync.evaluation.summary.build_report()``).
_REPORT_KEYS = ("protocol", "target", "pipelines", "folds")


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
        file, lacks a key of every report, was written by a later physiosync (its
        ``schema_version``), or holds a field of the wrong type
        (``validate_report()``, which names the field).
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
    # a later schema version, or a field of the wrong type, is refused in one line
    validate_report(migrate_report(report, source=source), where=source)


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
    (``RESULT_COLUMNS``). ``row`` says which kind of row it is:

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
                frame = fold_rows(name, report["target"], part["folds"])
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
    lines += [f"**Headline ({primary}):** {_headline_sentence(pipes[primary])}.", ""]
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
        if (part.get("model") or {}).get("text"):
            lines += [f"Model: {part['model']['text']}.", ""]
        chosen = model_selection_sentence(part)
        if chosen:
            lines += [f"Hyper-parameters: {chosen}", ""]
        held = held_out_sentence(part)
        if held:
            lines += [f"Pre-training, held out: {held}", ""]
        one = _one_class_sentence(part)
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
        nulls_of = part.get("p_values") or ({_null_name(pv): pv} if pv is not None else {})
        for name_of, q in nulls_of.items():
            primary_null = (" (primary)" if len(nulls_of) > 1 and name_of == _null_name(pv)
                            else "")
            p = q.get("p_value", q.get("value"))
            lines.append(f"| {name_of} permutation p{primary_null} of `{q['metric']}` "
                         f"({q['permutations']} permutations) | {_fmt_p(p)} | null mean "
                         f"{_fmt(q.get('null_mean'))}, 95th percentile "
                         f"{_fmt(q.get('null_q95'))} | |")
        rn = part.get("refit_null")
        if rn is not None:
            null = [v for v in (rn.get("null") or []) if v is not None]
            lines.append(f"| refit null p of `{rn.get('metric')}` ({rn.get('n')} refits), "
                         f"observed {_fmt(rn.get('observed'))} | {_fmt_p(rn.get('p_value'))} | "
                         f"null mean {_fmt(float(np.mean(null)) if null else None)} | |")
        lines.append("")
        nulls = [f"{name_of} permutation null: {q['null']}."
                 for name_of, q in nulls_of.items() if "null" in q]
        if part.get("p_value_note"):
            nulls.append(f"{part['p_value_note']}.")
        if rn is not None and "definition" in rn:
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
    if report.get("label_efficiency") is not None:
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
                 f"{METRIC_LABELS[metric]} and pooled trial accuracy: mean ± std over folds")
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
            else f"{s['mean']:.3f} ± " + ("n/a" if s["std"] is None else f"{s['std']:.3f}")

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
        one = _one_class_sentence(part)
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
    if report.get("label_efficiency") is not None:
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
        From ``physiosync.evaluation.summary.build_report()`` (or
        ``merge_reports()``).
    out_dir : str | Path
        Folder to write into; created if needed.
    html : bool
        Also write ``report.html`` (``physiosync.reporting.html.write_html_report()``).
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
