"""Does pre-training profit from stimulus-locked synchrony? Synthetic DEAP, off vs on.

    python benchmarks/synchrony.py --out results/synchrony.md [--seeds 3] [--quick]
    python benchmarks/synchrony.py --held-out --out results/held_out.md [--steps 150,600]

For every seed and every synchrony level (default ``0`` and ``1``) the script writes a
synthetic DEAP set (demo size by default: 6 subjects x 12 videos x 30 s, emotion
effect 1.5, so that accuracy is not saturated) and cross-validates, under the same
folds, with held-out stimuli (``within-trial-kfold``, 4 folds, one pooled model):

* ``physiosync-multiview``: LS-TCL + CM-CA pre-training with the authors' multi-view
  embedding, then fine-tuning;
* ``no-pretrain-multiview``: the same model fine-tuned from random weights;
* ``physiosync-spectral``: pre-training with the spectral (log-energy) embedding;
* ``bandpower``: log band powers + logistic regression.

The model sizes are the demo's (``--config demo``) with two subjects per synchrony group
(``pretrain.group_size=2``, the reference's). Per pipeline and synchrony level it
reports the headline (``subject.balanced_accuracy``, or ``window.balanced_accuracy``
when the report has no per-subject level) as mean +/- SD over seeds, and for the
pre-trained pipelines the final pre-training loss (mean of the last 20 % of the steps,
over folds and both window lengths) next to the loss of a collapsed encoder
(:func:`physiosync.models.losses.collapsed_loss`). It writes a Markdown table to ``--out`` and
all numbers, per seed, beside it with the suffix ``.json``.

``--held-out`` measures instead the pre-training diagnostic alone (about 4 min for the
default 150 and 600 steps): the synchrony test's configuration
(tests/synthetic/test_simulation.py, 8 subjects x 8 videos x 30 s, effect 0, multi-view, B = 6,
two subjects per side) on iid noise, synchrony off and synchrony on, with two held-out
sets the encoder never trains on: two unseen videos (all subjects) and four unseen
subjects (all videos). Per condition it gives the training loss (mean of the last
20 % of the steps) and, on the held-out batches, the loss and each term's retrieval
accuracy (mean of the last 4 of 20 evaluations) beside the random encoder's (step 0),
the collapsed level and chance. The streams (initial weights, batches, augmentation,
held-out slots) are the same across conditions.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _study import seed_study_parser  # benchmarks/_study.py, beside this script

#: The compared pipelines (``base`` + dotted overrides, see physiosync.config).
PIPELINES = [
    {"name": "physiosync-multiview", "base": "physiosync",
     "set": {"pretrain.embedding": "multiview"}},
    {"name": "no-pretrain-multiview", "base": "no-pretrain",
     "set": {"pretrain.embedding": "multiview"}},
    {"name": "physiosync-spectral", "base": "physiosync",
     "set": {"pretrain.embedding": "spectral"}},
    "bandpower",
]
HEADLINES = ("subject.balanced_accuracy", "window.balanced_accuracy")


def _headline(part: dict) -> tuple[str | None, float | None]:
    """The headline metric of one pipeline's report, read defensively."""
    summary = part.get("summary") or {}
    for key in HEADLINES:
        value = summary.get(key)
        if isinstance(value, dict):
            value = value.get("mean")
        if isinstance(value, (int, float)) and np.isfinite(value):
            return key, float(value)
    return None, None


def _pretrain_tail(part: dict) -> dict | None:
    """Final pre-training loss (mean of the last 20 % of steps) and the collapsed level."""
    pre = (part.get("curves") or {}).get("pretrain") or {}
    tails, floors = [], []
    for entries in pre.values():
        for e in entries if isinstance(entries, list) else []:
            loss = np.asarray(e.get("loss") or [], dtype=float)
            if loss.size:
                tails.append(float(loss[-max(loss.size // 5, 1):].mean()))
            if isinstance(e.get("collapsed"), (int, float)):
                floors.append(float(e["collapsed"]))
    if not tails:
        return None
    return {"final_loss": float(np.mean(tails)),
            "collapsed": float(np.mean(floors)) if floors else None}


def _config(args, root: Path, cache: Path):
    from physiosync import load_config

    overrides = {
        "seed": 0,
        "protocol": {"name": "within-trial-kfold", "n_splits": args.folds, "pooled": True,
                     "one_class": "constant"},
        "pretrain": {"group_size": 2},
        "pipelines": PIPELINES,
    }
    if args.quick:  # every stage, minimal sizes: a smoke test of the script only
        overrides["pretrain"].update(steps=5, batch_slots=4, group_size=1)
        overrides["finetune"] = {"epochs": 2}
    return load_config("demo", overrides,
                       data={"root": str(root), "cache_dir": str(cache)})


def run_one(args, seed: int, synchrony: float, scratch: Path) -> dict:
    """Write one synthetic set, cross-validate every pipeline, return the numbers."""
    from physiosync import run_experiment
    from physiosync.synthetic import make_deap

    tag = f"seed{seed}_sync{synchrony:g}"
    root = make_deap(scratch / tag / "data_preprocessed_python", n_subjects=args.subjects,
                     n_trials=args.trials, seconds=args.seconds, effect=args.effect,
                     seed=seed, synchrony=synchrony)
    t0 = time.perf_counter()
    result = run_experiment(_config(args, root, scratch / tag / "cache"), scratch / tag / "run",
                            html=False, verbose=False)
    seconds = time.perf_counter() - t0
    out = {}
    for name, part in result["report"]["pipelines"].items():
        metric, value = _headline(part)
        out[name] = {"metric": metric, "value": value, "pretrain": _pretrain_tail(part)}
    return {"seed": seed, "synchrony": synchrony, "seconds": round(seconds, 1),
            "pipelines": out}


def _fmt(values) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "n/a"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


def markdown(runs: list, args) -> str:
    """The result table: one row per pipeline and synchrony level."""
    metrics = {p["metric"] for r in runs for p in r["pipelines"].values() if p["metric"]}
    metric = " / ".join(sorted(metrics)) or "headline"
    lines = [
        "# Stimulus-locked synchrony: pre-training on synthetic DEAP",
        "",
        f"{args.subjects} subjects x {args.trials} videos x {args.seconds:g} s, effect "
        f"{args.effect:g}; within-trial-kfold ({args.folds} folds, pooled model), held-out "
        f"stimuli; seeds {', '.join(str(s) for s in sorted({r['seed'] for r in runs}))}"
        f"{' (--quick: smoke-test sizes, numbers meaningless)' if args.quick else ''}.",
        "Mean ± SD over seeds. Pre-training loss: mean of the last 20 % of the steps, over "
        "folds and window lengths; collapsed: the loss of an encoder whose embeddings are "
        "all equal (below it, pre-training found something the positives share).",
        "",
        f"| pipeline | synchrony | {metric} | final pre-training loss | collapsed |",
        "|---|---:|---:|---:|---:|",
    ]
    names = list(dict.fromkeys(n for r in runs for n in r["pipelines"]))
    for name in names:
        for sync in sorted({r["synchrony"] for r in runs}):
            parts = [r["pipelines"][name] for r in runs
                     if r["synchrony"] == sync and name in r["pipelines"]]
            pre = [p["pretrain"] for p in parts if p["pretrain"]]
            lines.append(
                f"| {name} | {sync:g} | {_fmt([p['value'] for p in parts])} | "
                f"{_fmt([p['final_loss'] for p in pre]) if pre else '-'} | "
                f"{_fmt([p['collapsed'] for p in pre]) if pre else '-'} |")
    total = sum(r["seconds"] for r in runs)
    lines += ["", f"Cross-validation wall time: {total:.0f} s over {len(runs)} runs.", ""]
    return "\n".join(lines)


#: The synchrony test's configuration (tests/synthetic/test_simulation.py), steps set per run.
HELD_OUT_CONFIG = dict(embedding="multiview", embed_dim=16, depth=1, n_heads=2, n_prompts=1,
                       projector_dims=(32, 32), cmca_dim=16, batch_slots=6, group_size=2,
                       lr=1e-3, seed=0)
TERMS = ("temporal_eeg", "temporal_pps", "cmca")


def held_out_study(args, scratch: Path) -> str:
    """The held-out diagnostic on noise / synchrony off / on; a Markdown table."""
    from physiosync.datasets import DEAP
    from physiosync.models.losses import collapsed_loss
    from physiosync.params import PretrainConfig
    from physiosync.preprocessing.cache import prepare
    from physiosync.preprocessing.windows import make_windows
    from physiosync.synthetic import make_deap
    from physiosync.training.pretrain import pretrain
    from physiosync.training.sampling import SlotData

    data = {}
    for sync, name in ((0.0, "off"), (1.0, "on")):
        root = make_deap(scratch / f"sync{sync:g}", n_subjects=8, n_trials=8, seconds=30.0,
                         effect=0.0, seed=0, synchrony=sync)
        data[name] = SlotData.from_windows(
            make_windows(prepare(DEAP(root), cache_dir=False), lengths=(5.0,)), 5.0)
    ref, rng = data["on"], np.random.default_rng(0)
    data = {"noise": SlotData({m: rng.standard_normal(v.shape).astype(np.float32)
                               for m, v in ref.x.items()}, ref.valid, ref.subjects,
                              ref.trials), **data}
    splits = {"unseen videos": np.zeros(ref.shape, bool),
              "unseen subjects": np.zeros(ref.shape, bool)}
    splits["unseen videos"][:, 6:] = True
    splits["unseen subjects"][4:] = True
    b = HELD_OUT_CONFIG["batch_slots"]
    lines = [
        "# Held-out diagnostic of pre-training (synchrony test configuration)", "",
        f"Collapsed total {collapsed_loss(b):.2f}; retrieval chance 1/{2 * b - 1} = "
        f"{1 / (2 * b - 1):.3f}. Held-out: mean of the last 4 of 20 evaluations "
        "(random: the initial weights).", "",
        "| held out | steps | data | training loss | held-out loss (random) | "
        + " | ".join(f"retrieval {t} (random)" for t in TERMS) + " |",
        "|---|---:|---|---:|---:|" + "---:|" * len(TERMS)]
    for steps in args.held_out_steps:
        for how, held in splits.items():
            for name, d in data.items():
                _, hist = pretrain(d, PretrainConfig(**HELD_OUT_CONFIG, steps=steps),
                                   allowed=~held, held_out=held, device="cpu", verbose=False)
                pts = [e["held_out"] for e in hist if "held_out" in e]
                late = {k: np.mean([p[k] for p in pts[-4:]]) for k in pts[0]}
                tail = np.mean([e["loss"] for e in hist][-len(hist) // 5:])
                lines.append(f"| {how} | {steps} | {name} | {tail:.2f} | {late['loss']:.2f} "
                             f"({pts[0]['loss']:.2f}) | " + " | ".join(
                                 f"{late[f'retrieval_{t}']:.3f} ({pts[0][f'retrieval_{t}']:.3f})"
                                 for t in TERMS) + " |")
                print(lines[-1], file=sys.stderr, flush=True)
    return "\n".join(lines + [""])


def main(argv=None) -> int:
    parser = seed_study_parser(__doc__)
    parser.add_argument("--synchrony", default="0,1",
                        help="comma-separated synchrony levels (default 0,1)")
    parser.add_argument("--effect", type=float, default=1.5, help="emotion effect (1.5)")
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--folds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--scratch", help="folder for the data and runs (default: temporary)")
    parser.add_argument("--quick", action="store_true",
                        help="smoke test: tiny data and 5 pre-training steps")
    parser.add_argument("--held-out", action="store_true",
                        help="the held-out diagnostic of pre-training alone (see above)")
    parser.add_argument("--steps", default="150,600",
                        help="--held-out: comma-separated step counts (default 150,600)")
    args = parser.parse_args(argv)
    if args.held_out:
        import torch

        torch.set_num_threads(1)
        args.held_out_steps = [int(v) for v in args.steps.split(",") if v.strip()]
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=args.scratch) as tmp:
            table = held_out_study(args, Path(tmp))
        out.write_text(table)
        print(table)
        return 0
    if args.quick:
        args.subjects, args.trials, args.seconds, args.folds = 4, 4, 10.0, 2
    try:
        levels = [float(s) for s in args.synchrony.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--synchrony must be comma-separated numbers, got {args.synchrony!r}")
    if args.seeds < 1 or not levels:
        parser.error("need at least one seed and one synchrony level")
    if Path(args.out).suffix == ".json":
        parser.error("--out is the Markdown file; the JSON is written beside it")

    import torch

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    runs = []
    with tempfile.TemporaryDirectory(dir=args.scratch) as tmp:
        for seed in range(args.seeds):
            for sync in levels:
                runs.append(run_one(args, seed, sync, Path(tmp)))
                heads = ", ".join(f"{n} {p['value']:.3f}" if p["value"] is not None
                                  else f"{n} n/a" for n, p in runs[-1]["pipelines"].items())
                print(f"seed {seed} synchrony {sync:g}: {heads} ({runs[-1]['seconds']:.0f} s)",
                      file=sys.stderr, flush=True)
    table = markdown(runs, args)
    out.write_text(table)
    settings = {k: v for k, v in vars(args).items() if k != "out"}
    out.with_suffix(".json").write_text(
        json.dumps({"settings": settings, "pipelines": PIPELINES, "runs": runs}, indent=2))
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
