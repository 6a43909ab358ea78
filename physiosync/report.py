"""Cross-validation reports: ``report.json``, ``results.csv``, ``report.md``, ``report.html``.

The JSON schema is documented in ``docs/evaluation.md``. In short::

    {
      "protocol", "target", "leaky", "warning", "n_classes", "class_names", "primary",
      "config": {...resolved configuration, versions, data source...},
      "folds", "per_subject", "summary",        # the primary pipeline's, at top level
      "pipelines": {name: {"folds", "per_subject", "summary", "confusion", "curves",
                           "channel_importance"[, "p_value"]}},
      "comparisons": [{"pipeline", "baseline", "metric", "level", "differences",
                       "mean", "std", "n", "p_value", "test"}],
    }

``folds[*]`` hold ``fold``, ``train``/``val``/``test`` (lists of ``[subject, trial]``),
``metrics`` (``window`` and ``trial`` levels) and ``chance``. Standard deviations are
over folds (ddof = 1); within-subject protocols add ``subject.<metric>`` over subjects.
NaN is written as ``null``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import chance_level, classification_metrics, permutation_pvalue, trial_vote

__all__ = ["build_report", "write_report", "report_rows", "report_markdown",
           "summarize_pipeline", "paired_comparison", "merge_reports", "class_names",
           "LEAKAGE_WARNING"]

LEAKAGE_WARNING = (
    "LEAKAGE WARNING: the legacy-segment protocol splits windows at random, so windows of "
    "the same trial (same subject, stimulus and label) sit in both training and test data. "
    "Its scores (about 98 % on DEAP in the literature) measure trial identification, not "
    "emotion recognition; honest protocols give about 55-65 %.")


def _mean_std(values) -> dict:
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if v.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if v.size > 1 else 0.0,
            "n": int(v.size)}


def _confusion(y, pred, n_classes: int) -> list:
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y, pred, labels=list(range(n_classes))).tolist()


def _fold_rows(name: str, target: str, folds: list) -> pd.DataFrame:
    """``pipeline, fold, target, level, metric, value`` rows of report folds, chance included."""
    rows = []
    for f in folds:
        for level in ("window", "trial"):
            for metric, value in f["metrics"][level].items():
                rows.append((name, f["fold"], target, level, metric, value))
            rows.append((name, f["fold"], target, level, "chance", f["chance"][level]))
    return pd.DataFrame(rows, columns=["pipeline", "fold", "target", "level", "metric", "value"])


def summarize_pipeline(results: list, *, protocol: str, target: str, n_classes: int = 2,
                       name: str = "physiosync", permutations: int = 0,
                       seed: int = 0) -> dict:
    """One pipeline's part of the report.

    Returns
    -------
    part : dict
        ``folds``, ``per_subject`` (window-level metrics and ``chance`` per subject),
        ``summary``, ``confusion`` (``window``/``trial``), ``curves``,
        ``channel_importance`` (mean over folds) and, with *permutations*, ``p_value``.
    """
    folds, frames = [], []
    curves = {"pretrain": {}, "finetune": []}
    importances = []
    for r in results:
        m = r["metrics"]
        folds.append({"fold": r["fold"], "train": r["train"], "val": r["val"], "test": r["test"],
                      "metrics": {"window": m["window"], "trial": m["trial"]},
                      "chance": {"window": m["chance_window"], "trial": m["chance_trial"]}})
        frames.append(pd.DataFrame(r["predictions"]))
        for enc, curve in (r.get("curves") or {}).get("pretrain", {}).items():
            curves["pretrain"].setdefault(enc, []).append({"fold": r["fold"], **curve})
        for curve in (r.get("curves") or {}).get("finetune", []):
            curves["finetune"].append({"fold": r["fold"], **curve})
        if r.get("channel_importance") is not None:
            importances.append(r["channel_importance"])
    frame = _fold_rows(name, target, folds)
    summary = {}
    if len(frame):
        for (level, metric), group in frame.groupby(["level", "metric"], sort=False):
            summary[f"{level}.{metric}"] = _mean_std(group["value"])
    preds = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    per_subject, confusion, p_value = {}, {}, None
    if len(preds):
        cols = [f"p{c}" for c in range(n_classes)]
        proba = preds[cols].to_numpy()
        y = preds["y"].to_numpy()
        confusion["window"] = _confusion(y, proba.argmax(1), n_classes)
        yt, pt, _ = trial_vote(y, proba, preds[["subject", "trial"]].to_numpy())
        confusion["trial"] = _confusion(yt, pt, n_classes)
        for s, g in preds.groupby("subject"):
            pg = g[cols].to_numpy()
            per_subject[int(s)] = {
                **classification_metrics(g["y"].to_numpy(), pg.argmax(1), pg,
                                         n_classes=n_classes),
                "chance": chance_level(g["y"].to_numpy())}
        if protocol.startswith("within"):
            for metric in next(iter(per_subject.values())):
                summary[f"subject.{metric}"] = _mean_std(v[metric] for v in per_subject.values())
        if permutations:
            p_value = permutation_pvalue(y, proba.argmax(1),
                                         groups=preds[["subject", "trial"]].to_numpy(),
                                         n_permutations=permutations, seed=seed)
    part = {"folds": folds, "per_subject": per_subject, "summary": summary,
            "confusion": confusion, "curves": curves if any(curves.values()) else {},
            "channel_importance": (np.mean(importances, axis=0).tolist() if importances
                                   else None)}
    if permutations:
        part["p_value"] = {"metric": "window.balanced_accuracy", "value": p_value,
                           "permutations": int(permutations),
                           "null": "labels permuted between (subject, trial) units"}
    return part


def paired_comparison(report_parts: dict, pipeline: str, baseline: str, *,
                      metric: str = "balanced_accuracy", per_subject: bool = True) -> dict:
    """Paired differences *pipeline* minus *baseline*, per subject or per fold.

    The p-value is the two-sided Wilcoxon signed-rank test of the paired differences
    (``None`` with fewer than two pairs or all differences zero).
    """
    from scipy.stats import wilcoxon

    a, b = report_parts[pipeline], report_parts[baseline]
    if per_subject:
        units = sorted(set(a["per_subject"]) & set(b["per_subject"]), key=int)
        diffs = {str(u): a["per_subject"][u][metric] - b["per_subject"][u][metric]
                 for u in units}
    else:
        fa = {f["fold"]: f["metrics"]["window"][metric] for f in a["folds"]}
        fb = {f["fold"]: f["metrics"]["window"][metric] for f in b["folds"]}
        diffs = {str(k): fa[k] - fb[k] for k in sorted(set(fa) & set(fb))}
    values = np.array([v for v in diffs.values() if v is not None and np.isfinite(v)])
    p = None
    if values.size >= 2 and np.any(values != 0):
        p = float(wilcoxon(values).pvalue)
    stats = _mean_std(values)
    return {"pipeline": pipeline, "baseline": baseline, "metric": metric,
            "level": "subject" if per_subject else "fold", "differences": diffs,
            "mean": stats["mean"], "std": stats["std"], "n": stats["n"], "p_value": p,
            "test": "wilcoxon signed-rank"}


def class_names(target: str, n_classes: int) -> list:
    """Display names of the classes of a target."""
    if target == "four" or n_classes == 4:
        return ["HA-HV", "HA-LV", "LA-HV", "LA-LV"]
    return ["low", "high"][:n_classes] if n_classes <= 2 else [str(c) for c in range(n_classes)]


def build_report(results, *, protocol: str, target: str, n_classes: int = 2,
                 config: dict | None = None, channels=None, permutations: int = 0,
                 seed: int = 0) -> dict:
    """Assemble the report from :func:`physiosync.cv.cross_validate` results.

    Parameters
    ----------
    results : list of dict | dict of str -> list of dict
        One pipeline's fold results, or ``{pipeline: results}`` for a comparison
        (the first pipeline is the primary one).
    protocol, target : str
        As run.
    n_classes : int
        2 or 4.
    config : dict | None
        Resolved configuration (with versions and data source) stored in the report.
    channels : list of str | None
        EEG channel names, for the channel-importance topomap.
    permutations : int
        Label permutations for a p-value per pipeline (0: none).
    seed : int
        Seed of the permutations.
    """
    if not isinstance(results, dict):
        results = {"physiosync": results}
    leaky = protocol == "legacy-segment"
    parts = {}
    for name, res in results.items():
        parts[name] = summarize_pipeline(res, protocol=protocol, target=target,
                                                    n_classes=n_classes, name=name,
                                                    permutations=permutations, seed=seed)
        if channels is not None and parts[name]["channel_importance"] is not None:
            parts[name]["channel_importance"] = {
                "channels": list(channels), "values": parts[name]["channel_importance"],
                "method": ("sum of |standardised logistic coefficient| over bands"
                           if "bandpower" in name else "mean |gradient x input| of the "
                           "predicted logit, test windows")}
        elif parts[name]["channel_importance"] is not None:
            parts[name]["channel_importance"] = None
    primary = next(iter(parts))
    by_subject = protocol.startswith("within") and not leaky
    comparisons = [paired_comparison(parts, primary, other, per_subject=by_subject)
                   for other in parts if other != primary]
    return {"protocol": protocol, "target": target, "leaky": leaky,
            "warning": LEAKAGE_WARNING if leaky else None, "n_classes": n_classes,
            "class_names": class_names(target, n_classes), "primary": primary,
            "config": config or {},
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
    from .exceptions import PhysioSyncError

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
    parts = {}
    for name, rep in zip(names, reports):
        for pipe, part in rep["pipelines"].items():
            key = pipe if pipe not in parts else f"{name}/{pipe}"
            parts[key] = part
    merged = dict(first)
    primary = next(iter(parts))
    by_subject = first["protocol"].startswith("within") and not first["leaky"]
    merged["pipelines"] = parts
    merged["comparisons"] = [paired_comparison(_int_keys(parts), primary, other,
                                               per_subject=by_subject)
                             for other in parts if other != primary]
    merged["config"] = {"runs": {n: r.get("config", {}) for n, r in zip(names, reports)}}
    return merged


def _int_keys(parts: dict) -> dict:
    """JSON turns subject keys into strings; restore ints for pairing."""
    return {name: {**part, "per_subject": {int(k): v for k, v in part["per_subject"].items()}}
            for name, part in parts.items()}


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


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
    """``results.csv``: one row per pipeline x fold x target x level x metric."""
    return pd.concat([_fold_rows(name, report["target"], part["folds"])
                      for name, part in report["pipelines"].items()], ignore_index=True)


def _fmt(value, digits=3) -> str:
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def report_markdown(report: dict) -> str:
    """The Markdown summary (``report.md``)."""
    lines = [f"# physiosync cross-validation: {report['target']} ({report['protocol']})", ""]
    if report["leaky"]:
        lines += [f"> **{report['warning']}**", ""]
    for name, part in report["pipelines"].items():
        lines += [f"## {name}", "", "| metric | mean ± std | n |", "|---|---|---|"]
        for metric, s in part["summary"].items():
            lines.append(f"| {metric} | {_fmt(s['mean'])} ± {_fmt(s['std'])} | {s['n']} |")
        if part.get("p_value"):
            pv = part["p_value"]
            lines.append(f"| permutation p ({pv['metric']}, {pv['permutations']} permutations)"
                         f" | {_fmt(pv['value'], 4)} | |")
        lines.append("")
    if report.get("comparisons"):
        lines += ["## Paired comparisons", "",
                  "| pipeline − baseline | metric | level | mean ± std | n | Wilcoxon p |",
                  "|---|---|---|---|---|---|"]
        for c in report["comparisons"]:
            lines.append(f"| {c['pipeline']} − {c['baseline']} | {c['metric']} | {c['level']} "
                         f"| {_fmt(c['mean'])} ± {_fmt(c['std'])} | {c['n']} | "
                         f"{_fmt(c['p_value'], 4)} |")
        lines.append("")
    lines += ["Chance = accuracy of always predicting the majority class of each test fold.",
              "Standard deviations are over folds (`window.*`, `trial.*`) or subjects "
              "(`subject.*`), ddof = 1.", ""]
    return "\n".join(lines)


def write_report(report: dict, out_dir, *, html: bool = True) -> dict:
    """Write ``report.json``, ``results.csv``, ``report.md`` and ``report.html``.

    Each file is written atomically. Returns ``{"json", "csv", "md"[, "html"]}`` paths.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    public = _finite_or_none({k: v for k, v in report.items() if not k.startswith("_")})
    paths = {"json": out_dir / "report.json", "csv": out_dir / "results.csv",
             "md": out_dir / "report.md"}
    _atomic_write(paths["json"], json.dumps(public, indent=2, allow_nan=False))
    _atomic_write(paths["csv"], report_rows(report).to_csv(index=False))
    _atomic_write(paths["md"], report_markdown(report))
    if html:
        from .html_report import write_html_report

        paths["html"] = write_html_report(public, out_dir / "report.html")
    return paths
