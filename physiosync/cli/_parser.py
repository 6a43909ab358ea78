"""The parser of the ``physiosync`` command: its subcommands and their options.

:func:`build_parser` adds one subparser per command (each by its ``_add_<command>``
function, in the order ``physiosync --help`` lists them) and the option groups that
several commands share (``_add_run_options``, ``--threads``, ``-q``, ...). Each
subparser's ``func`` is the command that runs it (:mod:`._data`, :mod:`._model`,
:mod:`._study`).
"""

from __future__ import annotations

import argparse

from .._version import __version__
from .. import params
from ..dataset_specs import synthetic_kinds
from ._data import cmd_info, cmd_prepare, cmd_synth
from ._model import cmd_finetune, cmd_pretrain
from ._demo import DEMO_DATA, cmd_demo, demo_datasets
from ._study import cmd_configs, cmd_cv, cmd_report


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``physiosync`` command."""
    parser = argparse.ArgumentParser(
        prog="physiosync", description="Emotion recognition from EEG and peripheral physiology.")
    parser.add_argument("--version", action="version", version=f"physiosync {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log progress (INFO), as verbose='info' in the library")
    sub = parser.add_subparsers(dest="command", required=True)

    _add_synth(sub)
    _add_configs(sub)
    _add_info(sub)
    _add_prepare(sub)
    _add_pretrain(sub)
    _add_finetune(sub)
    _add_cv(sub)
    _add_report(sub)
    _add_demo(sub)
    for p in sub.choices.values():  # -v is accepted after the subcommand too
        p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                       help="log progress (INFO), as verbose='info' in the library; on an "
                            "error, print the traceback")
    return parser


def _add_synth(sub) -> None:
    """``synth``: write a synthetic dataset in a real format."""
    p = sub.add_parser("synth", help="write a format-faithful synthetic dataset")
    p.add_argument("kind", choices=list(synthetic_kinds()),
                   help="dataset and format to write (each dataset's synthetic writers)")
    p.add_argument("out", help="output folder (DREAMER: folder or .mat path)")
    p.add_argument("--subjects", type=int, help="number of subjects")
    p.add_argument("--trials", type=int, help="trials (videos/clips) per subject")
    p.add_argument("--seconds", type=float, help="stimulus length in seconds")
    p.add_argument("--effect", type=float, help="emotion effect strength (0 = none)")
    p.add_argument("--synchrony", type=float,
                   help="strength of each video's stimulus-locked time course, shared by its "
                        "viewers and by EEG and peripheral signals (default 1; 0 = none)")
    p.add_argument("--rating-bias", type=float,
                   help="SD of a per-subject rating offset, as a fraction of the rating range, "
                        "e.g. 0.25 (default 0 = none)")
    _add_affect(p, None)
    p.add_argument("--seed", type=int, help="random seed")
    p.set_defaults(func=cmd_synth)


def _add_configs(sub) -> None:
    """``configs``: list the presets, or print or copy one."""
    p = sub.add_parser("configs", help="list the shipped configurations (presets), or print "
                       "one to copy and edit")
    p.add_argument("name", nargs="?", help="a preset to print, e.g. deap_within")
    p.add_argument("--out", metavar="FILE",
                   help="write the preset to FILE instead (never replaces an existing file)")
    p.set_defaults(func=cmd_configs)


def _add_info(sub) -> None:
    """``info``: summarise a copy of a dataset."""
    p = sub.add_parser("info", help="summarise a copy of a dataset")
    p.add_argument("dataset", choices=params.DATASETS)
    p.add_argument("path", help=_roots_help())
    _add_ratings_csv(p)
    p.set_defaults(func=cmd_info)


def _add_prepare(sub) -> None:
    """``prepare``: prepare and cache a dataset's arrays."""
    p = sub.add_parser("prepare", help="baseline-correct, normalise, window and cache")
    p.add_argument("dataset", choices=params.DATASETS)
    p.add_argument("path", help=_roots_help())
    p.add_argument("--modalities", help="comma-separated, e.g. eeg,gsr")
    p.add_argument("--baseline", default=params.PrepareParams.baseline,
                   choices=params.BASELINE_METHODS)
    p.add_argument("--bdf-preprocessing", default=params.PrepareParams.bdf_preprocessing,
                   choices=params.BDF_PREPROCESSING,
                   help="original DEAP .bdf recordings: 'release' (default) resamples to "
                        "128 Hz, band-passes EEG 4-45 Hz and average-references it, like "
                        "the .dat release; 'none' keeps 512 Hz as recorded")
    _add_ratings_csv(p)
    p.add_argument("--cache-dir", help="cache folder (default: ~/.cache/physiosync)")
    p.add_argument("--verify", action="store_true",
                   help="check the checksum of every cached array (reads each in full); "
                        "damaged entries are recomputed")
    p.set_defaults(func=cmd_prepare)


def _add_pretrain(sub) -> None:
    """``pretrain``: pre-train the long and short encoders."""
    p = sub.add_parser("pretrain", help="pre-train the long and short encoders (LS-TCL + CM-CA, "
                       "or the EEG-only SimCLR baseline)")
    _add_run_options(p, protocol=False)
    p.add_argument("--objective", choices=params.PRETRAIN_OBJECTIVES, default="ls-tcl",
                   help="'ls-tcl': inter-subject temporal contrast and CM-CA (PhysioSync); "
                        "'simclr': two augmented views of each EEG window (NT-Xent), EEG "
                        "alone (default: %(default)s)")
    p.add_argument("--out", required=True, help="folder for pretrain_long.pt / pretrain_short.pt")
    _add_no_estimate(p)
    p.add_argument("--resume-with", action="append", metavar="KEY=VALUE",
                   help="resume the checkpoints in --out with a changed optimiser setting, "
                        "e.g. --resume-with lr=1e-4 after a divergence (lr, weight_decay; "
                        "repeatable); recorded in the checkpoint's history")
    p.set_defaults(func=cmd_pretrain)


def _add_finetune(sub) -> None:
    """``finetune``: fine-tune the fusion model on labelled trials."""
    p = sub.add_parser("finetune", help="fine-tune the fusion model on labelled trials")
    _add_run_options(p, protocol=False)
    p.add_argument("--pretrained", help="folder of `physiosync pretrain` checkpoints "
                   "(default: from scratch)")
    p.add_argument("--test-trials", help="comma-separated trials to hold out and score")
    p.add_argument("--out", required=True, help="folder for finetune.pt")
    _add_no_estimate(p)
    p.set_defaults(func=cmd_finetune)


def _add_cv(sub) -> None:
    """``cv``: cross-validate pipelines and write a report."""
    p = sub.add_parser("cv", help="cross-validate pipelines under a protocol and write a report")
    _add_run_options(p)
    p.add_argument("--out", help="run folder (resumable; required unless --dry-run)")
    p.add_argument("--dry-run", action="store_true",
                   help="prepare the data, make the folds, run every check and print the "
                        "plan, without training")
    _add_no_estimate(p)
    p.add_argument("--executor", choices=params.EXECUTORS, default="serial",
                   help="where the (pipeline, fold) units run: one after another here "
                        "(default), in local worker processes, or as Ray tasks; the "
                        "results are the same")
    p.add_argument("--n-jobs", type=int, metavar="K",
                   help="processes: K workers, each with cores // K torch threads (capped "
                        "at the cores); ray: cores // K CPUs per task")
    p.add_argument("--address", help="ray: address of a running cluster (default: start a "
                                     "local Ray instance)")
    p.add_argument("--max-retries", type=int, default=2, metavar="N",
                   help="ray: times a unit whose worker died is run again (default 2)")
    p.set_defaults(func=cmd_cv)


def _add_report(sub) -> None:
    """``report``: re-render a run's report, or merge runs."""
    p = sub.add_parser("report", help="re-render a run's report, or merge runs into one")
    p.add_argument("runs", nargs="+", help="run folder(s) or report.json file(s)")
    p.add_argument("--out", help="output folder (default: the first run)")
    _add_overwrite(p)
    p.set_defaults(func=cmd_report)


def _add_demo(sub) -> None:
    """``demo``: the whole pipeline on a synthetic copy of a dataset."""
    names = demo_datasets()
    p = sub.add_parser("demo", help="the whole pipeline on synthetic data in a dataset's real "
                       f"format ({', '.join(names)}; < 3 min)")
    p.add_argument("--dataset", choices=names, default="deap",
                   help="dataset whose synthetic copy the demo writes and studies, in its "
                        "real format (default: %(default)s)")
    p.add_argument("--out", default="physiosync_demo", help="output folder")

    def per_dataset(key, what):
        values = [getattr(DEMO_DATA[n], key) for n in names]
        if len(set(values)) == 1:
            return f"{what} (default {values[0]:g})"
        return (f"{what} (default per dataset: "
                f"{', '.join(f'{n} {v:g}' for n, v in zip(names, values))})")

    p.add_argument("--subjects", type=int, help=per_dataset("subjects", "subjects"))
    p.add_argument("--trials", type=int,
                   help=per_dataset("trials", "videos or clips per subject (per session on "
                                    "SEED and SEED-IV)"))
    p.add_argument("--seconds", type=float,
                   help=per_dataset("seconds", "stimulus length in seconds (in DEAP each "
                                    "video's; elsewhere the clips are spread around it, as the "
                                    "writer does)"))
    p.add_argument("--effect", type=float,
                   help=per_dataset("effect", "emotion effect strength (0 = none)"))
    p.add_argument("--synchrony", type=float,
                   help=per_dataset("synchrony", "stimulus-locked synchrony of the synthetic "
                                    "data (0 = none)"))
    _add_affect(p, "static")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", action="append",
                   help="YAML file or preset layered over the demo preset (repeatable)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")
    _add_threads(p)
    p.add_argument("--no-resume", action="store_true", help="recompute finished folds")
    _add_no_estimate(p)
    _add_overwrite(p)
    _add_quiet(p)
    p.set_defaults(func=cmd_demo)


def _add_no_estimate(p) -> None:
    p.add_argument("--no-estimate", action="store_true",
                   help="print what each pipeline will train, but do not time a few steps "
                        "of each model to estimate the run's time")


def _add_overwrite(p) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace a different physiosync run found in --out (only the files "
                        "physiosync wrote; a folder with other files is refused)")


def _roots_help() -> str:
    """What the data root of each declared dataset is, for a help text."""
    from ..dataset_specs import DATASET_SPECS

    return "the data: " + "; ".join(f"{name}: {spec.root_description}"
                                     for name, spec in DATASET_SPECS.items())


def _add_run_options(p, *, protocol: bool = True) -> None:
    p.add_argument("--dataset", choices=params.DATASETS, help="dataset format (data.name)")
    p.add_argument("--data-root", help=f"{_roots_help()} (data.root)")
    _add_ratings_csv(p, key=" (data.ratings_csv)")
    p.add_argument("--target", choices=params.TARGETS,
                   help="rating to classify (data.target)")
    if protocol:
        p.add_argument("--protocol", choices=params.PROTOCOLS, help="protocol (protocol.name)")
        p.add_argument("--folds", type=int, help="folds of k-fold protocols (protocol.n_splits)")
        from ..config import PIPELINES

        p.add_argument("--pipelines", help="comma-separated pipelines to compare, e.g. "
                       f"physiosync,no-cmca,bandpower; any of {', '.join(PIPELINES)}")
    p.add_argument("--config", action="append",
                   help="YAML file or preset name (`physiosync configs` lists them, e.g. "
                        "deap_within, tiny; ./tiny for a file of that name); repeat to layer "
                        "them, later ones override earlier ones")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key, e.g. --set pretrain.lr=1e-4 (repeatable)")
    p.add_argument("--seed", type=int, help="global seed")
    p.add_argument("--device", help="torch device (cpu, cuda, mps; default: best available)")
    p.add_argument("--cache-dir", help="cache of prepared arrays (data.cache_dir)")
    _add_threads(p)
    p.add_argument("--no-resume", action="store_true", help="recompute finished folds/steps")
    _add_overwrite(p)
    _add_quiet(p)


def _positive_int(text: str) -> int:
    """An argparse type: a positive integer."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _add_threads(p) -> None:
    p.add_argument("--threads", type=_positive_int, metavar="T",
                   help="threads of each unit of work (config key threads; default: the "
                        "CPUs this process may use, from its affinity, cgroup quota, "
                        "SLURM_CPUS_PER_TASK and OMP_NUM_THREADS; cv divides them between "
                        "its --n-jobs workers). Where other processes keep cores busy, "
                        "--threads 1 keeps threads from waiting for each other "
                        "(docs/benchmarks.md). Results are the same byte for byte under "
                        "every executor for the same T")


def _add_ratings_csv(p, key: str = "") -> None:
    p.add_argument("--ratings-csv", metavar="FILE",
                   help="DEAP's participant_ratings.csv for the original .bdf recordings "
                        "(default: found beside them, or in metadata_csv/)" + key)


def _add_quiet(p) -> None:
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bars, as verbose=False in the library (by default "
                        "they are shown on a terminal); warnings are still shown")


def _add_affect(p, default) -> None:
    """The affect-model options of the synthetic data (``synth`` and ``demo``)."""
    p.add_argument("--affect", choices=params.SYNTHETIC_AFFECT, default=default,
                   help="affect model of the synthetic data: static per-trial gains (default) "
                        "or dynamics (each video's emotion is a trajectory the viewers feel "
                        "and the physiology follows)")
    p.add_argument("--affect-share", type=float,
                   help="with --affect dynamics: share of the stimulus-locked variance that "
                        "is affect-related, in [0, 1] (default 0.5)")
    p.add_argument("--control", choices=params.SYNTHETIC_CONTROLS, default=None if default is None
                   else "none", help="with --affect dynamics: a paired control (static-affect: "
                                     "constant emotion; shuffled: each subject's course from "
                                     "another video and time)")
