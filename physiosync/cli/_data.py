"""The data commands: ``synth`` (write synthetic data), ``info`` and ``prepare``."""

from __future__ import annotations

from .. import params
from ..dataset_specs import synthetic_writer


def _open_dataset(args):
    """The dataset of ``info`` and ``prepare`` (``dataset``, ``path``, ``--ratings-csv``)."""
    from ..datasets import open_dataset

    return open_dataset(args.dataset, args.path, ratings_csv=args.ratings_csv)


def cmd_synth(args) -> int:
    writer = synthetic_writer(args.kind)
    kwargs = {k: v for k, v in (("n_subjects", args.subjects), ("n_trials", args.trials),
                                ("seconds", args.seconds), ("effect", args.effect),
                                ("seed", args.seed), ("synchrony", args.synchrony),
                                ("rating_bias", args.rating_bias), ("affect", args.affect),
                                ("affect_share", args.affect_share),
                                ("control", args.control)) if v is not None}
    out = writer(args.out, **kwargs)
    print(f"wrote synthetic {args.kind} data to {out}")
    return 0


def cmd_info(args) -> int:
    from ..preprocessing.descriptives import subject_summary

    ds = _open_dataset(args)
    print(repr(ds))
    rec = ds.load_subject(ds.subjects[0])
    print(repr(rec))
    print(subject_summary(ds).round(2).to_string())
    return 0


def cmd_prepare(args) -> int:
    from ..preprocessing.cache import prepare
    from ..params import PrepareParams
    from ..preprocessing.windows import make_windows

    ds = _open_dataset(args)
    modalities = (tuple(args.modalities.split(",")) if args.modalities
                  else params.default_modalities(args.dataset))
    prepare_params = PrepareParams(modalities=modalities, baseline=args.baseline,
                                   bdf_preprocessing=args.bdf_preprocessing)
    prepared = prepare(ds, params=prepare_params, cache_dir=args.cache_dir, verify=args.verify)
    windows = make_windows(prepared, lengths=(1.0, 5.0))
    for length in windows.lengths:
        print(f"{length:g} s windows: {len(windows.metadata(length))}")
    return 0
