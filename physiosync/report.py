"""Cross-validation reports: ``report.json``, ``results.csv`` and ``report.md``.

The JSON schema (documented in ``docs/evaluation.md``)::

    {
      "protocol": str, "target": str, "leaky": bool, "warning": str | null,
      "folds": [{"fold", "train", "val", "test", "metrics", "chance"}],
      "per_subject": {subject: {metric: value}},          # window level
      "summary": {"<level>.<metric>": {"mean", "std", "n"}},
    }

``train``/``val``/``test`` are lists of ``[subject, trial]``. Standard deviations are
over folds (ddof = 1); for within-subject protocols a ``subject.<metric>`` summary
over subjects is added.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd

from .metrics import classification_metrics

__all__ = ["build_report", "write_report", "LEAKAGE_WARNING"]

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


def build_report(results: list, *, protocol: str, target: str, n_classes: int = 2,
                 config: dict | None = None) -> dict:
    """Assemble the report from :func:`physiosync.cv.cross_validate` results."""
    leaky = protocol == "legacy-segment"
    folds, rows = [], []
    per_subject_preds = []
    for r in results:
        m = r["metrics"]
        folds.append({"fold": r["fold"], "train": r["train"], "val": r["val"], "test": r["test"],
                      "metrics": {"window": m["window"], "trial": m["trial"]},
                      "chance": {"window": m["chance_window"], "trial": m["chance_trial"]}})
        for level in ("window", "trial"):
            for name, value in m[level].items():
                rows.append({"fold": r["fold"], "target": target, "level": level,
                             "metric": name, "value": value})
            rows.append({"fold": r["fold"], "target": target, "level": level,
                         "metric": "chance", "value": m[f"chance_{level}"]})
        per_subject_preds.append(pd.DataFrame(r["predictions"]))
    frame = pd.DataFrame(rows)
    summary = {}
    for (level, metric), group in frame.groupby(["level", "metric"], sort=False):
        summary[f"{level}.{metric}"] = _mean_std(group["value"])
    preds = pd.concat(per_subject_preds, ignore_index=True) if per_subject_preds else None
    per_subject = {}
    if preds is not None and len(preds):
        cols = [f"p{c}" for c in range(n_classes)]
        for s, g in preds.groupby("subject"):
            proba = g[cols].to_numpy()
            per_subject[int(s)] = classification_metrics(g["y"].to_numpy(), proba.argmax(1),
                                                         proba, n_classes=n_classes)
        if protocol.startswith("within"):
            for metric in next(iter(per_subject.values())):
                summary[f"subject.{metric}"] = _mean_std(v[metric] for v in per_subject.values())
    return {"protocol": protocol, "target": target, "leaky": leaky,
            "warning": LEAKAGE_WARNING if leaky else None, "config": config or {},
            "folds": folds, "per_subject": per_subject, "summary": summary,
            "_rows": rows}


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text)
    os.replace(tmp, path)


def write_report(report: dict, out_dir) -> dict:
    """Write ``report.json``, ``results.csv`` and ``report.md``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows = report.get("_rows", [])
    public = {k: v for k, v in report.items() if not k.startswith("_")}
    paths = {"json": out_dir / "report.json", "csv": out_dir / "results.csv",
             "md": out_dir / "report.md"}
    _atomic_write(paths["json"], json.dumps(public, indent=2, default=str))
    _atomic_write(paths["csv"], pd.DataFrame(rows).to_csv(index=False))
    lines = [f"# physiosync cross-validation: {report['target']} ({report['protocol']})", ""]
    if report["leaky"]:
        lines += [f"> **{report['warning']}**", ""]
    lines += ["| metric | mean ± std | n |", "|---|---|---|"]
    for name, s in report["summary"].items():
        lines.append(f"| {name} | {s['mean']:.3f} ± {s['std']:.3f} | {s['n']} |")
    lines += ["", "Chance = accuracy of always predicting the majority class of each test fold.",
              "Standard deviations are over folds (`window.*`, `trial.*`) or subjects "
              "(`subject.*`), ddof = 1.", ""]
    _atomic_write(paths["md"], "\n".join(lines))
    return paths
