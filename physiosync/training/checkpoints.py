"""Atomic, safely loadable checkpoints.

A checkpoint is a plain dictionary of tensors, numbers, strings, lists and dicts,
saved with :func:`torch.save` to a temporary file and renamed into place, and read
back with ``torch.load(weights_only=True)`` -- so loading never executes code from
the file. It always carries the package version and the resolved configuration.
"""

from __future__ import annotations

from pathlib import Path

from .._utils import atomic_path
from .._version import __version__
from ..exceptions import CheckpointError, PhysioSyncError

__all__ = ["save_checkpoint", "read_checkpoint", "load_checkpoint", "CheckpointError"]

FORMAT = "physiosync-checkpoint/1"



def save_checkpoint(path, payload: dict) -> Path:
    """Write *payload* (plus format and version stamps) atomically to *path*."""
    import torch

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dict(payload)
    data["format"] = FORMAT
    data["version"] = __version__
    with atomic_path(path) as tmp:
        torch.save(data, tmp)
    return path


def read_checkpoint(path) -> dict:
    """Read a checkpoint dictionary with ``weights_only=True``.

    Raises
    ------
    CheckpointError
        If the file is missing, truncated, not a physiosync checkpoint, or holds
        anything ``weights_only`` loading refuses.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"Checkpoint {path} does not exist.")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    # ``weights_only`` loading executes nothing from the file, so whatever it raises
    # (UnpicklingError, BadZipFile, IndexError, KeyError, ...) means a damaged file.
    except Exception as err:
        raise CheckpointError(
            f"{path}: cannot be read as a physiosync checkpoint ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}). It may be truncated, corrupt, "
            "or hold objects that safe loading refuses.") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        found = data.get("format") if isinstance(data, dict) else type(data).__name__
        raise CheckpointError(f"{path}: not a physiosync checkpoint (format "
                              f"{str(found)[:80]!r}, expected {FORMAT!r}).")
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

    Raises
    ------
    CheckpointError
        If the file cannot be read (see :func:`read_checkpoint`), its stored weights
        do not match, name for name and shape for shape, the model its stored
        configuration describes (checked before the model is allocated, so a small
        damaged or crafted file cannot demand a large amount of memory), or a weight
        holds NaN or inf.
    """
    data = read_checkpoint(path)
    kind = data.get("kind")
    if kind == "pretrain":
        from ..models.physiosync import PretrainModel as model_class
    elif kind == "finetune":
        from ..models.physiosync import PhysioSyncNet as model_class
    else:
        raise CheckpointError(f"{path}: unknown checkpoint kind {str(kind)[:80]!r}; expected "
                              "'pretrain' or 'finetune'.")
    config, state = data.get("config"), data.get("model")
    if not isinstance(config, dict) or not isinstance(state, dict):
        raise CheckpointError(f"{path}: checkpoint lacks its configuration or its weights "
                              "(a 'config' and a 'model' dict); the file is damaged.")
    # The stored configuration decides how much memory the model takes, so build it on
    # the meta device first (no memory) and hold its shapes against the stored tensors:
    # a small file cannot make us allocate a model larger than the weights it holds.
    _check_state_matches(path, model_class, config, state)
    try:
        model = model_class.from_config(config)
        model.load_state_dict(state)
    except (KeyError, RuntimeError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}: checkpoint does not match its configuration "
                              f"({type(err).__name__}: {_first_line(err)}).") from None
    _check_finite_weights(path, state)
    models = {kind: model.eval()}
    meta = {k: v for k, v in data.items() if k not in ("model", "optimizer", "config")}
    return models, config, meta


def _check_finite_weights(path, state: dict) -> None:
    """Refuse weights holding NaN or inf, naming the file and the first such weight.

    Training never saves them (a diverged run keeps its last good checkpoint), so such
    a file was damaged or edited; loading it would only end later in a NaN loss that
    names no file.
    """
    import torch

    for name, value in state.items():
        if value.is_floating_point() or value.is_complex():
            bad = int((~torch.isfinite(value)).sum())
            if bad:
                raise CheckpointError(
                    f"{path}: weight {name!r} holds {bad} NaN or infinite value(s) of "
                    f"{value.numel()}; the checkpoint is damaged: restore a good copy or "
                    "write it again (e.g. physiosync pretrain --no-resume).")


def _first_line(err: BaseException, limit: int = 300) -> str:
    text = str(err).splitlines()[0] if str(err) else ""
    return text if len(text) <= limit else text[:limit] + "..."


class _TooManyTensors(Exception):
    pass


def _check_state_matches(path, model_class, config: dict, state: dict) -> None:
    """Refuse *state* unless it holds exactly the tensors *config*'s model has.

    The model is built on the ``meta`` device, which records shapes without
    allocating, so an absurd configuration costs no memory here; and the build is
    stopped as soon as it registers more tensors than the file holds, so an absurd
    number of layers costs no time either. Every stored tensor must hold its own
    data (no expanded or overlapping views), so the weights the configuration needs
    cannot exceed what the file holds.
    """
    import torch
    from torch.nn.modules import module as torch_module

    bad = [k for k, v in state.items() if not isinstance(k, str) or not torch.is_tensor(v)]
    if bad:
        raise CheckpointError(f"{path}: the stored weights hold {len(bad)} entries that are "
                              f"not named tensors (first: {str(bad[0])[:80]!r}).")
    # Parameters and buffers may be registered more than once (replaced) while a
    # model is built; anything far beyond the stored count is not this model.
    budget = [2 * len(state) + 16]

    def count(*_args):
        budget[0] -= 1
        if budget[0] < 0:
            raise _TooManyTensors

    hooks = [torch_module.register_module_parameter_registration_hook(count),
             torch_module.register_module_buffer_registration_hook(count)]
    try:
        with torch.device("meta"):
            skeleton = model_class.from_config(config)
        expected = {k: (tuple(v.shape), v.dtype) for k, v in skeleton.state_dict().items()}
    except _TooManyTensors:
        raise CheckpointError(
            f"{path}: the stored configuration describes a model with far more weight tensors "
            f"than the {len(state)} the file holds; the file is damaged or crafted.") from None
    except PhysioSyncError as err:  # a value refused by today's parameter checks
        raise CheckpointError(f"{path}: the stored configuration does not describe a model "
                              f"this version accepts: {_first_line(err)}") from None
    except Exception as err:  # any failure to build from the stored config is a bad file
        raise CheckpointError(f"{path}: the stored configuration does not describe a model "
                              f"({type(err).__name__}: {_first_line(err)}).") from None
    finally:
        for hook in hooks:
            hook.remove()
    for name, value in state.items():
        if value.numel() and value.numel() * value.element_size() > (
                value.untyped_storage().nbytes() - value.storage_offset() * value.element_size()):
            raise CheckpointError(
                f"{path}: weight {name!r} of shape {tuple(value.shape)} is a view of "
                f"{value.untyped_storage().nbytes()} stored bytes; expected every weight to "
                "hold its own data. The file is damaged or crafted.")
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: checkpoint does not match its configuration: "
            f"{len(missing)} weight(s) missing (first: {missing[:1]}), "
            f"{len(unexpected)} unexpected (first: {unexpected[:1]}).")
    for name, (shape, _dtype) in expected.items():
        if tuple(state[name].shape) != shape:
            raise CheckpointError(
                f"{path}: checkpoint does not match its configuration: weight {name!r} has "
                f"shape {tuple(state[name].shape)}, the configuration needs {shape}.")
