"""The cost of every shipped configuration, for the header of its YAML file.

    python benchmarks/config_costs.py [--scratch DIR] [--steps 3] [--write] [FILE.yaml ...]

For each configuration (default: every shipped preset, ``physiosync/configs/*.yaml``) it
runs the estimate of
``physiosync cv --dry-run`` (:func:`physiosync.experiment.estimate_cost`) on synthetic
data of the real dataset's size, written once into ``--scratch`` (untimed), as
``benchmarks/_full_size.py`` declares it for every dataset with a synthetic writer: DEAP
32 subjects x 40 videos x 60 s, DREAMER 23 subjects x 18 clips of 199 s +/- 30 % (the
release's mean clip length), AMIGOS, MAHNOB-HCI, SEED and SEED-IV as their releases; the
demo preset on the demo's own data (6 x 12 x 30 s).
``tiny.yaml`` sets sizes only and is estimated layered over ``deap_within.yaml``, and
``deap_ablations.yaml`` over ``deap_within.yaml``, as their headers say to use them.

Two costs per configuration, one JSON line each on stdout, and with ``--write`` three
comment lines at the top of its YAML file (replacing those of an earlier run):

- **2-core CPU, estimated**: the dry run's estimate on this machine (a few timed steps of
  each network, multiplied out), with the load average at the time;
- **one GPU, derived, not measured**: every training step of a network taken as
  ``25 ms + FLOP / 11 TFLOP/s``, a line through the three H200 step times of
  docs/scaling.md (1 s pre-training step 5.75 GFLOP in 26 ms, 5 s step 40.8 GFLOP in
  28 ms, fine-tuning step at B = 256 343 GFLOP in 57 ms), with the FLOPs of one step of
  each network counted by ``torch.utils.flop_counter`` on these windows; the estimators
  (band power, DE, stimulus prior) keep their CPU time; forward-only passes (validation,
  prediction, held-out diagnostic) are left out.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import re
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _full_size import FULL_SIZE  # noqa: E402  (beside this script)

REPO = Path(__file__).resolve().parent.parent
CONFIGS = REPO / "physiosync" / "configs"
#: Configurations that are layered over another one, as their headers say.
LAYERED = {"tiny.yaml": "deap_within.yaml", "deap_ablations.yaml": "deap_within.yaml"}
#: The derived GPU step: fixed seconds and sustained FLOP/s (see the module docstring).
GPU_FIXED_S, GPU_FLOPS = 0.025, 11e12
#: Every header line this script writes starts with this.
MARK = "# cost"


def _data(scratch: Path, name: str) -> Path:
    """The synthetic data of *name* (a dataset of :data:`FULL_SIZE`, or ``demo``), written
    once into *scratch*."""
    from physiosync.cli._demo import DEMO_DATA
    from physiosync.synthetic import make_deap

    if name in FULL_SIZE:
        return FULL_SIZE[name].write(scratch / name)
    root = scratch / name
    done = root / "complete"
    if not done.exists():
        demo = DEMO_DATA["deap"]
        make_deap(root, n_subjects=demo.subjects, n_trials=demo.trials,
                  seconds=demo.seconds, effect=demo.effect, synchrony=demo.synchrony,
                  seed=0, **demo.writer_args)
        done.write_text("")
    return root


def _config(path: Path, scratch: Path):
    from physiosync.config import load_config

    files = [str(CONFIGS / LAYERED[path.name]), str(path)] if path.name in LAYERED \
        else [str(path)]
    raw = load_config(files)
    data = "demo" if path.name == "demo.yaml" else raw.data.name
    return load_config(files, [f"data.root={_data(scratch, data)}",
                               f"data.cache_dir={scratch / 'cache'}"]), data


def _flops(fn) -> float:
    """FLOPs of one call of *fn*, counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return float(counter.get_total_flops())


def _gpu_step(flops: float) -> float:
    return GPU_FIXED_S + flops / GPU_FLOPS


def _gpu_seconds(cfg, plan, estimate, flops_cache: dict) -> dict:
    """Derived seconds on one GPU, per pipeline (see the module docstring)."""
    from physiosync.config import pipeline_config
    from physiosync.evaluation.pipelines import get_pipeline_kind
    from physiosync.evaluation.runner import EstimatorRunner, PhysioSyncRunner
    from physiosync.training.finetune import _balanced, finetune
    from physiosync.training.pretrain import time_pretrain

    slots = plan["data"].slots
    shapes = repr({m: (slots.n_chans(m), slots.n_times(m)) for m in slots.modalities})
    cells = slots.cells(plan["folds"][0].train)
    y = slots.labels[cells[:, 0], cells[:, 1]]
    out = {}
    for spec in cfg.pipelines:
        row = estimate.table.loc[spec["name"]]
        pc = pipeline_config(cfg, spec)
        model = get_pipeline_kind(spec["kind"]).fold_runner(pc, plan["data"])
        if isinstance(model, PhysioSyncRunner):
            seconds = 0.0
            mods = model.finetune_config.modalities
            for name, sub, pcfg in (("long", 1, model.long_config),
                                    ("short", model.n_sub, model.short_config)):
                if row[f"pretrain_steps_{name}"]:
                    key = ("pretrain", shapes, sub, repr(pcfg), repr(mods), model.objective)
                    if key not in flops_cache:
                        flops_cache[key] = _flops(lambda: time_pretrain(
                            slots, pcfg, n_sub=sub, modalities=mods, device="cpu",
                            objective=model.objective, steps=1, warmup=0))
                    seconds += row[f"pretrain_steps_{name}"] * _gpu_step(flops_cache[key])
            ft = model.finetune_config
            key = ("finetune", shapes, repr(ft), repr(model.long_config),
                   repr(model.short_config))
            if key not in flops_cache:
                one = dataclasses.replace(ft, epochs=1, scheduler="none", select="last")
                flops_cache[key] = _flops(lambda: finetune(
                    slots, _balanced(cells, y, ft.batch_size), config=one, n_sub=model.n_sub,
                    long_config=model.long_config, short_config=model.short_config,
                    device="cpu", verbose=False))
            seconds += row["finetune_steps"] * _gpu_step(flops_cache[key])
        elif isinstance(model, EstimatorRunner) and row["finetune_steps"]:  # braindecode
            clf = model.factory()
            key = ("deep", shapes, repr(clf.get_params()), repr(model.modalities))
            if key not in flops_cache:
                rows = _tensor(_balanced(cells, y, clf.batch_size))
                X = {m: slots.gather(m, rows[:, 0], rows[:, 1], rows[:, 2]).numpy()
                     for m in model.modalities or slots.modalities}
                labels = slots.labels[rows[:, 0].numpy(), rows[:, 1].numpy()]
                fit = clf.set_params(n_epochs=1)
                flops_cache[key] = _flops(lambda: fit.fit(X, labels))
            seconds = row["finetune_steps"] * _gpu_step(flops_cache[key])
        else:  # estimators run on the CPU either way
            seconds = float(row["seconds"])
        out[spec["name"]] = seconds
    return out


def _tensor(a):
    import torch

    return torch.from_numpy(np.asarray(a, dtype=np.int64))


def _size_text(data: str) -> str:
    if data in FULL_SIZE:
        entry = FULL_SIZE[data]
        what = " of the real size" if entry.full else ""
        return f"synthetic {entry.spec.display_name}{what}, {entry.text()}"
    return "the demo's synthetic DEAP, 6 subjects x 12 videos x 30 s"


def header(path: Path, data: str, estimate, gpu: dict, load: tuple) -> list:
    """The header lines of a configuration's YAML file."""
    from physiosync.experiment.estimate import format_duration

    t = estimate.table
    parts = []
    for name, row in t.iterrows():
        what = [f"{row['models']} models"]
        if row["pretrain_runs"]:
            what.append(f"{row['pretrain_runs']} pre-training runs of "
                        f"{row['pretrain_steps_long']} + {row['pretrain_steps_short']} steps")
        if row["finetune_epochs"]:
            what.append(f"{row['finetune_epochs']} epochs, {row['finetune_steps']} steps")
        parts.append(f"{name} {format_duration(row['seconds'])} ({', '.join(what)})")
    over = f", layered over {LAYERED[path.name]}" if path.name in LAYERED else ""
    today = datetime.date.today().isoformat()
    return [
        f"{MARK} on a 2-core CPU: about {format_duration(estimate.seconds)} per run (estimated by "
        f"`physiosync cv --dry-run` on {_size_text(data)}{over}; "
        f"benchmarks/config_costs.py, {today}, {estimate.threads} torch "
        f"thread{'s' if estimate.threads != 1 else ''}, load average "
        f"{min(load):.1f}-{max(load):.1f} while timing)",
        f"{MARK} per pipeline: " + "; ".join(parts),
        f"{MARK} on one GPU: about {format_duration(sum(gpu.values()))} per run (derived, not "
        f"measured: {GPU_FIXED_S * 1e3:.0f} ms + FLOP / {GPU_FLOPS / 1e12:.0f} TFLOP/s per "
        "training step, fitted to the H200 step times in docs/scaling.md; estimators at "
        "their CPU time)",
    ]


def write_header(path: Path, lines: list) -> None:
    """Replace the ``# cost`` lines at the top of *path* with *lines* (atomically)."""
    from physiosync._utils import atomic_write

    text = path.read_text().splitlines(keepends=True)
    while text and text[0].startswith(MARK):
        text.pop(0)
    atomic_write(path, "".join(line + "\n" for line in lines) + "".join(text))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="*", type=Path)
    parser.add_argument("--scratch", type=Path, default=Path("config_costs_scratch"),
                        help="folder for the synthetic data and its cache (kept)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per network")
    parser.add_argument("--write", action="store_true",
                        help="write the header lines into the YAML files")
    args = parser.parse_args(argv)
    import physiosync
    from physiosync.experiment import estimate_cost, plan_experiment

    paths = args.configs or sorted(CONFIGS.glob("*.yaml"))
    # the networks are timed once for all configurations (the same network on windows of
    # the same shapes), so every header gives the load over the whole measurement
    timings, flops, loads, done = {}, {}, [], []
    for path in paths:
        cfg, data = _config(path, args.scratch)
        plan = plan_experiment(cfg, verbose=False)
        loads.append(os.getloadavg()[0])
        estimate = estimate_cost(cfg, plan, steps=args.steps, timings=timings, verbose=False)
        loads.append(os.getloadavg()[0])
        gpu = _gpu_seconds(cfg, plan, estimate, flops)
        done.append((path, data, estimate, gpu))
    for path, data, estimate, gpu in done:
        lines = header(path, data, estimate, gpu, (min(loads), max(loads)))
        print(json.dumps({"config": path.name, "cpu_s": round(estimate.seconds, 1),
                          "gpu_s": round(sum(gpu.values()), 1),
                          "load": [round(min(loads), 2), round(max(loads), 2)],
                          "threads": estimate.threads, "physiosync": physiosync.__version__,
                          "pipelines": {k: {c: (v.item() if hasattr(v, "item") else v)
                                            for c, v in r.items()}
                                        for k, r in estimate.table.to_dict("index").items()},
                          "gpu_pipelines_s": gpu, "header": lines}), flush=True)
        if args.write:
            write_header(path, lines)
    return 0


#: The format of a header line (tests/interface/test_config_costs.py checks every shipped config).
HEADER_PATTERNS = (
    re.compile(r"^# cost on a 2-core CPU: about \S+ (s|min|h) per run \(estimated by "
               r"`physiosync cv --dry-run` on .+; benchmarks/config_costs\.py, "
               r"\d{4}-\d\d-\d\d, \d+ torch threads?, load average [\d.]+-[\d.]+ "
               r"while timing\)$"),
    re.compile(r"^# cost per pipeline: .+$"),
    re.compile(r"^# cost on one GPU: about \S+ (s|min|h) per run \(derived, not measured: "
               r".+\)$"),
)

if __name__ == "__main__":
    sys.exit(main())
