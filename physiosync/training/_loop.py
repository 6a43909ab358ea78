"""What pre-training and fine-tuning share around their training loops.

:class:`TrainingRun` does four jobs for one call of
:func:`~physiosync.training.pretrain.pretrain` or
:func:`~physiosync.training.finetune.finetune`:

* the data fingerprint, which ties a checkpoint to the data it was trained on;
* the resume guard, which refuses to continue a checkpoint written for other
  settings or other data (another fold: resuming it would leak held-out data);
* mixed precision: float16 autocast and a gradient scaler on CUDA (``amp=True``),
  bfloat16 autocast on any device (``amp="bf16"``), plain float32 otherwise;
* the divergence check: a non-finite loss, or non-finite weights about to be
  checkpointed, raise :class:`~physiosync.exceptions.TrainingDivergedError`, and a
  checkpoint is only ever written with finite weights, so the file on disk stays the
  last good state.

The loops themselves (what a step is, what is random in it, what is recorded) stay in
their modules. Nothing here draws random numbers.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from .._utils import fingerprint
from ..exceptions import TrainingDivergedError
from .checkpoints import CheckpointError, read_checkpoint, save_checkpoint

__all__ = ["TrainingRun", "state_is_finite"]

#: Per kind of run: its name in messages, the unit its checkpoints count, what a
#: checkpoint of other data was trained on, and the advice given after a divergence
#: (with and without a checkpoint to resume).
_KINDS = {
    "pretrain": dict(
        what="pre-training", unit="step",
        other_data=("training data (another fold, subjects, trials or modalities); resuming "
                    "it would leak held-out data. Delete it or choose another checkpoint path."),
        advice=" Try a lower lr, a higher temperature, or amp=False.",
        resume_advice=(" Resume it with a lower lr (resume_with={'lr': ...}, or --resume-with "
                       "lr=... on the command line), or try a higher temperature or "
                       "amp=False.")),
    "finetune": dict(
        what="fine-tuning", unit="epoch",
        other_data=("training or validation windows (another fold); delete it or choose "
                    "another checkpoint path."),
        advice="", resume_advice=""),
}


def state_is_finite(weights: dict, optimizer=None) -> bool:
    """Whether every floating-point tensor of *weights* and of *optimizer*'s state is finite."""
    tensors = [*weights.values()]
    if optimizer is not None:
        tensors += [v for st in optimizer.state.values() for v in st.values()
                    if isinstance(v, torch.Tensor)]
    return all(bool(torch.isfinite(t).all()) for t in tensors
               if t.is_floating_point() and t.numel())


def _differences(a: dict, b: dict, prefix: str = "") -> list[str]:
    """Sorted keys whose values differ, nested dicts as ``outer.inner``."""
    out = []
    for k in sorted(set(a) | set(b), key=str):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _differences(x, y, f"{prefix}{k}.")
        elif x != y:
            out.append(f"{prefix}{k}")
    return out


class TrainingRun:
    """Checkpoint guard, data fingerprint, mixed precision and divergence check of a run.

    Parameters
    ----------
    kind : {"pretrain", "finetune"}
        The run; stored in its checkpoints and used in messages.
    checkpoint : str | Path | None
        File the run checkpoints to, or ``None``.
    resume : bool
        Continue from *checkpoint* when it exists (see :meth:`resume_state`).
    device : torch.device
        Where the run trains.
    amp : bool | "bf16"
        ``True``: float16 autocast with loss scaling on CUDA (a no-op elsewhere);
        ``"bf16"``: bfloat16 autocast on any device; ``False``: float32.
    config : dict
        The model's resolved configuration; a checkpoint must hold the same one to be
        resumed.
    data_identity : tuple
        What identifies the data the run may see (cells, labels, subjects, ...); its
        :func:`~physiosync._utils.fingerprint` must match the checkpoint's.
    ignore : iterable of str
        Keys of *config* that may differ on resume (a step budget that grows, settings
        changed on purpose).
    resumable : iterable of str
        Settings the caller can change on resume (pre-training's ``resume_with``); the
        refusal of another configuration says how.

    Attributes
    ----------
    use_amp : bool
        Whether float16 autocast and gradient scaling are on.
    data_key : str
        The fingerprint of *data_identity*.
    saved : int | None
        Step (or epoch) of the checkpoint on disk that this run wrote or resumed from,
        ``None`` while there is none.
    """

    def __init__(self, kind: str, checkpoint, *, resume: bool, device: torch.device,
                 amp: bool, config: dict, data_identity: tuple, ignore=(), resumable=()):
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {sorted(_KINDS)}, got {kind!r}.")
        self.kind = kind
        self._text = _KINDS[kind]
        self.unit = self._text["unit"]
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.resume = bool(resume)
        self.device = device
        # amp: True is float16 with loss scaling, on CUDA only; "bf16" is bfloat16 on any
        # device, whose range needs no loss scaling
        self.amp_dtype = (torch.bfloat16 if amp == "bf16" else
                          torch.float16 if amp and device.type == "cuda" else None)
        self.use_amp = self.amp_dtype is not None
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.config = config
        self.data_key = fingerprint(*data_identity)
        self.ignore = frozenset(ignore)
        self.resumable = tuple(resumable)
        self.saved = None

    # ------------------------------------------------------------------ resume
    def _comparable(self, config: dict) -> dict:
        return {k: v for k, v in config.items() if k not in self.ignore}

    def resume_state(self, total: int) -> dict | None:
        """The checkpoint to continue from, after checking that it belongs to this run.

        Parameters
        ----------
        total : int
            Steps (or epochs) this run is asked for; a checkpoint past them is refused.

        Returns
        -------
        state : dict | None
            The checkpoint's contents, or ``None`` without a checkpoint to resume (none
            given, *resume* off, or no file yet).

        Raises
        ------
        CheckpointError
            If the checkpoint is of another kind or configuration (beyond *ignore*), of
            other data, or already past *total*.
        """
        ckpt = self.checkpoint
        if ckpt is None or not self.resume or not ckpt.exists():
            return None
        state = read_checkpoint(ckpt)
        theirs = self._comparable(state.get("config") or {})
        ours = self._comparable(self.config)
        if state.get("kind") != self.kind or theirs != ours:
            differ = _differences(theirs, ours)
            hint = (f" To change {' or '.join(self.resumable)} on resume, pass resume_with "
                    "(--resume-with on the command line)." if self.resumable else "")
            raise CheckpointError(
                f"{ckpt} was written by a different {self._text['what']} configuration "
                f"(differs in {', '.join(differ) or 'kind'}); delete it or choose another "
                f"checkpoint path.{hint}")
        if state.get("data_key") != self.data_key:
            raise CheckpointError(f"{ckpt} was written for different {self._text['other_data']}")
        done = int(state[self.unit])
        if done > total:
            raise CheckpointError(
                f"{ckpt} already holds {done} {self.unit}s, more than the {total} requested; "
                f"raise {self.unit}s or choose another checkpoint path.")
        self.saved = done
        return state

    # --------------------------------------------------------- mixed precision
    def autocast(self):
        """Context of a forward pass: the autocast *amp* asks for, else a no-op."""
        return torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                              enabled=self.use_amp)

    def backward_step(self, optimizer, loss: torch.Tensor) -> None:
        """Zero the gradients, back-propagate *loss* (scaled under amp) and step."""
        optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)
        self.scaler.update()

    # -------------------------------------------------------------- divergence
    def _kept(self) -> str:
        if self.checkpoint is None or self.saved is None:
            return ""
        if self.kind == "finetune":
            return f"; the last good checkpoint ({self.checkpoint}) is kept"
        return f"; the last good checkpoint ({self.checkpoint}, {self.unit} {self.saved}) is kept"

    def _advice(self) -> str:
        kept = self.checkpoint is not None and self.saved is not None
        return self._text["resume_advice" if kept else "advice"]

    def check_loss(self, value: float, where: str, detail: str = "") -> float:
        """Return *value*, or raise if it is NaN or infinite.

        Parameters
        ----------
        value : float
            The loss of the current batch.
        where : str
            Where it was computed, e.g. ``"at step 5"``.
        detail : str
            Appended after *where* (e.g. the loss terms, in parentheses).

        Raises
        ------
        TrainingDivergedError
            Naming *where*, the last good checkpoint and what to try.
        """
        if not math.isfinite(value):
            raise TrainingDivergedError(
                f"{self._text['what']} loss became {value} {where}{detail}{self._kept()}."
                f"{self._advice()}")
        return value

    def save(self, at: int, payload: dict, optimizer, where: str) -> None:
        """Checkpoint *payload* as of step (or epoch) *at*, if its state is finite.

        The file gets ``kind``, ``config``, the step (or epoch) *at* and ``data_key``,
        then *payload*, which must hold the weights under ``"model"``.

        Raises
        ------
        TrainingDivergedError
            If the weights or *optimizer*'s state hold NaN or infinity; the checkpoint
            on disk (the last good one) is left as it is. *where* says when they broke,
            e.g. ``"before step 4"``.
        """
        if not state_is_finite(payload["model"], optimizer):
            raise TrainingDivergedError(
                f"{self._text['what']} weights became NaN or infinite {where}{self._kept()}."
                f"{self._advice()}")
        save_checkpoint(self.checkpoint, {"kind": self.kind, "config": self.config,
                                          self.unit: at, "data_key": self.data_key, **payload})
        self.saved = at
