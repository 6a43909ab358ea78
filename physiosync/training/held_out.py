"""The held-out diagnostic of a pre-training run: fixed batches it never trains on.

At evenly spaced steps (:func:`held_out_steps`) the run's model is evaluated, in eval mode
and without gradients, on a few fixed batches of held-out cells drawn once
(:func:`held_out_sampler`); :class:`HeldOutStep` gives the LS-TCL terms and retrieval
accuracies of a batch, :class:`HeldOut` their mean over the batches.
"""

from __future__ import annotations

import numpy as np
import torch

from .._utils import derive_seed
from .._utils.docs import fill_doc
from ..exceptions import PhysioSyncError
from ..models.losses import pretrain_loss_parts, retrieval_parts
from ..models.physiosync import PretrainModel
from ..params import PretrainConfig
from .engine import Step
from .sampling import SlotData, SynchronySampler

__all__ = ["HELD_OUT_POINTS", "HELD_OUT_BATCHES", "held_out_steps", "held_out_sampler",
           "HeldOut", "HeldOutStep"]

#: Points of a run at which the held-out diagnostic is evaluated (step 0, evenly
#: spaced steps and the last step), unless ``held_out_every`` says otherwise.
HELD_OUT_POINTS = 20
#: Fixed held-out batches evaluated at each point (their values are averaged).
HELD_OUT_BATCHES = 8


def held_out_steps(n_steps: int, every: int | None = None) -> set:
    """The steps of a run of *n_steps* at which its held-out diagnostic is evaluated.

    Every *every* steps from step 0 (default: ``HELD_OUT_POINTS`` evenly spaced
    points) and the last step.
    """
    every = int(every) if every else max(n_steps // HELD_OUT_POINTS, 1)
    return set(range(0, n_steps, every)) | ({n_steps - 1} if n_steps else set())


@fill_doc
def held_out_sampler(held_out, config: PretrainConfig, *, n_sub: int = 1):
    """The synchrony sampler of a run's held-out cells, or None if they cannot fill it.

    It draws ``config.batch_slots`` slots per batch, as the run does, so that the
    collapsed level (``collapsed_loss()``) and the chance
    level of retrieval are the run's; with too few held-out subjects per slot its
    ``group_size`` is lowered, down to 1 (``sampler.group_size`` says which). Its seed
    is ``derive_seed(config.seed, "held-out")``: a stream of its own, so that no
    training draw changes.

    Parameters
    ----------
    held_out : ndarray of bool, shape (n_subjects, n_trials, n_windows)
        The held-out cells.
    %(pretrain_config)s
    %(n_sub)s

    Returns
    -------
    sampler : SynchronySampler | None
    """
    held_out = np.asarray(held_out, dtype=bool)
    for group_size in range(config.group_size, 0, -1):
        try:
            return SynchronySampler(held_out, batch_slots=config.batch_slots,
                                    group_size=group_size, n_sub=n_sub,
                                    seed=derive_seed(config.seed, "held-out"), verbose=False)
        except PhysioSyncError:
            continue
    return None


class HeldOut:
    """The held-out diagnostic of a run: fixed batches of cells it never trains on.

    The batches are drawn once, from :func:`held_out_sampler`, without augmentation
    (the positives differ only by who watched), and moved to the device. At every due
    step :meth:`evaluate` returns the mean over them of the LS-TCL terms and retrieval
    accuracies (:class:`HeldOutStep`), as a tensor left on the device.

    The evaluation runs in eval mode under :func:`torch.no_grad`: batch norm then reads
    its running statistics without updating them, dropout draws nothing, and nothing
    else random is drawn (the batches come from the sampler's own seeded generators),
    so the training that follows is bit-identical to a run without the diagnostic.
    Saving and restoring the batch-norm buffers and the RNG states would do the same
    at a higher cost, and would measure the held-out cells with training-batch
    statistics.
    """

    def __init__(self, source: SlotData, mask, config: PretrainConfig, modalities: tuple,
                 n_sub: int, n_steps: int, every: int | None, n_batches: int):
        sampler = held_out_sampler(mask, config, n_sub=n_sub)
        if sampler is None:
            raise PhysioSyncError(
                f"the held-out cells cannot fill a batch of {config.batch_slots} slots seen "
                "by at least 2 held-out subjects each; pass more held-out cells or none.")
        self.group_size = sampler.group_size
        self.steps = held_out_steps(n_steps, every)
        self.batches = []
        for i in range(n_batches):
            batch = sampler.batch(i)
            s, t, w, sub = (v.to(source.device) for v in batch.flat_index)
            self.batches.append((batch, {
                m: source.gather(m, s, t, w, n_sub, sub if n_sub > 1 else None)
                for m in modalities}))

    def evaluate(self, step_of, module: torch.nn.Module, device: torch.device) -> torch.Tensor:
        """Mean row of ``step_of(inputs, batch)`` over the batches, *module* in eval mode."""
        was_training = module.training
        module.eval()
        try:
            with torch.no_grad():
                rows = [step_of({m: x.to(device, non_blocking=True) for m, x in inputs.items()},
                                batch) for batch, inputs in self.batches]
        finally:
            module.train(was_training)
        return torch.stack(rows).mean(dim=0)


class HeldOutStep(Step):
    """The LS-TCL terms and retrieval accuracies of one held-out batch, as one row.

    Whatever the run's objective, the terms are those of the synchrony sampler's
    batches (``temporal_eeg``, ``temporal_pps``, ``cmca`` as configured), so a SimCLR
    encoder is measured on the same task. ``forward`` returns a 1-d tensor in the
    order of :meth:`names`.
    """

    def __init__(self, model: PretrainModel, cfg: PretrainConfig, modalities: tuple):
        super().__init__(model, cfg, modalities, simclr=False)

    def _weights(self) -> tuple:
        """The weights of the terms computed: those of the config, less what is absent."""
        mods = self.model.modalities
        w_eeg, w_pps, w_cm = self.cfg.loss_weights
        has_pps = len(mods) > 1
        cm = self.model.cmca_head is not None and bool(w_cm) and has_pps
        return (w_eeg, w_pps if has_pps else 0.0, w_cm if cm else 0.0)

    @property
    def names(self) -> list:
        """The names of :meth:`forward`'s row: ``loss``, the terms, ``retrieval_<term>``."""
        terms = [k for k, w in zip(("temporal_eeg", "temporal_pps", "cmca"), self._weights())
                 if w]
        return ["loss", *terms, *(f"retrieval_{k}" for k in terms)]

    def _parts(self, feats: dict, zs: dict) -> dict:
        mods = self.model.modalities
        pps = mods[1] if len(mods) > 1 else None
        weights = self._weights()
        e = p = None
        if weights[2]:
            e, p = self.model.cmca_head(feats[mods[0]], feats[pps])
        _, terms = pretrain_loss_parts(zs[mods[0]], zs[pps] if pps else None, e, p,
                                       weights=weights, temperature=self.cfg.temperature,
                                       cmca_variant=self.cfg.cmca_variant)
        acc = retrieval_parts(zs[mods[0]], zs[pps] if pps else None, e, p, weights=weights,
                              cmca_variant=self.cfg.cmca_variant)
        return {"loss": terms.pop("total"), **terms,
                **{f"retrieval_{k}": v for k, v in acc.items()}}

    def forward(self, inputs: dict, batch):
        return torch.stack(list(self._parts(*self.embed(inputs, batch)).values()))
