"""Do frozen LS-TCL encoders carry the emotion better than frozen random ones, per affect mode?

    python benchmarks/frozen_encoders.py [--subjects 4 --trials 12 --seconds 10 --steps 100
                                          --seeds 0,1,2 --conditions dynamics,static-affect,...
                                          --embedding spectral --gsr-norm channel --out f.md]

For each condition (a variant of the synthetic DEAP, all from the same data seed, so
that the conditions are paired draw for draw) the script writes the data, cuts 5 s
windows and, for every training seed, fine-tunes a classification head on *frozen*
encoders of two kinds with the same architecture and seed:

* ``pretrained``: long (5 s) and short (1 s) encoders pre-trained with LS-TCL on the
  training and validation trials of every subject (the held-out test trials are never
  seen, not even without labels);
* ``random``: the same encoders at their initial weights (what pre-training starts from:
  the same seed, the same ``derive_seed(seed, "init")`` stream).

The split is the one of ``tests/training/test_finetune.py``: trials 0-7 train the head, trial 8
selects its epoch, and the last trials are tested for every subject (held-out trials
within subjects, one pooled head). The score is the balanced accuracy of the test
windows, for valence and arousal (pre-training uses no labels: one run serves both).

Conditions: ``static`` (the default simulator), ``dynamics`` (``affect="dynamics"``),
and its paired controls ``static-affect``, ``shuffled`` and ``sync0`` (``synchrony=0``).

Expectation written before the first run (docs/model.md): frozen pre-trained encoders
beat frozen random encoders of the same architecture and seed on held-out trials in
``dynamics`` (what viewers share moment by moment is the felt emotion, which LS-TCL
pulls together), and not in the controls (``static-affect``: the shared course is
label-free; ``shuffled`` and ``sync0``: viewers share no time course).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from physiosync.datasets import DEAP
from physiosync.params import PrepareParams, PretrainConfig
from physiosync.preprocessing.cache import prepare
from physiosync.preprocessing.windows import make_windows
from physiosync.synthetic import make_deap
from physiosync.training.finetune import FinetuneConfig, finetune, predict_proba
from physiosync.training.pretrain import initial_model, pretrain_encoders
from physiosync.training.sampling import SlotData

CONDITIONS = {"static": {}, "dynamics": {"affect": "dynamics"},
              "static-affect": {"affect": "dynamics", "control": "static-affect"},
              "shuffled": {"affect": "dynamics", "control": "shuffled"},
              "sync0": {"affect": "dynamics", "synchrony": 0.0}}
TARGETS = ("valence", "arousal")
N_SUB = 5  # 1 s short windows in 5 s long ones


def windows_of(folder, condition: str, *, n_subjects: int, n_trials: int, seconds: float,
               effect: float, seed: int, gsr_norm: str = "channel"):
    """Write one condition of the synthetic DEAP under *folder* and cut its 5 s windows.

    Parameters
    ----------
    folder : Path
        Scratch folder (a sub-folder per condition is written).
    condition : str
        A key of :data:`CONDITIONS`.
    n_subjects, n_trials, seconds, effect, seed
        As in :func:`physiosync.synthetic.make_deap`.
    gsr_norm : str
        Normalisation of the GSR (``"channel"``, the default, or ``"subject"``, which keeps
        the amplitude of responses).

    Returns
    -------
    windows : WindowSet
        The 5 s windows of every subject.
    """
    root = make_deap(Path(folder) / condition, n_subjects=n_subjects, n_trials=n_trials,
                     seconds=seconds, effect=effect, seed=seed, verbose=False,
                     **CONDITIONS[condition])
    params = PrepareParams(norm={"gsr": gsr_norm})
    return make_windows(prepare(DEAP(root), params=params, cache_dir=False, verbose=False),
                        lengths=(5.0,))


def random_encoders(data: SlotData, config: PretrainConfig) -> dict:
    """The encoders pre-training starts from (:func:`~physiosync.training.pretrain.initial_model`).

    Parameters
    ----------
    data : SlotData
        Long windows (their shapes size the encoders).
    config : PretrainConfig
        The pre-training configuration, whose seed sets the initial weights.

    Returns
    -------
    encoders : dict
        ``{"long": PretrainModel, "short": PretrainModel}`` in eval mode.
    """
    return {name: initial_model(data, config, n_sub=n_sub).eval()
            for name, n_sub in (("long", 1), ("short", N_SUB))}


def frozen_scores(data: dict, config: PretrainConfig, seed: int, *, n_test: int = 3,
                  epochs: int = 15, pretrained: dict | None = None) -> dict:
    """Balanced accuracy of heads on frozen pre-trained and frozen random encoders.

    Parameters
    ----------
    data : dict of str -> SlotData
        The same windows with each target's labels, ``{"valence": ..., "arousal": ...}``.
    config : PretrainConfig
        Pre-training configuration (its seed is replaced by *seed*).
    seed : int
        Seed of the pre-training, of the random encoders and of the head.
    n_test : int
        The last *n_test* trials are held out (never pre-trained on); the one before
        them selects the head's epoch and the others train it.
    epochs : int
        Fine-tuning epochs of the head.
    pretrained : dict | None
        Pre-trained encoders to use instead of running pre-training (a cache).

    Returns
    -------
    scores : dict
        ``{(kind, target): balanced accuracy}`` with kind ``"pretrained"`` or
        ``"random"``, and ``"encoders"``: the pre-trained encoders.
    """
    from sklearn.metrics import balanced_accuracy_score

    first = next(iter(data.values()))
    n_trials = first.valid.shape[1]
    val_trial = n_trials - n_test - 1
    cfg = replace(config, seed=seed)
    if pretrained is None:
        allowed = first.valid.copy()
        allowed[:, val_trial + 1:] = False  # pre-training never sees the test trials
        runs = pretrain_encoders(first, cfg, allowed=allowed, n_sub=N_SUB, device="cpu",
                                 verbose=False)
        pretrained = {name: model for name, (model, _) in runs.items()}
    kinds = {"pretrained": pretrained, "random": random_encoders(first, cfg)}
    out = {"encoders": pretrained}
    for target, d in data.items():
        s, t, w = np.nonzero(d.valid)
        cells = np.column_stack([s, t, w])
        train, val = cells[t < val_trial], cells[t == val_trial]
        test = cells[t > val_trial]
        y = d.labels[test[:, 0], test[:, 1]]
        ft = FinetuneConfig(epochs=epochs, batch_size=16, hidden=(32, 16), seed=seed,
                            freeze_encoders=True)
        for kind, enc in kinds.items():
            model, _ = finetune(d, train, val_cells=val, config=ft, pretrained=enc,
                                n_sub=N_SUB, device="cpu", verbose=False)
            pred = predict_proba(model, d, test).argmax(1)
            out[kind, target] = float(balanced_accuracy_score(y, pred))
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--test-trials", type=int, default=3)
    parser.add_argument("--effect", type=float, default=3.0)
    parser.add_argument("--data-seed", type=int, default=0)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--conditions", default="dynamics,static-affect,shuffled,sync0")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--lr", type=float, default=7e-4)
    parser.add_argument("--embed-dim", type=int, default=16)
    parser.add_argument("--embedding", default="spectral")
    parser.add_argument("--group-size", type=int, default=2)
    parser.add_argument("--batch-slots", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--gsr-norm", default="channel")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="markdown table to write")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    seeds = [int(s) for s in args.seeds.split(",")]
    config = PretrainConfig(embed_dim=args.embed_dim, depth=1, n_heads=2, n_prompts=0,
                            projector_dims=(32, 32), cmca_dim=16, steps=args.steps,
                            lr=args.lr, embedding=args.embedding, group_size=args.group_size,
                            batch_slots=args.batch_slots)
    rows = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for cond in args.conditions.split(","):
            win = windows_of(tmp, cond, n_subjects=args.subjects, n_trials=args.trials,
                             seconds=args.seconds, effect=args.effect, seed=args.data_seed,
                             gsr_norm=args.gsr_norm)
            data = {t: SlotData.from_windows(win, 5.0, target=t) for t in TARGETS}
            res = {}
            for seed in seeds:
                r = frozen_scores(data, config, seed, n_test=args.test_trials,
                                  epochs=args.epochs)
                for key, v in r.items():
                    if key != "encoders":
                        res.setdefault(key, []).append(v)
            rows.append((cond, res))
            print(json.dumps({"condition": cond, **{f"{k}/{t}": v for (k, t), v in res.items()},
                              "elapsed_s": round(time.perf_counter() - t0, 1)}), flush=True)
    lines = [f"{args.subjects} subjects x {args.trials} trials x {args.seconds:g} s, effect "
             f"{args.effect:g}, data seed {args.data_seed}, seeds {args.seeds}, "
             f"{args.embedding} D={args.embed_dim}, {args.steps} steps, lr {args.lr:g}, "
             f"GSR norm {args.gsr_norm}; {time.perf_counter() - t0:.0f} s", "",
             "| condition | target | pretrained | random | mean difference |",
             "|---|---|---|---|---:|"]
    for cond, res in rows:
        for t in TARGETS:
            p, r = res["pretrained", t], res["random", t]
            lines.append(f"| {cond} | {t} | {' '.join(f'{v:.2f}' for v in p)} | "
                         f"{' '.join(f'{v:.2f}' for v in r)} | "
                         f"{np.mean(np.subtract(p, r)):+.3f} |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
