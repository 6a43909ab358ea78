"""The ``physiosync`` command line. Each subcommand parses options and calls the library."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from ._logging import set_log_level
from .exceptions import PhysioSyncError


def _open_dataset(kind: str, path):
    from .datasets import DEAP, DREAMER

    return DREAMER(path) if kind == "dreamer" else DEAP(path)


def cmd_synth(args) -> int:
    from .datasets import synthetic

    writer = {"deap": synthetic.make_deap, "deap-bdf": synthetic.make_deap_bdf,
              "dreamer": synthetic.make_dreamer}[args.kind]
    kwargs = {k: v for k, v in (("n_subjects", args.subjects), ("n_trials", args.trials),
                                ("seconds", args.seconds), ("effect", args.effect),
                                ("seed", args.seed)) if v is not None}
    out = writer(args.out, **kwargs)
    print(f"wrote synthetic {args.kind} data to {out}")
    return 0


def cmd_info(args) -> int:
    from .summary import subject_summary

    ds = _open_dataset(args.dataset, args.path)
    print(repr(ds))
    rec = ds.load_subject(ds.subjects[0])
    print(repr(rec))
    print(subject_summary(ds).round(2).to_string())
    return 0


def cmd_prepare(args) -> int:
    from .prepare import prepare
    from .preprocessing import PrepareParams
    from .windowing import make_windows

    ds = _open_dataset(args.dataset, args.path)
    modalities = tuple(args.modalities.split(",")) if args.modalities else (
        ("eeg", "ecg") if args.dataset == "dreamer" else ("eeg", "gsr"))
    params = PrepareParams(modalities=modalities, baseline=args.baseline)
    prepared = prepare(ds, params=params, cache_dir=args.cache_dir)
    windows = make_windows(prepared, lengths=(1.0, 5.0))
    for length in windows.lengths:
        print(f"{length:g} s windows: {len(windows.metadata(length))}")
    return 0


def cmd_demo(args) -> int:
    from .datasets import DEAP
    from .datasets.synthetic import make_deap
    from .prepare import prepare
    from .summary import subject_summary
    from .windowing import make_windows

    out = Path(args.out)
    data_dir = out / "data_preprocessed_python"
    print(f"physiosync {__version__} demo: writing a synthetic DEAP set to {data_dir}")
    make_deap(data_dir, n_subjects=args.subjects, n_trials=args.trials, seconds=args.seconds,
              effect=args.effect, seed=args.seed)
    ds = DEAP(data_dir)
    prepared = prepare(ds, cache_dir=out / "cache")
    windows = make_windows(prepared, lengths=(1.0, 5.0))
    table = subject_summary(ds)
    table["windows_1s"] = [len(windows.metadata(1.0).query("subject == @s")) for s in table.index]
    table["windows_5s"] = [len(windows.metadata(5.0).query("subject == @s")) for s in table.index]
    print()
    print(table.round(2).to_string())
    print()
    print(f"prepared EEG+GSR (baseline deviation, z-scored) cached in {out / 'cache'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``physiosync`` command."""
    parser = argparse.ArgumentParser(
        prog="physiosync", description="Emotion recognition from EEG and peripheral physiology.")
    parser.add_argument("--version", action="version", version=f"physiosync {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress (INFO)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write a format-faithful synthetic dataset")
    p.add_argument("kind", choices=["deap", "deap-bdf", "dreamer"])
    p.add_argument("out", help="output folder (DREAMER: folder or .mat path)")
    p.add_argument("--subjects", type=int, help="number of subjects")
    p.add_argument("--trials", type=int, help="trials (videos/clips) per subject")
    p.add_argument("--seconds", type=float, help="stimulus length in seconds")
    p.add_argument("--effect", type=float, help="emotion effect strength (0 = none)")
    p.add_argument("--seed", type=int, help="random seed")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("info", help="summarise a DEAP or DREAMER copy")
    p.add_argument("dataset", choices=["deap", "dreamer"])
    p.add_argument("path", help="DEAP folder or DREAMER.mat")
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("prepare", help="baseline-correct, normalise, window and cache")
    p.add_argument("dataset", choices=["deap", "dreamer"])
    p.add_argument("path", help="DEAP folder or DREAMER.mat")
    p.add_argument("--modalities", help="comma-separated, e.g. eeg,gsr")
    p.add_argument("--baseline", default="deviation", choices=["deviation", "mean", "none"])
    p.add_argument("--cache-dir", help="cache folder (default: ~/.cache/physiosync)")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("demo", help="run the demo pipeline on synthetic DEAP data")
    p.add_argument("--out", default="physiosync_demo", help="output folder")
    p.add_argument("--subjects", type=int, default=4)
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--effect", type=float, default=2.0)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv=None) -> int:
    """Entry point of the ``physiosync`` console script."""
    args = build_parser().parse_args(argv)
    if args.verbose:
        set_log_level("info")
    try:
        return args.func(args)
    except PhysioSyncError as err:
        print(f"physiosync: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
