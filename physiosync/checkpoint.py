"""Atomic, safely loadable checkpoints.

A checkpoint is a plain dictionary of tensors, numbers, strings, lists and dicts,
saved with :func:`torch.save` to a temporary file and renamed into place, and read
back with ``torch.load(weights_only=True)`` -- so loading never executes code from
the file. It always carries the package version and the resolved configuration.
"""

from __future__ import annotations

import os
from pathlib import Path

from . import __version__
from .exceptions import PhysioSyncError

__all__ = ["save_checkpoint", "read_checkpoint", "load_checkpoint", "CheckpointError"]

FORMAT = "physiosync-checkpoint/1"


class CheckpointError(PhysioSyncError, ValueError):
    """A checkpoint file cannot be read or trusted."""


def save_checkpoint(path, payload: dict) -> Path:
    """Write *payload* (plus format and version stamps) atomically to *path*."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dict(payload)
    data["format"] = FORMAT
    data["version"] = __version__
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        torch.save(data, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def read_checkpoint(path) -> dict:
    """Read a checkpoint dictionary with ``weights_only=True``.

    Raises
    ------
    CheckpointError
        If the file is missing, truncated, not a physiosync checkpoint, or holds
        anything ``weights_only`` loading refuses.
    """
    import pickle

    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist.")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError,
            AttributeError, TypeError) as err:
        raise CheckpointError(
            f"{path}: cannot be read as a physiosync checkpoint ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}). It may be truncated, corrupt, "
            "or hold objects that safe loading refuses.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a physiosync checkpoint (format "
                              f"{data.get('format') if isinstance(data, dict) else type(data)}).")
    return data


def load_checkpoint(path):
    """Load a checkpoint written by pre-training, fine-tuning or the estimator.

    Parameters
    ----------
    path : str | Path
        The ``.pt`` file.

    Returns
    -------
    models : dict of str -> torch.nn.Module
        The model(s), rebuilt from the stored configuration, in eval mode.
    config : dict
        The resolved configuration stored with them.
    metadata : dict
        ``kind``, ``version``, ``step``, ``history`` and other stored fields.
    """
    data = read_checkpoint(path)
    kind = data.get("kind")
    try:
        if kind == "pretrain":
            from .pretrain import PretrainModel

            model = PretrainModel.from_config(data["config"])
            model.load_state_dict(data["model"])
            models = {"pretrain": model.eval()}
        elif kind == "finetune":
            from .finetune import PhysioSyncNet

            model = PhysioSyncNet.from_config(data["config"])
            model.load_state_dict(data["model"])
            models = {"finetune": model.eval()}
        else:
            raise CheckpointError(f"{path}: unknown checkpoint kind {kind!r}.")
    except (KeyError, RuntimeError, TypeError) as err:
        raise CheckpointError(f"{path}: checkpoint does not match its configuration "
                              f"({type(err).__name__}: {err}).") from None
    meta = {k: v for k, v in data.items() if k not in ("model", "optimizer", "config")}
    return models, data["config"], meta
