"""The whole baseline suite on synchrony-enabled synthetic data, over several seeds.

    python benchmarks/baselines.py --out results/baselines.md [--seeds 3] [--quick]
    python benchmarks/baselines.py --dataset seed --out results/seed.md [--seeds 1]

For every seed the script writes a synthetic copy of ``--dataset`` (default DEAP) with
stimulus-locked synchrony, in the dataset's real format by its own writer
(:func:`physiosync.synthetic.make_deap`, ``make_seed``, ...; the seed also seeds the run,
as ``--set seed=N`` would) and runs the dataset's preset ``<dataset>_baselines`` on it
(``deap_baselines``, ``seed_baselines``, ...): every pipeline of the suite on the same
held-out-stimulus folds (``within-trial-kfold``, one model per subject), with a
within-subject permutation p-value per pipeline and paired differences to PhysioSync.
The model sizes are the demo's (``--config demo``: the spectral embedding, 300
pre-training steps), because the authors' sizes in the config are far too large for the
synthetic data; the protocol, the pipelines and the permutations are the config's.
``--trials`` is the writer's ``n_trials`` (SEED, SEED-IV: clips per session).

``--full-size`` runs instead on the copy of the real release's size
(``benchmarks/_full_size.py``: 40 AMIGOS participants, 27 MAHNOB-HCI subjects, 15 SEED
subjects x 3 sessions, ...; written once into ``--scratch``, data seed 0). Fine-tuning then
keeps the preset's schedule (its epochs and batch size; the demo's 12 epochs of batch 32
are meant for a few hundred windows, not tens of thousands), and ``--deep-epochs`` sets the
braindecode baselines' epochs (default: the preset's). One seed only: the copy is one data
set. ``--keep`` keeps the run folder too, and a run cut short resumes from its finished
folds when ``--scratch`` is kept.

It prints, and writes to ``--out``, a Markdown table with one row per pipeline: the
headline (``subject.balanced_accuracy``) as mean ± SD over seeds and per seed, its chance
level, the permutation p-value per seed, the paired difference to the first pipeline
(mean over seeds) and the wall time per seed. Everything, per seed, is written beside it
with the suffix ``.json``, and each seed's full report (``report.md``, ``report.json``) is
kept under ``--keep`` when given.

Wall time of a pipeline: from the ``pipeline <name>`` line of the run's ``run.log`` to the
next one; the last pipeline's also holds building the report (the permutation tests of
every pipeline). Data writing and preparation are timed apart.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sys
import tempfile
import time
import warnings
from datetime import datetime
from pathlib import Path

import numpy as np

from _study import seed_study_parser  # benchmarks/_study.py, beside this script

HEADLINE = "subject.balanced_accuracy"


def _preset(dataset: str) -> str:
    """The shipped baseline-suite preset of *dataset* (``physiosync/configs/``)."""
    return f"{dataset.replace('-', '_')}_baselines"


def _config(args, root: Path, cache: Path, seed: int):
    from physiosync import load_config
    from physiosync.config import PRESETS

    demo = PRESETS["demo"]
    sizes = {"pretrain": demo["pretrain"], "finetune": dict(demo["finetune"])}
    if args.full_size:  # the preset's schedule over the demo's model (module docstring)
        schedule = PRESETS[_preset(args.dataset)]["finetune"]
        sizes["finetune"].update({k: schedule[k] for k in ("epochs", "batch_size")
                                  if k in schedule})
        if args.deep_epochs is not None:
            sizes["baselines"] = {"deep": {"epochs": args.deep_epochs}}
    # threads in the config too: the run sets torch's and the BLAS pools' threads from it
    # (default: the CPUs this process may use, OMP_NUM_THREADS included), which would
    # override --threads
    overrides = {"seed": seed, "threads": args.threads, "protocol": {"n_splits": args.folds}}
    if args.quick:  # every stage, minimal sizes: a smoke test of the script only
        overrides["pretrain"] = {"steps": 5, "batch_slots": 4, "group_size": 1}
        overrides["finetune"] = {"epochs": 2}
        overrides["protocol"]["permutations"] = 99
    if args.pipelines:
        overrides["pipelines"] = args.pipelines.split(",")
    return load_config([_preset(args.dataset), sizes, overrides], args.set or None,
                       data={"root": str(root), "cache_dir": str(cache)})


def _pipeline_seconds(log: Path, names: list, end: float) -> dict:
    """Seconds per pipeline from the ``pipeline <name>`` lines of ``run.log``."""
    starts = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        stamp, _, message = line.partition(" INFO ")
        if message.startswith("pipeline ") and message[9:] in names:
            try:
                starts[message[9:]] = datetime.strptime(
                    stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
            except ValueError:
                continue
    out = {}
    for i, name in enumerate(names):
        nxt = starts.get(names[i + 1]) if i + 1 < len(names) else end
        out[name] = (round(nxt - starts[name], 1)
                     if name in starts and nxt is not None else None)
    return out


def _write_data(args, folder: Path, seed: int) -> Path:
    """The synthetic copy of ``args.dataset`` for *seed*, by the dataset's own writer
    (DEAP: ``folder/data_preprocessed_python``); returns its data root."""
    from physiosync.dataset_specs import dataset_spec
    from physiosync.synthetic import make_deap

    if args.full_size:
        entry = _full_size_entry(args.dataset)
        # one copy for every run in --scratch, written once ("complete" marks it)
        return entry.write(folder.parent / entry.folder)
    if args.dataset == "deap":
        return make_deap(folder / "data_preprocessed_python", n_subjects=args.subjects,
                         n_trials=args.trials, seconds=args.seconds, effect=args.effect,
                         seed=seed, synchrony=args.synchrony, verbose=False)
    spec = dataset_spec(args.dataset)
    module, _, name = next(iter(spec.synthetic.values())).partition(":")
    writer = getattr(__import__(module, fromlist=[name]), name)
    return writer(folder / args.dataset, n_subjects=args.subjects, n_trials=args.trials,
                  seconds=args.seconds, effect=args.effect, seed=seed,
                  synchrony=args.synchrony, verbose=False)


def _full_size_entry(dataset: str):
    from _full_size import FULL_SIZE  # benchmarks/_full_size.py, beside this script

    return FULL_SIZE[dataset]


def run_one(args, seed: int, scratch: Path) -> dict:
    """Write one synthetic set, run the suite on it, return the numbers."""
    from physiosync import run_experiment

    tag = f"seed{seed}"
    t0 = time.perf_counter()
    root = _write_data(args, scratch / tag, seed)
    cfg = _config(args, root, scratch / tag / "cache", seed)
    write_seconds = time.perf_counter() - t0
    run_dir = scratch / tag / "run"
    t0 = time.perf_counter()
    result = run_experiment(cfg, run_dir, html=False, verbose=False)
    total = time.perf_counter() - t0
    report = result["report"]
    names = list(report["pipelines"])
    seconds = _pipeline_seconds(run_dir / "run.log", names, time.time())
    comps = {c["baseline"]: c for c in report.get("comparisons") or []}
    out = {}
    for name, part in report["pipelines"].items():
        head, pv = part.get("headline") or {}, part.get("p_value") or {}
        c = comps.get(name) or {}
        out[name] = {"metric": head.get("metric"), "value": head.get("mean"),
                     "chance": head.get("chance"), "p_value": pv.get("p_value"),
                     "difference": c.get("mean"), "difference_ci95": c.get("ci95"),
                     "difference_p": c.get("p_value"), "seconds": seconds.get(name)}
    if args.keep:
        keep = Path(args.keep) / tag
        keep.mkdir(parents=True, exist_ok=True)
        for name in ("report.md", "report.json", "config.yaml", "run.log"):
            if (run_dir / name).is_file():
                shutil.copy2(run_dir / name, keep / name)
    return {"seed": seed, "seconds": round(total, 1), "write_seconds": round(write_seconds, 1),
            "primary": report.get("primary"), "level": next(
                (c.get("level") for c in comps.values()), None), "pipelines": out}


def _num(v):
    return v if isinstance(v, (int, float)) and np.isfinite(v) else None


def _mean_sd(values) -> str:
    values = [v for v in map(_num, values) if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


def _each(values, fmt) -> str:
    return " / ".join("n/a" if _num(v) is None else fmt(v) for v in values)


def _p(v) -> str:
    return "< 0.001" if v < 0.001 else f"{v:.3g}"


def _headline_text(runs: list) -> str:
    metric = next((p.get("metric") for r in runs for p in r["pipelines"].values()
                   if p.get("metric")), HEADLINE)
    words = {"subject.balanced_accuracy": "per-subject balanced accuracy",
             "subject.macro_f1": "per-subject macro F1"}
    return f"{words.get(metric, metric)}, mean over subjects"


def markdown(runs: list, args) -> str:
    """The result table: one row per pipeline, seeds side by side."""
    seeds = [r["seed"] for r in runs]
    primary = runs[0]["primary"] if runs else "physiosync"
    level = next((r["level"] for r in runs if r["level"]), "subject")
    lines = [
        "| pipeline | headline, mean ± SD over seeds | per seed | chance | permutation p "
        f"per seed | {primary} − pipeline, mean over seeds | wall time per seed (s) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    names = list(dict.fromkeys(n for r in runs for n in r["pipelines"]))
    for name in names:
        parts = [r["pipelines"].get(name, {}) for r in runs]
        diffs = [p.get("difference") for p in parts]
        lines.append(
            f"| {name} | {_mean_sd([p.get('value') for p in parts])} | "
            f"{_each([p.get('value') for p in parts], lambda v: f'{v:.3f}')} | "
            f"{_mean_sd([p.get('chance') for p in parts]).split(' ±')[0]} | "
            f"{_each([p.get('p_value') for p in parts], _p)} | "
            f"{'' if name == primary else _mean_sd(diffs)} | "
            f"{_each([p.get('seconds') for p in parts], lambda v: f'{v:.0f}')} |")
    total = sum(r["seconds"] for r in runs)
    writing = sum(r["write_seconds"] for r in runs)
    from physiosync.dataset_specs import dataset_spec

    if args.full_size:
        entry = _full_size_entry(args.dataset)
        kw = entry.arguments()
        data = (f"Synthetic {dataset_spec(args.dataset).display_name} of the real release's "
                f"size ({entry.text()}; {entry.size().bytes / 1e9:.2f} GB), stimulus-locked "
                f"synchrony {kw['synchrony']:g}, emotion effect {kw['effect']:g}; ")
        sizes = ("the demo's model sizes with the preset's fine-tuning schedule"
                 + (f" and {args.deep_epochs} epochs for the braindecode baselines"
                    if args.deep_epochs is not None else ""))
    else:
        data = (f"Synthetic {dataset_spec(args.dataset).display_name} with stimulus-locked "
                f"synchrony {args.synchrony:g}, emotion effect "
                f"{args.effect:g}: {args.subjects} subjects x {args.trials} "
                f"{'videos' if args.dataset == 'deap' else 'clips'} x {args.seconds:g} s; ")
        sizes = "the demo's model sizes"
    lines += [
        "",
        data +
        f"the `{_preset(args.dataset)}` preset (within-trial-kfold, {args.folds} folds, one "
        f"model per subject, held-out stimuli; comparisons paired by {level}) with {sizes}; "
        f"seeds {', '.join(map(str, seeds))}"
        f"{' (--quick: smoke-test sizes, numbers meaningless)' if args.quick else ''}"
        f"{'; overrides ' + ', '.join(f'`{o}`' for o in args.set) if args.set else ''}. "
        f"Headline: {_headline_text(runs)}. Wall time: "
        f"{total:.0f} s of cross-validation ({total / 60:.1f} min) and {writing:.0f} s of "
        f"writing data, {args.threads} torch threads.",
        "",
    ]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = seed_study_parser(__doc__)
    parser.add_argument("--dataset", default="deap",
                        help="dataset whose synthetic copy and `<dataset>_baselines` preset "
                             "are used (default deap)")
    parser.add_argument("--subjects", type=int, default=10, help="subjects (default 10)")
    parser.add_argument("--trials", type=int, default=24, help="videos per subject (24)")
    parser.add_argument("--seconds", type=float, default=15.0, help="seconds per video (15)")
    parser.add_argument("--effect", type=float, default=2.0, help="emotion effect (2)")
    parser.add_argument("--synchrony", type=float, default=1.0,
                        help="stimulus-locked synchrony of the data (default 1)")
    parser.add_argument("--folds", type=int, default=3, help="protocol.n_splits (default 3)")
    parser.add_argument("--pipelines", help="comma-separated pipelines instead of the "
                                            "config's (default: the whole suite)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="a configuration override, as physiosync cv --set (repeatable), "
                             "e.g. protocol.pooled=true")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--scratch", help="folder for the data and runs (default: temporary)")
    parser.add_argument("--keep", help="folder to keep each seed's report.md/report.json in")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: tiny data and 5 pre-training steps")
    parser.add_argument("--full-size", action="store_true",
                        help="the copy of the real release's size (benchmarks/_full_size.py) "
                             "instead of --subjects/--trials/--seconds; one seed")
    parser.add_argument("--deep-epochs", type=int,
                        help="with --full-size: epochs of eegnet, shallow-fbcsp and deep4 "
                             "(default: the preset's)")
    args = parser.parse_args(argv)
    if args.full_size and (args.quick or args.seeds != 1):
        parser.error("--full-size runs one seed (--seeds 1) and not --quick")
    if args.deep_epochs is not None and not args.full_size:
        parser.error("--deep-epochs goes with --full-size")
    if args.quick:
        args.subjects, args.trials, args.seconds, args.folds = 3, 8, 10.0, 2
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if Path(args.out).suffix == ".json":
        parser.error("--out is the Markdown file; the JSON is written beside it")

    import torch

    torch.set_num_threads(args.threads)
    # per-subject scores of a fold whose test windows hold one class: expected, and said so
    # in the report (one-class counts); thousands of lines of them would hide the progress
    warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
    warnings.filterwarnings("ignore", message="A single label was found in 'y_true'")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = []
    if args.scratch:
        Path(args.scratch).mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        # --full-size with --scratch: the copy (GBs) and the run folder are kept there, so
        # that a second run reuses the copy and a run cut short resumes
        tmp = (Path(args.scratch) if args.full_size and args.scratch
               else Path(stack.enter_context(tempfile.TemporaryDirectory(dir=args.scratch))))
        for seed in range(args.seeds):
            runs.append(run_one(args, seed, tmp))
            heads = ", ".join(f"{n} {p['value']:.3f} ({p['seconds']} s)"
                              if _num(p["value"]) is not None else f"{n} n/a"
                              for n, p in runs[-1]["pipelines"].items())
            print(f"seed {seed}: {heads}; {runs[-1]['seconds']:.0f} s", file=sys.stderr,
                  flush=True)
    table = markdown(runs, args)
    out.write_text(table)
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    out.with_suffix(".json").write_text(json.dumps(
        {"settings": settings, "config": _preset(args.dataset), "runs": runs},
        indent=2))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
