"""``physiosync demo``: write a small synthetic copy of a dataset, cross-validate, report.

:data:`DEMO_DATA` declares, per dataset, the synthetic copy the demo writes (sizes in the
writer's own terms, the writer's other arguments, how its clip lengths come out);
:func:`cmd_demo` writes it with the dataset's synthetic writer
(:attr:`DatasetSpec.synthetic <physiosync.dataset_specs.DatasetSpec.synthetic>`),
layers the ``demo`` preset, switches ``data.name`` and runs the study.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .._version import __version__
from ..exceptions import PhysioSyncError
from ._common import load_run_config, print_cost, print_result, start_lines
from ._study import _folds_text


def _spread(n_trials, seconds, seed):
    from ..synthetic.dreamer import synthetic_clip_seconds

    return synthetic_clip_seconds(n_trials, seconds, seed)


def _amigos(n_trials, seconds, seed):
    from ..synthetic.amigos import amigos_clip_seconds

    return amigos_clip_seconds(n_trials, seconds, seed)


def _seed(n_trials, seconds, seed):
    from ..synthetic.seed import seed_clip_seconds

    return seed_clip_seconds(seconds)[:n_trials]


def _seed_iv(n_trials, seconds, seed):
    import numpy as np

    from ..synthetic.seed import seed_iv_clip_seconds

    return np.concatenate([v[:n_trials] for v in seed_iv_clip_seconds(seconds, seed).values()])


@dataclass(frozen=True)
class DemoData:
    """The synthetic copy that ``physiosync demo --dataset NAME`` writes.

    Parameters
    ----------
    subjects, trials, seconds : int, int, float
        The writer's ``n_subjects``, ``n_trials`` (videos or clips per subject; per
        session where the dataset has several) and ``seconds`` (its meaning is the
        writer's: every stimulus lasts it in DEAP, clips are spread around it
        elsewhere, see *clips*); ``--subjects``, ``--trials``, ``--seconds`` replace them.
    path : str
        Where under ``--out`` the writer writes (the writer's ``out``).
    trial_word : str
        What the dataset calls its trials ("videos", "film clips", "clips").
    clips : callable or None
        ``clips(trials, seconds, seed)``: every clip's length in seconds as the writer
        makes it (printed as a range); ``None`` where each lasts *seconds*.
    writer_args : dict
        Further arguments of the writer.
    note : str
        A line on what the copy holds besides the sizes (printed under the first step).
    effect, synchrony : float
        The writer's emotion effect and stimulus-locked synchrony (``--effect``,
        ``--synchrony`` replace them).
    """

    subjects: int
    trials: int
    seconds: float
    path: str
    trial_word: str
    clips: Callable | None = None
    writer_args: dict = field(default_factory=dict)
    note: str = ""
    effect: float = 3.0
    synchrony: float = 1.0


#: The demo's synthetic copy of each dataset with a synthetic writer, by ``data.name``.
#: Sizes keep every run well under 3 minutes on 2 CPU cores (docs/benchmarks.md) with
#: clips long enough for the demo preset's 5 s windows. DEAP's entry is the demo of
#: ``physiosync demo`` without ``--dataset``.
DEMO_DATA = {
    "deap": DemoData(6, 12, 30.0, "data_preprocessed_python", "videos"),
    "dreamer": DemoData(
        6, 12, 30.0, "DREAMER.mat", "film clips", _spread,
        writer_args={"baseline_seconds": 10.0},
        note="each clip's neutral baseline lasts 10 s (61 s in the release)"),
    "amigos": DemoData(
        6, 12, 30.0, "AMIGOS", "videos", _amigos,
        note="with the release's quirks: an empty trial (P02) and a trial holding NaN (P01), "
             "which the reader reports and skips"),
    "mahnob": DemoData(
        6, 10, 30.0, "MAHNOB-HCI", "clips", _spread,
        note="with the release's 30 s rest before and after each clip and its quirks: "
             "unrated neutral-clip sessions, trials missing for subject 2 and a subject "
             "without usable sessions, which the reader lists and skips"),
    # SEED and SEED-IV: every clip of every session (the reader warns about each file
    # that lacks some), short enough that four subjects stay quick; uncompressed, which
    # the readers take as well: zlib saves 3 % of simulated EEG and takes 4 times longer.
    "seed": DemoData(4, 15, 12.0, "SEED_EEG", "clips", _seed,
                     writer_args={"compress": False},
                     note="the release's 15 clips per session, shortened; MAT-files "
                          "uncompressed (the release's are compressed)"),
    # the shortest clip (12 of the release's 4 s feature windows) must hold a 5 s window
    "seed-iv": DemoData(4, 24, 15.0, "SEED_IV", "clips", _seed_iv,
                        writer_args={"compress": False},
                        note="the release's 24 clips per session, shortened; MAT-files "
                             "uncompressed (the release's are compressed)"),
}


def demo_datasets() -> tuple:
    """The datasets ``physiosync demo --dataset`` writes: every one with a synthetic
    writer of its own name (:data:`DEMO_DATA` declares its copy)."""
    from ..dataset_specs import DATASET_SPECS

    return tuple(n for n, s in DATASET_SPECS.items() if n in s.synthetic and n in DEMO_DATA)


def _check_options(args, spec, sizes, synchrony: float) -> None:
    """Refuse, in one line and before anything is printed or written, sizes that are not
    positive and simulation options the dataset's writer cannot take (the writer checks
    its own maxima)."""
    from ..synthetic._simulate import check_simulation_options

    subjects, trials, seconds = sizes
    if subjects < 1 or trials < 1 or not seconds > 0:
        raise PhysioSyncError(f"--subjects, --trials and --seconds must be positive, got "
                              f"{subjects}, {trials} and {seconds:g}.")
    if spec.rating_scale is None and args.affect != "static":
        raise PhysioSyncError(
            f"--affect {args.affect} needs rated trials, and {spec.display_name} has "
            f"emotion classes only (its writer simulates static affect): leave --affect "
            "out or give --affect static.")
    check_simulation_options(synchrony, 0.0, affect=args.affect,
                             affect_share=args.affect_share, control=args.control)


def _sizes(demo: DemoData, subjects, trials, seconds, seed, spec) -> str:
    """What the demo writes, in the dataset's terms: "6 subjects x 12 videos x 30 s"."""
    sessions = f" x {len(spec.sessions)} sessions" if len(spec.sessions) > 1 else ""
    if demo.clips is None:
        return f"{subjects} subjects{sessions} x {trials} {demo.trial_word} x {seconds:g} s"
    lengths = demo.clips(trials, seconds, seed)
    low, high = int(min(lengths)), int(max(lengths))
    span = f"{low} s" if low == high else f"{low}-{high} s"
    return f"{subjects} subjects{sessions} x {trials} {demo.trial_word} of {span}"


def cmd_demo(args) -> int:
    from ..config import PRESETS, run_notes
    from ..dataset_specs import DATASET_SPECS, synthetic_writer
    from ..experiment import run_experiment

    name = args.dataset
    spec, demo = DATASET_SPECS[name], DEMO_DATA[name]
    subjects, trials, seconds = (demo.subjects if args.subjects is None else args.subjects,
                                 demo.trials if args.trials is None else args.trials,
                                 demo.seconds if args.seconds is None else args.seconds)
    effect = demo.effect if args.effect is None else args.effect
    synchrony = demo.synchrony if args.synchrony is None else args.synchrony
    affect = args.affect
    _check_options(args, spec, (subjects, trials, seconds), synchrony)
    out = Path(args.out)
    data_dir = out / demo.path
    print(f"physiosync {__version__} demo")
    print(f"1/3 writing a synthetic {spec.display_name} set "
          f"({_sizes(demo, subjects, trials, seconds, args.seed, spec)}, effect "
          f"{effect:g}, synchrony {synchrony:g}, affect {affect}) to {data_dir}")
    if demo.note:
        print(f"    {demo.note}")
    root = synthetic_writer(name)(
        data_dir, n_subjects=subjects, n_trials=trials, seconds=seconds, effect=effect,
        seed=args.seed, synchrony=synchrony, affect=affect, affect_share=args.affect_share,
        control=args.control, **demo.writer_args)
    if Path(root) != data_dir:
        print(f"    data root: {root}")
    # The demo preset classifies valence; a dataset without it gets its default target.
    layer = ([] if PRESETS["demo"]["data"]["target"] in spec.targets
             else [{"data": {"target": spec.default_target}}])
    args.config = ["demo", *layer, *(args.config or [])]
    args.data_root = str(root)
    args.cache_dir = str(out / "cache")
    cfg = load_run_config(args)
    # a categorical target (SEED's emotion) with its classes, in label order
    classes = spec.classes.get(cfg.data.target)
    target = cfg.data.target + (f" ({', '.join(classes)})" if classes else "")
    print(f"2/3 cross-validating {', '.join(p['name'] for p in cfg.pipelines)} "
          f"({cfg.protocol.name}, {_folds_text(cfg.protocol)}, target {target}): "
          "prepare, pre-train, fine-tune, predict")
    emb = sorted({cfg.pretrain_long.embedding, cfg.pretrain_short.embedding})
    print(f"    model: a small PhysioSync with the {' and '.join(emb)} embedding"
          + (" (per-channel log band energy; not the authors' multi-view embedding, which "
             "does not learn the effect at this size)" if emb == ["spectral"] else ""))
    for note in run_notes(cfg):
        print(f"    {note}")
    result = run_experiment(cfg, out / "run", resume=not args.no_resume,
                            overwrite=args.overwrite, on_start=start_lines(cfg),
                            on_cost=lambda c: print_cost(c, args),
                            time_cost=not args.no_estimate)
    print(f"3/3 report written in {result['seconds']:.0f} s")
    print()
    print_result(result, significance="--folds, --subjects")
    return 0
