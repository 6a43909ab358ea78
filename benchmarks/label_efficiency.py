"""Label efficiency of PhysioSync and its baselines, on simulators with and without the claim.

    python benchmarks/label_efficiency.py --out results/label_efficiency.md \
        [--data-seeds 5] [--train-seeds 3] [--conditions dynamics,static-affect,...] \
        [--protocols within-trial-kfold,subject-stimulus-kfold] [--quick]

The full design is about 120 studies (about 9 hours on one CPU thread). It can be split
and resumed: ``--shards 2 --shard K`` runs every second study in process K (each with its
own ``--out``), the studies already in the JSON beside ``--out`` are skipped, ``--keep
--scratch DIR`` keeps the data and run folders so that a study cut short resumes from its
finished folds, and ``--tabulate A.json B.json --out table.md`` writes the table of
finished studies without running anything.

PhysioSync's claim is that pre-training on inter-subject synchrony and on EEG-peripheral
agreement learns what the emotion does to the signals, so that few labels suffice. The
claim can only show on data where the emotion lives in the dynamics shared by viewers of
a video. This script runs one label-efficiency study (``protocol.labelled_trials``,
docs/evaluation.md) per condition x protocol x data seed x training seed, every pipeline
on the same folds, and tabulates the per-subject headline at each budget and the area
under the curve, with the paired difference of areas to PhysioSync per row.

Conditions (synthetic DEAP, :func:`physiosync.synthetic.make_deap`; each from the same
random streams as ``dynamics``, so that only the manipulated part changes):

- ``dynamics``: the emotion lives in the felt trajectories shared by the viewers of a
  video (``affect="dynamics"``): the method's claim can hold here;
- ``static-affect``: the same draws, the affect a static per-trial level (the control
  ``static-affect``): what pre-training is rewarded for carries no label information;
- ``shuffled``: each subject's course assigned to a random video and time
  (``control="shuffled"``): inter-subject synchrony destroyed, marginals kept;
- ``no-synchrony``: ``synchrony=0``: no stimulus-locked part at all.

What we expect, written before measuring: pre-training helps at small budgets in
``dynamics`` (PhysioSync's area above no-pretrain's) and not in the controls (areas
equal within their intervals). If it does not help in ``dynamics``, that is a finding to
chase (docs/model.md), not to tune away.

Seeds: a *data seed* seeds the synthetic set and the folds (the study's ``seed``); a
*training seed* seeds pre-training and fine-tuning only (``pretrain.seed``,
``finetune.seed``), so that the training seeds of a data seed share their folds. The
paired result of a row averages the area difference over training seeds within each
data seed (training seeds are not independent replicates: they share data and folds),
then tests the data-seed means with a one-sample t-test (independent data sets); with
one data seed it gives the difference only.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

#: make_deap options of each condition (all on the felt-trajectory simulator's streams).
CONDITIONS = {
    "dynamics": {"affect": "dynamics"},
    "static-affect": {"affect": "dynamics", "control": "static-affect"},
    "shuffled": {"affect": "dynamics", "control": "shuffled"},
    "no-synchrony": {"affect": "dynamics", "synchrony": 0.0},
}
PROTOCOLS = ("within-trial-kfold", "subject-stimulus-kfold")
PIPELINES = ("physiosync", "no-pretrain", "simclr", "bandpower", "de-lr")


def _config(args, root: Path, cache: Path, protocol: str, data_seed: int, train_seed: int):
    from physiosync import load_config
    from physiosync.config import PRESETS

    demo = PRESETS["demo"]
    overrides = {
        "seed": data_seed,
        "data": {"root": str(root), "cache_dir": str(cache), "target": args.target},
        "protocol": {"name": protocol, "n_splits": args.folds, "pooled": False,
                     "one_class": "constant", "labelled_trials": args.budgets,
                     "permutations": args.permutations},
        "pretrain": {**demo["pretrain"], "seed": train_seed},
        "finetune": {**demo["finetune"], "seed": train_seed, "select": "last"},
        "pipelines": list(args.pipelines),
    }
    if args.quick:  # every stage at minimal sizes: a smoke test of the script only
        overrides["pretrain"].update(steps=5, batch_slots=4, group_size=1)
        overrides["finetune"].update(epochs=2)
    return load_config(["demo", overrides], args.set or None)


def run_one(args, condition: str, protocol: str, data_seed: int, train_seed: int,
            scratch: Path) -> dict:
    """One study: its label-efficiency section, reduced to numbers."""
    from physiosync import run_experiment
    from physiosync.synthetic import make_deap

    data = scratch / f"{condition}_d{data_seed}"
    root = data / "data_preprocessed_python"
    if not root.is_dir():  # written aside and renamed: a cut-short write is never reused
        partial = data / f".partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        make_deap(partial, n_subjects=args.subjects, n_trials=args.trials,
                  seconds=args.seconds, effect=args.effect, seed=data_seed, verbose=False,
                  **CONDITIONS[condition])
        os.replace(partial, root)
    cfg = _config(args, root, data / "cache", protocol, data_seed, train_seed)
    t0 = time.perf_counter()
    report = run_experiment(cfg, data / f"run_{protocol}_t{train_seed}", html=False,
                            verbose=False)["report"]
    section = report["label_efficiency"]
    comps = {c["baseline"]: c for c in section["comparisons"]}
    return {"condition": condition, "protocol": protocol, "data_seed": data_seed,
            "train_seed": train_seed, "seconds": round(time.perf_counter() - t0, 1),
            "budgets": section["budgets"], "labelled": section["labelled"],
            "level": next((c.get("level") for c in comps.values()), None),
            "pipelines": {name: {"curve": [p["mean"] for p in points],
                                 "chance": [p["chance"] for p in points],
                                 "auc": section["auc"][name]["value"],
                                 "auc_difference": (comps[name]["mean"] if name in comps
                                                    else None),
                                 "auc_difference_p": (comps[name]["p_value"]
                                                      if name in comps else None)}
                          for name, points in section["curves"].items()}}


def _key(run: dict) -> tuple:
    return (run["condition"], run["protocol"], run["data_seed"], run["train_seed"])


def _fmt(x, digits=3) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}f}"


def paired_row(runs: list, name: str) -> dict:
    """PhysioSync's area minus *name*'s: per data seed (mean over training seeds), tested
    over data seeds with a one-sample t-test."""
    from scipy.stats import ttest_1samp

    by_seed = {}
    for r in runs:
        d = r["pipelines"][name]["auc_difference"]
        if d is not None and np.isfinite(d):
            by_seed.setdefault(r["data_seed"], []).append(d)
    means = np.array([np.mean(v) for v in by_seed.values()])
    out = {"mean": float(means.mean()) if means.size else None, "n_data_seeds": int(means.size),
           "p_value": None}
    if means.size >= 2 and np.ptp(means) > 0:
        out["p_value"] = float(ttest_1samp(means, 0.0).pvalue)
    return out


def markdown(runs: list, args) -> str:
    """One table per protocol: rows condition x pipeline, budgets as columns."""
    lines = []
    budgets = runs[0]["budgets"] if runs else []
    for protocol in args.protocols:
        lines += [f"### {protocol}", "",
                  "| condition | pipeline | " + " | ".join(budgets) + " | area | "
                  "PhysioSync − pipeline (area), mean over data seeds | p (t over data seeds) |",
                  "|---|---|" + "---:|" * (len(budgets) + 3)]
        for condition in args.conditions:
            sel = [r for r in runs if r["condition"] == condition and r["protocol"] == protocol]
            if not sel:
                continue
            for name in args.pipelines:
                curve = np.nanmean([r["pipelines"][name]["curve"] for r in sel], axis=0)
                auc = np.nanmean([r["pipelines"][name]["auc"] for r in sel])
                paired = paired_row(sel, name) if name != args.pipelines[0] else None
                lines.append(
                    f"| {condition} | {name} | " + " | ".join(_fmt(v) for v in curve)
                    + f" | {_fmt(auc)} | "
                    + ("" if paired is None else f"{_fmt(paired['mean'])} "
                       f"(n = {paired['n_data_seeds']})")
                    + " | " + ("" if paired is None or paired["p_value"] is None
                               else f"{paired['p_value']:.3g}") + " |")
        lines.append("")
    total = sum(r["seconds"] for r in runs)
    labelled = runs[0]["labelled"] if runs else {}
    lines += [
        f"Synthetic DEAP ({args.subjects} subjects x {args.trials} videos x {args.seconds:g} s, "
        f"effect {args.effect:g}, target {args.target}); {args.folds} folds, one model per "
        f"subject where the protocol allows; budgets {', '.join(budgets)} labelled training "
        f"videos per subject (mean used: "
        + ", ".join(f"{b}: {_fmt(v, 1)}" for b, v in labelled.items())
        + f"); the demo's model sizes (spectral embedding); data seeds "
        f"{', '.join(map(str, sorted({r['data_seed'] for r in runs})))}, training seeds "
        f"{', '.join(map(str, sorted({r['train_seed'] for r in runs})))}"
        f"{' (--quick: smoke-test sizes, numbers meaningless)' if args.quick else ''}. "
        f"Cells: per-subject balanced accuracy, mean over subjects, then over seeds. "
        f"Wall time {total:.0f} s ({total / 60:.1f} min), {args.threads} torch threads.", ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", required=True, help="Markdown file to write (+ .json beside)")
    parser.add_argument("--data-seeds", type=int, default=5, help="data seeds 0..N-1 (5)")
    parser.add_argument("--train-seeds", type=int, default=3,
                        help="training seeds 0..N-1 per data seed (3)")
    parser.add_argument("--conditions", default=",".join(CONDITIONS),
                        help=f"comma-separated, of {', '.join(CONDITIONS)}")
    parser.add_argument("--protocols", default=",".join(PROTOCOLS),
                        help=f"comma-separated, of {', '.join(PROTOCOLS)}")
    parser.add_argument("--pipelines", default=",".join(PIPELINES),
                        help="comma-separated; the first is the primary (PhysioSync)")
    parser.add_argument("--budgets", default="2,4,8,16,all",
                        help="labelled training trials per subject (default 2,4,8,16,all)")
    parser.add_argument("--subjects", type=int, default=8, help="subjects (8)")
    parser.add_argument("--trials", type=int, default=24, help="videos per subject (24)")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds per video (30)")
    parser.add_argument("--effect", type=float, default=2.0, help="emotion effect (2)")
    parser.add_argument("--target", default="valence", help="valence or arousal")
    parser.add_argument("--folds", type=int, default=4, help="protocol.n_splits (4)")
    parser.add_argument("--permutations", type=int, default=0,
                        help="protocol.permutations per budget (0)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="a configuration override, as physiosync cv --set (repeatable)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--scratch", help="folder for the data and runs (default: temporary)")
    parser.add_argument("--keep", action="store_true",
                        help="use --scratch itself and keep its data and runs, so that a "
                             "study cut short resumes from its finished folds")
    parser.add_argument("--fresh", action="store_true",
                        help="ignore the studies already in the JSON beside --out")
    parser.add_argument("--shard", type=int, default=0, help="this process's shard (0)")
    parser.add_argument("--shards", type=int, default=1,
                        help="split the studies over this many processes (1); each writes "
                             "its own --out")
    parser.add_argument("--tabulate", nargs="+", metavar="JSON",
                        help="run nothing: write the table of the studies in these files")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: 5 pre-training steps, 2 epochs")
    args = parser.parse_args(argv)
    args.conditions = [c for c in args.conditions.split(",") if c]
    unknown = [c for c in args.conditions if c not in CONDITIONS]
    if unknown:
        parser.error(f"unknown condition(s) {unknown}; choose from {list(CONDITIONS)}")
    args.protocols = [p for p in args.protocols.split(",") if p]
    args.pipelines = [p for p in args.pipelines.split(",") if p]
    args.budgets = [b if b == "all" else int(b) for b in args.budgets.split(",") if b]

    out = Path(args.out)
    if args.tabulate:  # only the table, from finished studies (e.g. of several shards)
        runs = sorted((r for f in args.tabulate for r in json.loads(Path(f).read_text())),
                      key=_key)
        out.write_text(markdown(runs, args))
        print(out.read_text())
        return 0

    import torch

    torch.set_num_threads(args.threads)
    out.parent.mkdir(parents=True, exist_ok=True)
    log = out.with_suffix(".json")
    # Resume: studies already in the JSON beside --out are kept, not rerun; a study cut
    # short resumes from its finished folds when --scratch is a persistent folder.
    runs = json.loads(log.read_text()) if log.is_file() and not args.fresh else []
    done = {_key(r) for r in runs}
    # Data seeds outermost: every finished block of one data seed is a complete replicate
    # of the whole design, so a table cut short is still balanced.
    plan = [(c, p, d, t) for d in range(args.data_seeds) for t in range(args.train_seeds)
            for p in args.protocols for c in args.conditions]
    plan = [s for i, s in enumerate(plan) if i % args.shards == args.shard]
    with contextlib.ExitStack() as stack:
        scratch = (Path(args.scratch) if args.scratch and args.keep
                   else Path(stack.enter_context(tempfile.TemporaryDirectory(dir=args.scratch))))
        for condition, protocol, data_seed, train_seed in plan:
            if (condition, protocol, data_seed, train_seed) in done:
                continue
            runs.append(run_one(args, condition, protocol, data_seed, train_seed, scratch))
            print(json.dumps({k: runs[-1][k] for k in (
                "condition", "protocol", "data_seed", "train_seed", "seconds")}), flush=True)
            tmp = log.with_name(f".{log.name}.{os.getpid()}.tmp")
            tmp.write_text(json.dumps(runs, indent=1))
            os.replace(tmp, log)  # atomic: an interrupted write never loses finished studies
    runs.sort(key=_key)
    text = markdown(runs, args)
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
