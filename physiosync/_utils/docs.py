"""Shared docstring entries, filled in where ``%(name)s`` stands (MNE's ``fill_doc`` idea).

A parameter documented the same way in many functions is written once in
:data:`docdict`; a docstring names it as ``%(verbose)s`` on a line of its own, and any
further lines indented under it add what is particular to that function.
"""

from __future__ import annotations

import re

__all__ = ["docdict", "fill_doc"]

#: Parameter entries, numpydoc style, first line unindented, description indented 4.
docdict = {
    "verbose": """verbose : bool | str | int | None
    Log level during the call: ``None`` keeps the current level (see
    :func:`physiosync.set_log_level`), ``True`` is ``"info"``, ``False`` is
    ``"warning"``, or a :mod:`logging` level name or number. Progress bars are shown
    at ``"info"`` and below, on a terminal only.""",
    "affect": """affect : {"static", "dynamics"}
    The affect model (see :mod:`physiosync.synthetic`): ``"static"`` (default),
    per-trial gains beside a rating-free shared course; ``"dynamics"``, each
    stimulus's emotion is a trajectory that every viewer feels and that the
    physiology follows moment by moment.
affect_share : float | None
    ``affect="dynamics"`` only: share, in [0, 1], of the stimulus-locked variance
    that is affect-related (default 0.5); the rest is affect-free.
control : {"none", "static-affect", "shuffled"}
    ``affect="dynamics"`` only: a paired control that changes one part and keeps
    every other draw (``synchrony=0`` is the third).""",
    "long_short_config": """long_config, short_config : PretrainConfig
    The long and short encoders' configurations (sizes, and the pre-training
    settings of their runs).""",
    "n_classes": """n_classes : int
    2 for high/low targets, 4 for the valence-arousal quadrants.""",
    "n_sub": """n_sub : int
    Short windows per long window (5 for 5 s / 1 s).""",
    "labelled_slots": """data : SlotData
    Labelled long windows.""",
    "fold": """fold : Fold
    The fold's units (or, for ``legacy-segment``, its test windows).""",
    "window_subjects": """subjects : array, shape (n,)
    Subject of each window.""",
    "subject_metric": """metric : {"balanced_accuracy", "macro_f1", "accuracy"} | None
    ``None``: :func:`headline_metric` of *n_classes*.""",
    "sfreq_modalities": """sfreq : float | dict of str -> float
    Sampling rate in Hz (per modality for dict input).""",
    "report": """report : dict
    From ``physiosync.evaluation.summary.build_report()``.""",
    "protocol_target": """protocol, target : str
    As run.""",
    "run_config": """cfg : RunConfig
    The study's configuration.""",
    "synthetic_seed": """seed : int
    Seed of the dataset.""",
    "effect": """effect : float
    Strength of the emotion effect in the signals; 0 means none.""",
    "dest_path": """path : str | Path
    Destination file; its folder must exist.""",
    "encoding": """encoding : str
    Encoding of text *data*.""",
    "allow_none": """allow_none : bool
    Whether ``None`` is also accepted.""",
    "error_class": """error : type of Exception
    The class of the error raised.""",
    "device_auto": """device : str | torch.device | None
    ``None`` picks CUDA, then MPS, then the CPU.""",
    "pretrain_config": """config : PretrainConfig
    The run's configuration.""",
    "allowed_cells": """allowed : ndarray of bool, shape (n_subjects, n_trials, n_windows)
    Cells that may be drawn (e.g. ``data.valid`` restricted to training data).""",
    "sampler_seed": """seed : int
    Seed of the sampler.""",
    "max_fraction": """max_fraction : float
    Largest share of the device's free memory the copy may take.""",
    "unit_ids": """units : array-like of int, shape (K, 2)
    Subject and trial ids.""",
    "training_windows": """X : dict of str -> ndarray | ndarray
    Training windows, modality -> ``(n_windows, n_channels, n_times)`` (or
    one such array).
y : array, shape (n_windows,)
    Their labels.""",
    "named_source": """source : str | Path
    The file, named in the error.""",
    "timed_steps": """steps : int
    Steps timed.
warmup : int
    Steps run first and not timed (they pay one-off costs: allocations, first
    batches).""",
}

_PLACEHOLDER = re.compile(r"^([ \t]*)%\((\w+)\)s[ \t]*$", re.M)


def fill_doc(obj):
    """Replace every ``%(name)s`` line of *obj*'s docstring by ``docdict[name]``.

    The entry takes the placeholder's indentation. An unknown name raises a
    :class:`KeyError` at import time, so a typo cannot ship.

    Parameters
    ----------
    obj : function | class
        What to document.

    Returns
    -------
    obj : function | class
        The same object, its ``__doc__`` filled.
    """
    doc = obj.__doc__
    if doc and "%(" in doc:
        def entry(match):
            indent, name = match.groups()
            return "\n".join(indent + line if line else line
                             for line in docdict[name].split("\n"))

        obj.__doc__ = _PLACEHOLDER.sub(entry, doc)
    return obj
