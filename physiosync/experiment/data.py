"""The data a study runs on: its subjects prepared and cut into labelled long windows.

:func:`load_experiment_data` opens the configured dataset, prepares every subject (through
the cache), checks the window settings against the prepared signals, builds the labelled
long windows on the ``(subject, trial, window)`` grid and takes the content key of the
source files, which every fold file records; all of it travels as one
:class:`ExperimentData`. :func:`describe_data` says, for the report, what data a run used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._logging import verbose
from ..config import ConfigError, RunConfig

__all__ = ["ExperimentData", "open_dataset", "load_experiment_data", "describe_data"]


@dataclass
class ExperimentData:
    """Everything the runner needs from the dataset.

    Attributes
    ----------
    slots : SlotData
        Labelled long windows on the ``(subject, trial, window)`` grid.
    units : ndarray of int, shape (n, 2)
        ``(subject, trial)`` pairs with data, in grid order.
    labels : ndarray of int, shape (n,)
        Class of each unit.
    sfreq : dict of str -> float
        Sampling rate of each modality.
    channels : dict of str -> list of str
        Channel names of each modality.
    source : dict
        Where the data came from (for ``config.yaml``).
    content_key : str | None
        Content key of the source files of the subjects used
        (:func:`~physiosync.preprocessing.cache.data_content_key`), recorded in every
        fold file so that a fold computed on other data is never reused.
    synthetic : bool | None
        Whether physiosync's synthetic writers wrote every source file
        (:meth:`~physiosync.datasets.BaseDataset.synthetic`); None: not checked.
    classes : tuple of str
        Names of the target's classes in label order, as the dataset declares them
        (:meth:`~physiosync.dataset_specs.DatasetSpec.class_names`); empty: unknown.
    sessions : ndarray of str, shape (n,) | None
        Session of each unit (None: one session).
    stimuli : ndarray of int, shape (n,) | None
        Stimulus (clip) of each unit where the dataset gives one other than the trial
        id (the ratings' ``stimulus`` column); None: the trial id.
    session_train_trials : int | None
        The dataset's default ``protocol.train_trials`` of ``session-split``.
    """

    slots: object
    units: np.ndarray
    labels: np.ndarray
    sfreq: dict
    channels: dict
    source: dict
    content_key: str | None = None
    synthetic: bool | None = None
    classes: tuple = ()
    sessions: np.ndarray | None = None
    stimuli: np.ndarray | None = None
    session_train_trials: int | None = None

    @property
    def n_classes(self) -> int:
        """Classes of the target as the dataset declares them (2 for high/low targets, 4
        for quadrants, K for a categorical target), whichever are present; without
        declared classes, ``max(labels) + 1`` (at least 2)."""
        if self.classes:
            return len(self.classes)
        return int(max(self.labels.max() + 1, 2))


def open_dataset(data_cfg):
    """Open the configured dataset (see :func:`physiosync.datasets.open_dataset`)."""
    from ..datasets import open_dataset as _open

    return _open(data_cfg.name, data_cfg.root, ratings_csv=data_cfg.ratings_csv)


@verbose
def load_experiment_data(cfg: RunConfig, *,
                         verbose: bool | str | int | None = None) -> ExperimentData:
    """Prepare the configured subjects and build the labelled long windows.

    Parameters
    ----------
    cfg : RunConfig
        The run's configuration; its ``data`` section is read.
    %(verbose)s
        It covers the preparation and its progress bar.

    Returns
    -------
    data : ExperimentData
        Labelled long windows, units, labels and a description of the source.
    """
    from ..preprocessing.cache import data_content_key, prepare
    from ..params import PrepareParams, dataset_spec, default_modalities
    from ..training.sampling import SlotData
    from ..preprocessing.windows import make_windows

    d = cfg.data
    ds = open_dataset(d)
    modalities = tuple(d.modalities) if d.modalities else default_modalities(d.name)
    unknown = [m for m in modalities if m not in ds.modalities]
    if unknown:
        raise ConfigError(f"data.modalities: {ds.name} has no {', '.join(unknown)}; it has "
                          f"{', '.join(ds.modalities)}.")
    if modalities[0] != "eeg":
        raise ConfigError(f"data.modalities must start with 'eeg', got {list(modalities)}.")
    params = PrepareParams(modalities=modalities, baseline=d.baseline, norm=d.norm,
                           stimulus_seconds=d.stimulus_seconds,
                           bdf_preprocessing=d.bdf_preprocessing)
    subjects = list(d.subjects) if d.subjects else None
    prepared = prepare(ds, subjects, params=params, cache_dir=d.cache_dir)
    first = next(iter(prepared.values()))
    if first.seconds < d.long_seconds:
        raise ConfigError(f"data.long_seconds = {d.long_seconds:g} s is longer than the "
                          f"{first.seconds:g} s of stimulus kept per trial.")
    for m in modalities:
        n = first.sfreq[m] * d.long_seconds
        if abs(n - round(n)) > 1e-6 or round(n) % d.n_sub:
            raise ConfigError(f"data.n_sub = {d.n_sub} does not divide the {n:g} samples of a "
                              f"{d.long_seconds:g} s {m} window.")
    spec = dataset_spec(d.name)
    classes = spec.class_names(d.target)
    windows = make_windows(prepared, lengths=(d.long_seconds,))
    slots = SlotData.from_windows(windows, d.long_seconds, target=d.target,
                                  n_classes=len(classes))
    units_table = slots.description
    units = units_table[["subject", "trial"]].to_numpy()
    labels = units_table["label"].to_numpy()
    if len(labels) and labels.max() >= len(classes):
        raise ConfigError(f"target {d.target!r}: the data hold class code {labels.max()}, but "
                          f"{ds.name} declares {len(classes)} classes "
                          f"({', '.join(classes)}).")
    source = {"dataset": ds.name, "root": str(Path(d.root).expanduser().resolve()),
              "format": ds.format, "subjects": [int(s) for s in prepared],
              "n_units": int(len(units)), "n_windows": int(slots.valid.sum())}
    # the source files were hashed for the cache keys just now: this reuses those hashes
    content_key = data_content_key(ds, list(prepared))
    return ExperimentData(
        slots, units.astype(np.int64), labels.astype(np.int64), dict(first.sfreq),
        {m: list(first.ch_names[m]) for m in modalities}, source, content_key,
        synthetic=ds.synthetic(list(prepared)), classes=classes,
        sessions=(units_table["session"].to_numpy() if slots.sessions is not None else None),
        stimuli=(units_table["stimulus"].to_numpy() if "stimulus" in units_table else None),
        session_train_trials=spec.session_train_trials)


def describe_data(cfg: RunConfig, data: ExperimentData) -> dict:
    """What data a run used, for its report (``report.json``'s ``data``).

    Parameters
    ----------
    cfg : RunConfig
        The run's configuration (its ``data.root`` as ``config.yaml`` writes it).
    data : ExperimentData
        From :func:`load_experiment_data`.

    Returns
    -------
    description : dict
        ``dataset``, ``root`` (absolute, as in ``config.yaml``), ``format``,
        ``subjects`` (ids), ``n_subjects``, ``trials_per_subject`` (a number, or
        ``[min, max]`` when subjects differ), ``n_units`` ((subject, trial) units),
        ``n_windows``, ``synthetic`` (bool, or None when not checked) and ``origin``
        (the same in words); for data recorded in several sessions (SEED), ``sessions``
        (the session names present, in order); ``notes``, what the configuration does
        that its keys do not say (:func:`~physiosync.config.run_notes`), when there is any.
    """
    from ..config import absolute_root, run_notes

    src = data.source
    counts = np.unique(data.units[:, 0], return_counts=True)[1] if len(data.units) else []
    trials = (int(counts[0]) if len(set(counts.tolist())) == 1 else
              [int(counts.min()), int(counts.max())]) if len(counts) else None
    origin = {True: "synthetic (written by physiosync's synthetic writer)",
              False: "not written by physiosync's synthetic writers (real data)",
              None: "origin not checked"}[data.synthetic]
    out = {"dataset": src["dataset"], "root": absolute_root(cfg.data.root),
           "format": src.get("format"), "subjects": list(src["subjects"]),
           "n_subjects": len(src["subjects"]), "trials_per_subject": trials,
           "n_units": src.get("n_units"), "n_windows": src.get("n_windows"),
           "synthetic": data.synthetic, "origin": origin}
    if data.sessions is not None:  # only then: older reports keep their exact keys
        out["sessions"] = [str(v) for v in pd.unique(data.sessions)]
    notes = run_notes(cfg)
    if notes:
        out["notes"] = notes
    return out
