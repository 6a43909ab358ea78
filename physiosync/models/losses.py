"""Contrastive losses of PhysioSync pre-training (formulas in docs/model.md).

* :func:`nt_xent` -- the SimCLR-style NT-Xent of the dependent settings ("variant A"),
  summed over its two directions.
* :func:`cmca` -- cross-modal contrastive alignment, by default exactly as coded in the
  reference (half-batch swap: cross-modal *and* cross-subject positives).
* :func:`pretrain_loss` -- the weighted total
  ``0.5 L_T(EEG) + 0.5 L_T(PPS) + 1.0 L_CMCA`` with every term returned for logging.
* :func:`collapsed_loss` -- the value of that total for a collapsed encoder (every
  embedding the same), the level a pre-training run must get below to have learnt
  anything.

Batch layout throughout: 2B rows, the first B rows are group-1 slots and the last B
rows group-2 slots in the same slot order, so row i pairs with row B + i.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .._utils.checks import check_option
from ..exceptions import PhysioSyncError
from ..params import CMCA_PAIRINGS, CMCA_VARIANTS, PRETRAIN_OBJECTIVES
from .encoders import ShapeError

__all__ = ["nt_xent", "cmca", "pretrain_loss", "pretrain_loss_parts", "collapsed_loss",
           "retrieval_accuracy", "retrieval_parts", "retrieval_chance"]


def _check_temperature(temperature: float) -> None:
    if not temperature > 0:  # also rejects NaN
        raise PhysioSyncError(f"temperature must be > 0, got {temperature!r}.")


def _check_pair(name: str, a: torch.Tensor, b: torch.Tensor) -> None:
    if a.ndim != 2 or a.shape != b.shape or a.shape[0] == 0:
        raise ShapeError(
            f"{name} expected two tensors of the same shape (rows, dim) with rows >= 1, "
            f"got {tuple(a.shape)} and {tuple(b.shape)}.")


def _one_direction(sim_ab: torch.Tensor, sim_aa: torch.Tensor) -> torch.Tensor:
    # Logits of anchor a_i: [a_i.b_j for all j] followed by [a_i.a_j for j != i]; the
    # self-similarity is masked with -inf (exactly zero weight, and safe in fp16).
    n = sim_aa.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=sim_aa.device)
    logits = torch.cat((sim_ab, sim_aa.masked_fill(eye, float("-inf"))), dim=1)
    target = torch.arange(n, device=sim_ab.device)
    # Cross-entropy in at least float32: the logsumexp stays accurate for fp16/bf16
    # inputs, and float64 inputs keep float64.
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return F.cross_entropy(logits, target)


def nt_xent(a: torch.Tensor, b: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent between paired rows, summed over both directions.

    With ``u`` the L2-normalised rows and ``t`` the temperature, the loss of anchor
    ``a_i`` is::

        -log( exp(a_i.b_i/t) / (sum_j exp(a_i.b_j/t) + sum_{j != i} exp(a_i.a_j/t)) )

    and symmetrically for ``b_i``. The result is the mean over the anchors of each
    direction, and the two directions are **summed** (not averaged), as in the
    reference.

    Parameters
    ----------
    a, b : torch.Tensor
        ``(B, D)``; row i of *a* and row i of *b* are a positive pair, every other row
        of either tensor is a negative.
    temperature : float
        Softmax temperature t > 0.

    Returns
    -------
    torch.Tensor
        Scalar loss on the inputs' device, in float32 (float64 for float64 inputs),
        computed in float32 also from half-precision inputs and under autocast. It lies in
        ``[0, 2 log(2B - 1) + 4/t]``; at B = 1 it is 0.

    Raises
    ------
    ShapeError
        If *a* and *b* are not 2-D tensors of the same shape.
    PhysioSyncError
        If the temperature is not positive.
    """
    _check_pair("nt_xent", a, b)
    _check_temperature(temperature)
    # The similarities in float32 (float64 kept) even under autocast: in bf16 the cosines
    # are quantised to ~4e-3, the logits at t = 0.1 to ~0.04. The encoders still run in
    # reduced precision; only this small (2B x 2B) part leaves it.
    dtype = torch.promote_types(torch.promote_types(a.dtype, b.dtype), torch.float32)
    with torch.autocast(a.device.type, enabled=False):
        u = F.normalize(a.to(dtype), dim=1)
        v = F.normalize(b.to(dtype), dim=1)
        sim_ab = u @ v.T / temperature
        sim_aa = u @ u.T / temperature
        sim_bb = v @ v.T / temperature
        return _one_direction(sim_ab, sim_aa) + _one_direction(sim_ab.T, sim_bb)


def cmca(e: torch.Tensor, p: torch.Tensor, temperature: float = 0.1,
         variant: str = "cross-subject") -> torch.Tensor:
    """Cross-modal contrastive alignment (CM-CA) loss.

    Parameters
    ----------
    e, p : torch.Tensor
        ``(2B, D)`` EEG and peripheral features from the shared CM-CA head. Rows i and
        B + i are the two subject groups at the same stimulus slot.
    temperature : float
        Temperature of the underlying :func:`nt_xent`.
    variant : {"cross-subject", "same-subject"}
        ``"cross-subject"`` (default, the reference's code): half-batch swap
        ``e' = [p[:B]; e[B:]]``, ``p' = [e[:B]; p[B:]]`` and
        ``0.5 * nt_xent(e'[:B], e'[B:]) + 0.5 * nt_xent(p'[:B], p'[B:])``: the
        positives are (PPS of group 1, EEG of group 2) and (EEG of group 1, PPS of
        group 2) at the same slot, so same-subject EEG-PPS pairs are never positives.
        ``"same-subject"``: ``nt_xent(e, p)``, each row's EEG paired with the same
        row's peripheral signal (an explicit alternative to the reference's implicit
        pairing; see "Pre-training losses" in docs/model.md).

    Returns
    -------
    torch.Tensor
        Scalar loss (float32, or float64 for float64 inputs).

    Raises
    ------
    ShapeError
        If *e* and *p* differ in shape, are not 2-D, or have an odd number of rows
        (cross-subject variant; the same-subject variant needs an even count too, so
        that both variants accept the same batches).
    PhysioSyncError
        For an unknown variant or a non-positive temperature.
    """
    _check_pair("cmca", e, p)
    _check_temperature(temperature)
    check_option("variant", variant, CMCA_PAIRINGS)
    rows = e.shape[0]
    if rows % 2:
        raise ShapeError(
            f"cmca expected an even number of rows (2B: group 1 then group 2), got {rows}.")
    if variant == "same-subject":
        return nt_xent(e, p, temperature)
    half = rows // 2
    # e' = [p[:B]; e[B:]] and p' = [e[:B]; p[B:]]; nt_xent pairs row i with row B + i.
    return (0.5 * nt_xent(p[:half], e[half:], temperature)
            + 0.5 * nt_xent(e[:half], p[half:], temperature))


def _check_weights(weights) -> tuple[float, float, float]:
    try:
        weights = tuple(float(w) for w in weights)
    except (TypeError, ValueError):
        raise PhysioSyncError(f"weights must be three numbers, got {weights!r}.") from None
    if len(weights) != 3 or not min(weights) >= 0 or not any(weights):
        raise PhysioSyncError(
            f"weights must be three non-negative numbers, not all 0, got {weights!r}.")
    return weights


def _temporal(name: str, z: torch.Tensor, temperature: float) -> torch.Tensor:
    if z.ndim != 2 or z.shape[0] % 2 or z.shape[0] == 0:
        raise ShapeError(
            f"{name} expected shape (2B, dim) with an even, non-zero number of rows, "
            f"got {tuple(z.shape)}.")
    half = z.shape[0] // 2
    return nt_xent(z[:half], z[half:], temperature)


def pretrain_loss(z_eeg: torch.Tensor | None, z_pps: torch.Tensor | None,
                  e: torch.Tensor | None = None, p: torch.Tensor | None = None, *,
                  weights: Sequence[float] = (0.5, 0.5, 1.0), temperature: float = 0.1,
                  cmca_temperature: float | None = None,
                  cmca_variant: str = "cross-subject"
                  ) -> tuple[torch.Tensor, dict[str, float]]:
    """Total pre-training loss ``w_eeg L_T(EEG) + w_pps L_T(PPS) + w_cmca L_CMCA``.

    ``L_T(m) = nt_xent(z_m[:B], z_m[B:])`` is the temporal (inter-subject, same
    stimulus time) loss of modality m on its projector output; ``L_CMCA`` is
    :func:`cmca` on the CM-CA head outputs (see "Pre-training losses" in docs/model.md).

    Parameters
    ----------
    z_eeg, z_pps : torch.Tensor or None
        ``(2B, 4096)`` projector outputs, group-1 rows then group-2 rows. May be
        ``None`` when the matching weight is 0.
    e, p : torch.Tensor or None
        ``(2B, 1024)`` CM-CA head outputs. May be ``None`` when ``w_cmca`` is 0.
    weights : (float, float, float)
        ``(w_eeg, w_pps, w_cmca)``; the reference uses ``(0.5, 0.5, 1.0)``. A term
        with weight 0 is not computed.
    temperature : float
        Temperature of the temporal losses (0.1 in the dependent settings).
    cmca_temperature : float or None
        Temperature of CM-CA; ``None`` uses *temperature* (the reference's choice).
    cmca_variant : {"cross-subject", "same-subject"}
        See :func:`cmca`.

    Returns
    -------
    total : torch.Tensor
        Scalar loss to back-propagate (float32, float64 for float64 inputs).
    terms : dict of str -> float
        Detached values for logging: ``"temporal_eeg"``, ``"temporal_pps"``,
        ``"cmca"`` (unweighted; only the computed terms) and ``"total"``.
        Reading them synchronises with the device once per call.

    Raises
    ------
    PhysioSyncError
        For negative or all-zero weights, or a missing input whose weight is not 0
        (:class:`~physiosync.models.ShapeError` for wrong shapes).
    """
    total, parts = pretrain_loss_parts(z_eeg, z_pps, e, p, weights=weights,
                                       temperature=temperature,
                                       cmca_temperature=cmca_temperature,
                                       cmca_variant=cmca_variant)
    values = torch.stack(list(parts.values())).tolist()
    return total, dict(zip(parts, values))


def pretrain_loss_parts(z_eeg: torch.Tensor | None, z_pps: torch.Tensor | None,
                        e: torch.Tensor | None = None, p: torch.Tensor | None = None, *,
                        weights: Sequence[float] = (0.5, 0.5, 1.0), temperature: float = 0.1,
                        cmca_temperature: float | None = None,
                        cmca_variant: str = "cross-subject"
                        ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """:func:`pretrain_loss` with its terms left on the device, as 0-d tensors.

    Nothing here reads a value back to the host, so a training loop can queue many
    steps before it synchronises, and the function can run under
    :func:`torch.func.vmap` (fold-batched pre-training). Parameters are those of
    :func:`pretrain_loss`.

    Returns
    -------
    total : torch.Tensor
        Scalar loss to back-propagate.
    parts : dict of str -> torch.Tensor
        The detached terms ``"temporal_eeg"``, ``"temporal_pps"``, ``"cmca"`` (those
        computed) and ``"total"``, each a 0-d tensor on the device of the inputs.
    """
    w_eeg, w_pps, w_cmca = _check_weights(weights)
    parts: dict[str, torch.Tensor] = {}
    for key, weight, inputs in (("temporal_eeg", w_eeg, (z_eeg,)),
                                ("temporal_pps", w_pps, (z_pps,)),
                                ("cmca", w_cmca, (e, p))):
        if weight and any(x is None for x in inputs):
            raise PhysioSyncError(f"The {key} term has weight {weight} but its input is None.")
    if w_eeg:
        parts["temporal_eeg"] = _temporal("temporal loss (EEG)", z_eeg, temperature)
    if w_pps:
        parts["temporal_pps"] = _temporal("temporal loss (PPS)", z_pps, temperature)
    if w_cmca:
        parts["cmca"] = cmca(e, p, temperature if cmca_temperature is None
                             else cmca_temperature, cmca_variant)
    scale = {"temporal_eeg": w_eeg, "temporal_pps": w_pps, "cmca": w_cmca}
    total = sum(scale[k] * v for k, v in parts.items())
    return total, {**{k: v.detach() for k, v in parts.items()}, "total": total.detach()}


def _retrieved(sim_ab: torch.Tensor, sim_aa: torch.Tensor) -> torch.Tensor:
    # Anchor a_i retrieves its partner when a_i.b_i beats every other candidate of its
    # NT-Xent row: a_i.b_j (j != i) and a_i.a_j (j != i). Strictly: ties (a collapsed
    # encoder) count as misses.
    n = sim_aa.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=sim_aa.device)
    pos = sim_ab.diagonal()
    rivals = torch.cat((sim_ab.masked_fill(eye, float("-inf")),
                        sim_aa.masked_fill(eye, float("-inf"))), dim=1)
    return (pos > rivals.amax(dim=1)).float().mean()


def retrieval_accuracy(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Top-1 retrieval of the positive among the candidates of :func:`nt_xent`.

    Anchor ``a_i`` retrieves its partner when its cosine similarity with ``b_i`` is
    strictly larger than with each of the other ``2B - 2`` candidates of its NT-Xent
    row (``b_j`` and ``a_j``, ``j != i``); symmetrically for ``b_i``. The result is the
    mean over both directions: 1 for perfectly aligned pairs, 0 for a collapsed encoder
    (every similarity tied), about ``1 / (2B - 1)`` for unrelated rows
    (:func:`retrieval_chance`).

    Parameters
    ----------
    a, b : torch.Tensor
        ``(B, D)``; row i of *a* and row i of *b* are a positive pair.

    Returns
    -------
    torch.Tensor
        0-d float32 tensor in ``[0, 1]``, on the inputs' device.
    """
    _check_pair("retrieval_accuracy", a, b)
    u = F.normalize(a.float(), dim=1)
    v = F.normalize(b.float(), dim=1)
    sim_ab = u @ v.T
    return 0.5 * (_retrieved(sim_ab, u @ u.T) + _retrieved(sim_ab.T, v @ v.T))


def retrieval_parts(z_eeg: torch.Tensor | None, z_pps: torch.Tensor | None,
                    e: torch.Tensor | None = None, p: torch.Tensor | None = None, *,
                    weights: Sequence[float] = (0.5, 0.5, 1.0),
                    cmca_variant: str = "cross-subject") -> dict[str, torch.Tensor]:
    """:func:`retrieval_accuracy` of each contrastive term of :func:`pretrain_loss_parts`.

    Same inputs, same pairings: the temporal terms pair row i with row B + i of each
    modality's projection; CM-CA ``"cross-subject"`` averages the accuracies of its two
    swapped NT-Xents (group-1 peripheral with group-2 EEG, group-1 EEG with group-2
    peripheral), ``"same-subject"`` pairs each row's EEG with its peripheral signal.

    Returns
    -------
    accuracies : dict of str -> torch.Tensor
        ``"temporal_eeg"``, ``"temporal_pps"``, ``"cmca"`` (the terms with a non-zero
        weight), each a 0-d tensor; chance is :func:`retrieval_chance`.
    """
    w_eeg, w_pps, w_cmca = _check_weights(weights)
    out: dict[str, torch.Tensor] = {}
    for key, weight, z in (("temporal_eeg", w_eeg, z_eeg), ("temporal_pps", w_pps, z_pps)):
        if weight:
            if z is None:
                raise PhysioSyncError(f"The {key} term has weight {weight} but its input is None.")
            half = z.shape[0] // 2
            out[key] = retrieval_accuracy(z[:half], z[half:])
    if w_cmca:
        if cmca_variant == "same-subject":
            out["cmca"] = retrieval_accuracy(e, p)
        else:
            half = e.shape[0] // 2
            out["cmca"] = 0.5 * (retrieval_accuracy(p[:half], e[half:])
                                 + retrieval_accuracy(e[:half], p[half:]))
    return out


def retrieval_chance(batch_slots: int, term: str, cmca_variant: str = "cross-subject"
                     ) -> float:
    """Chance level of :func:`retrieval_parts` for *term*: one over the candidates.

    An NT-Xent row over ``n`` pairs has ``2n - 1`` candidates: ``1 / (2B - 1)`` for
    the temporal terms and cross-subject CM-CA, ``1 / (4B - 1)`` for same-subject
    CM-CA (2B rows per side). A collapsed encoder's loss for that term is
    ``2 log`` of the candidates, i.e. ``-2 log(chance)``.
    """
    n = 2 * batch_slots if term == "cmca" and cmca_variant == "same-subject" else batch_slots
    return 1.0 / (2 * n - 1)


def collapsed_loss(batch_slots: int, *, loss_weights: Sequence[float] = (0.5, 0.5, 1.0),
                   has_pps: bool = True, cmca_variant: str = "cross-subject",
                   objective: str = "ls-tcl") -> float:
    """Total pre-training loss of a collapsed encoder, whose embeddings are all the same.

    With every similarity equal, each anchor's softmax is uniform over its logits, so
    one NT-Xent direction over ``n`` rows per side costs ``log(2n - 1)`` (``n``
    positives-or-negatives from the other side, ``n - 1`` from its own) and
    :func:`nt_xent` costs ``2 log(2n - 1)``, whatever the temperature. With
    ``B = batch_slots``:

    * each temporal term ``L_T`` (B rows per group) is ``2 log(2B - 1)``;
    * CM-CA ``"cross-subject"`` averages two such NT-Xents: ``2 log(2B - 1)``;
    * CM-CA ``"same-subject"`` pairs 2B rows with 2B rows: ``2 log(4B - 1)``.

    The total weights them as :func:`pretrain_loss` does, with the terms that
    :func:`physiosync.training.pretrain.pretrain` drops without a peripheral modality or with
    ``cmca_variant="none"`` left out. A run whose loss stays at or above this value
    has learnt nothing the positives share; e.g. 9.59 for ``batch_slots=6`` with the
    default weights and CM-CA, 10.83 for 8.

    The ``"simclr"`` objective contrasts two augmented views of each of B single EEG
    windows: one NT-Xent over B rows per side, ``w_eeg * 2 log(2B - 1)`` (the EEG
    temporal term's value and weight; *has_pps* and *cmca_variant* do not apply).

    Parameters
    ----------
    batch_slots : int
        Stimulus slots per batch, ``B`` (``PretrainConfig.batch_slots``).
    loss_weights : (float, float, float)
        ``(w_eeg, w_pps, w_cmca)``, as in ``PretrainConfig.loss_weights``.
    has_pps : bool
        Whether pre-training has a peripheral modality (otherwise only the EEG
        temporal term is computed).
    cmca_variant : {"cross-subject", "same-subject", "none"}
        CM-CA as configured; ``"none"`` leaves it out.
    objective : {"ls-tcl", "simclr"}
        The pre-training objective (for ``"simclr"``, *batch_slots* counts windows).

    Returns
    -------
    float
        The collapsed encoder's total loss.

    Raises
    ------
    PhysioSyncError
        For ``batch_slots < 1``, an unknown variant, or weights that leave no term
        (as :func:`pretrain_loss` would).
    """
    if isinstance(batch_slots, bool) or not isinstance(batch_slots, (int, np.integer)) \
            or batch_slots < 1:
        raise PhysioSyncError(f"batch_slots must be an integer >= 1, got {batch_slots!r}.")
    check_option("cmca_variant", cmca_variant, CMCA_VARIANTS)
    check_option("objective", objective, PRETRAIN_OBJECTIVES)
    w_eeg, w_pps, w_cmca = _check_weights(loss_weights)
    if objective == "simclr" or not has_pps:
        w_pps = w_cmca = 0.0
    elif cmca_variant == "none":
        w_cmca = 0.0
    _check_weights((w_eeg, w_pps, w_cmca))
    b = int(batch_slots)
    temporal = 2.0 * math.log(2 * b - 1)
    cm = 2.0 * math.log(4 * b - 1) if cmca_variant == "same-subject" else temporal
    return w_eeg * temporal + w_pps * temporal + w_cmca * cm
