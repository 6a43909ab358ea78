"""Unit functions for the executor tests, importable by spawned worker processes."""

from __future__ import annotations

import os
from pathlib import Path


def touch_unit(folder: str, fail_fold: int, unit) -> str:
    """Write ``<pipeline>_<fold>`` in *folder*; raise for fold *fail_fold*."""
    if unit.fold == fail_fold:
        raise ValueError(f"fold {unit.fold} refuses\nover two lines")
    path = Path(folder) / f"{unit.pipeline}_{unit.fold}"
    path.write_text(str(os.getpid()))
    return str(path)


def die_unit(folder: str, die_fold: int, unit) -> str:
    """Like :func:`touch_unit`, but the worker process of fold *die_fold* exits at once."""
    if unit.fold == die_fold:
        os._exit(3)
    return touch_unit(folder, -1, unit)


def threads_unit(folder: str, unit) -> str:
    """Record the torch threads the unit's process was given."""
    import torch

    path = Path(folder) / f"threads_{unit.fold}"
    path.write_text(str(torch.get_num_threads()))
    return str(path)


def exit_unit(folder: str, exit_fold: int, status: int, unit) -> str:
    """Like :func:`touch_unit`, but the worker of fold *exit_fold* leaves with *status*,
    as an idle worker does on a signal (128 + its number)."""
    if unit.fold == exit_fold:
        os._exit(status)
    return touch_unit(folder, -1, unit)
