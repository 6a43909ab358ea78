"""What ``PhysioSyncClassifier.fit`` costs, small and reference-size, on one data set.

    python benchmarks/estimator.py [--config small,reference] [--subjects 6 --trials 12
                                    --seconds 30] [--threads 1] [--out estimator.json] [-v]

Writes a synthetic DEAP (the demo's size by default: 6 subjects x 12 videos x 30 s,
so 432 windows of 5 s; untimed), cuts 5 s windows with
:meth:`~physiosync.preprocessing.windows.WindowSet.to_sklearn`, holds out a quarter
of the videos, and fits the classifier of each configuration on the rest (324 windows),
as the README's snippet does. Per configuration it reports the wall and CPU seconds
of ``fit``, the seconds of pre-training (both runs) and of fine-tuning from the
fit's history (training passes; not the validation passes), the fine-tuning seconds
per window of ``X_train`` and epoch (what grows with the data: pre-training is a fixed
number of steps), and the held-out window accuracy.

``small`` is the configuration the README shows next to the reference one (the
demo's model size); ``reference`` is the README's reference call (the classifier's
defaults: the authors' multi-view embedding, 640-token long encoders, a 1024-2048-4096
projector), with 500 pre-training steps and 6 epochs.
"""

from __future__ import annotations

import argparse
import json
import resource
import tempfile
import time
from pathlib import Path

#: The README's two configurations (keep them identical to its snippet).
CONFIGS = {
    "small": dict(embedding="spectral", embed_dim=32, depth=1, n_heads=2, n_prompts=1,
                  projector_dims=(128, 128), batch_slots=6, pretrain_steps=300, epochs=12,
                  batch_size=32),
    "reference": dict(pretrain_steps=500, epochs=6),
}


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="small,reference")
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--trials", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="fit with verbose='info' (its progress lines on stderr)")
    args = parser.parse_args(argv)

    import torch
    from sklearn.model_selection import GroupShuffleSplit

    from physiosync import PhysioSyncClassifier
    from physiosync.datasets import DEAP
    from physiosync.preprocessing.cache import prepare
    from physiosync.preprocessing.windows import make_windows
    from physiosync.synthetic import make_deap

    torch.set_num_threads(args.threads)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = make_deap(Path(tmp) / "deap", n_subjects=args.subjects, n_trials=args.trials,
                         seconds=args.seconds, seed=0, verbose=False)
        windows = make_windows(prepare(DEAP(root), cache_dir=False), lengths=(5.0,))
        X, y, ids = windows.to_sklearn(5.0, target="valence")
        train, test = next(GroupShuffleSplit(test_size=0.25, random_state=0)
                           .split(X, y, groups=ids["trial"]))
        for name in args.config.split(","):
            clf = PhysioSyncClassifier(n_eeg_channels=32, random_state=0,
                                       verbose="info" if args.verbose else None,
                                       **CONFIGS[name])
            t0, c0 = time.perf_counter(), _cpu_seconds()
            clf.fit(X[train], y[train], **ids.iloc[train])
            wall, cpu = time.perf_counter() - t0, _cpu_seconds() - c0
            hist = clf.history_
            pre = sum(r["seconds"] for k in ("pretrain_long", "pretrain_short")
                      for r in hist.get(k, []))
            fine = sum(r["seconds"] for r in hist["finetune"])
            row = {"config": name, "settings": CONFIGS[name], "threads": args.threads,
                   "windows": {"train": int(len(train)), "test": int(len(test))},
                   "fit_wall_s": round(wall, 1), "fit_cpu_s": round(cpu, 1),
                   "pretrain_s": round(pre, 1), "finetune_s": round(fine, 1),
                   "finetune_ms_per_window_epoch": round(
                       1000 * fine / (len(train) * clf.epochs), 2),
                   "test_accuracy": round(float(clf.score(X[test], y[test])), 3)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
