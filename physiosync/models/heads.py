"""Heads on top of the encoders: contrastive projector, CM-CA head, fusion classifier.

All heads are initialised like the encoders (Linear trunc-normal 0.02 with zero bias,
norms 1/0) and use ``nn.Dropout`` modules, so dropout is off in eval mode.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn

from ..exceptions import PhysioSyncError
from .encoders import ShapeError, init_weights

__all__ = ["Projector", "CMCAHead", "HierarchicalFusionHead", "ACTIVATIONS"]

#: Named activations accepted by :class:`Projector`.
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU}


def _make_activation(activation) -> nn.Module | None:
    if activation is None:
        return None
    if isinstance(activation, str):
        if activation not in ACTIVATIONS:
            raise PhysioSyncError(
                f"Invalid activation {activation!r}; allowed values are None, "
                f"{', '.join(map(repr, ACTIVATIONS))} or a callable returning a module.")
        return ACTIVATIONS[activation]()
    if callable(activation):
        module = activation()
        if not isinstance(module, nn.Module):
            raise PhysioSyncError(
                f"activation callable must return an nn.Module, got {type(module).__name__}.")
        return module
    raise PhysioSyncError(f"Invalid activation {activation!r}.")


def _check_2d(name: str, x: torch.Tensor, dim: int) -> None:
    if x.ndim != 2 or x.shape[1] != dim:
        raise ShapeError(f"{name} expected shape (batch, {dim}), got {tuple(x.shape)}.")


class Projector(nn.Module):
    """Contrastive projector: ``(B, in_dim) -> (B, dims[-1])``.

    ``Linear(in, 1024) -> BN -> [act] -> Dropout -> Linear(1024, 2048) -> BN -> [act]
    -> Dropout -> Linear(2048, 4096)`` for the default *dims*.

    Parameters
    ----------
    in_dim : int
        Input size, the encoder's ``out_dim`` (4D).
    dims : sequence of int
        Output sizes of the successive linears; the last one is the projection size.
    dropout : float
        Dropout after every hidden BatchNorm (and activation). ``nn.Dropout`` modules:
        off in eval mode, unlike the reference's functional dropout, which was always
        on.
    activation : None, {"relu", "gelu"} or callable
        Non-linearity after every hidden BatchNorm. The default ``None`` reproduces the
        reference, which has **no** non-linearity (so the projector is an affine map in
        eval mode). A callable must return an ``nn.Module``.

    Notes
    -----
    Parameters with the default *dims*: ``4096*D + 10,499,072`` for ``in_dim = 4D``
    (11,023,360 at D = 128). The hidden BatchNorms need more than one row per batch in
    training mode.
    """

    def __init__(self, in_dim: int, dims: Sequence[int] = (1024, 2048, 4096),
                 dropout: float = 0.2, activation: str | Callable | None = None):
        super().__init__()
        dims = tuple(int(d) for d in dims)
        if not dims or min(dims) < 1 or in_dim < 1:
            raise PhysioSyncError(f"Invalid projector sizes in_dim={in_dim}, dims={dims}.")
        if not 0.0 <= dropout < 1.0:
            raise PhysioSyncError(f"dropout must be in [0, 1), got {dropout!r}.")
        self.in_dim, self.out_dim = in_dim, dims[-1]
        layers: list[nn.Module] = []
        prev = in_dim
        for d in dims[:-1]:
            layers += [nn.Linear(prev, d), nn.BatchNorm1d(d)]
            act = _make_activation(activation)
            if act is not None:
                layers.append(act)
            layers.append(nn.Dropout(dropout))
            prev = d
        layers.append(nn.Linear(prev, dims[-1]))
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Project encoder features.

        Parameters
        ----------
        h : torch.Tensor
            ``(B, in_dim)``.

        Returns
        -------
        torch.Tensor
            ``(B, dims[-1])``.
        """
        _check_2d("Projector", h, self.in_dim)
        return self.net(h)


class CMCAHead(nn.Module):
    """Shared cross-modal head of CM-CA: ``Linear(in, out) -> BN``.

    The same Linear and BatchNorm1d are applied to the EEG and to the peripheral
    features separately. As in the reference, the BatchNorm is called twice per step,
    so its running statistics mix the two modalities (each call updates them), while
    the batch statistics used in training are per modality.

    Parameters
    ----------
    in_dim : int
        Encoder feature size (4D: 512 at 1 s, 2560 at 5 s).
    out_dim : int
        Output size (1024 in the reference).

    Notes
    -----
    Parameters: ``(in_dim + 3) * out_dim`` (527,360 at in_dim 512).
    """

    def __init__(self, in_dim: int, out_dim: int = 1024):
        super().__init__()
        if in_dim < 1 or out_dim < 1:
            raise PhysioSyncError(f"Invalid CM-CA sizes in_dim={in_dim}, out_dim={out_dim}.")
        self.in_dim, self.out_dim = in_dim, out_dim
        self.linear = nn.Linear(in_dim, out_dim)
        self.norm = nn.BatchNorm1d(out_dim)
        self.apply(init_weights)

    def forward(self, h_eeg: torch.Tensor, h_pps: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Map both modalities through the shared head.

        Parameters
        ----------
        h_eeg, h_pps : torch.Tensor
            ``(N, in_dim)`` EEG and peripheral encoder features (N = 2B rows in
            pre-training).

        Returns
        -------
        e, p : torch.Tensor
            ``(N, out_dim)`` each.
        """
        _check_2d("CMCAHead (h_eeg)", h_eeg, self.in_dim)
        _check_2d("CMCAHead (h_pps)", h_pps, self.in_dim)
        return self.norm(self.linear(h_eeg)), self.norm(self.linear(h_pps))


class HierarchicalFusionHead(nn.Module):
    """Confidence-gated long/short-term fusion classifier.

    Every feature f is scaled by its confidence ``gate(f) = f * max_c softmax(W f + b)_c``,
    a scalar per sample in ``[1/C, 1]``. One probe ``Linear(long_dim, C)`` is shared by
    all long-term features and one ``Linear(short_dim, C)`` by all short-term features;
    the probes have no loss of their own and learn only through the gates. The gated
    features are concatenated per modality, ``[gate(long), gate(short_1), ...,
    gate(short_n_sub)]``, modalities in the given order, and classified by
    ``Linear(in, 256) -> BN -> ReLU -> Linear(256, 128) -> BN -> ReLU -> Dropout ->
    Linear(128, C)``.

    Parameters
    ----------
    long_dim : int
        Size of a long-term (5 s) feature, e.g. 2560. Ignored when ``use_long=False``.
    short_dim : int
        Size of a short-term (1 s) feature, e.g. 512. Ignored when ``use_short=False``.
    n_modalities : int
        Number of modalities (2: EEG and GSR/ECG).
    n_sub : int
        Short-term windows per sample (5 for DEAP 5 s windows, 1 for DREAMER).
    n_classes : int
        Number of classes C (>= 2).
    use_long, use_short : bool
        Which scales feed the classifier (at least one).
    gate : bool
        Apply the confidence gates; ``False`` concatenates the raw features and creates
        no probes.
    hidden : sequence of int
        Hidden sizes of the MLP; each is ``Linear -> BN -> ReLU``.
    dropout : float
        Dropout before the last Linear (``nn.Dropout``).

    Attributes
    ----------
    in_features : int
        Size of the concatenated feature (10,240 for DEAP, 1,024 for DREAMER).

    Notes
    -----
    Parameter counts: DEAP (2560, 512, 2 modalities, 5 sub-windows) 2,661,766 for C = 2
    and 2,668,172 for C = 4; DREAMER (long disabled, 512, 2, 1) 297,348 for C = 2.
    """

    def __init__(self, long_dim: int, short_dim: int, n_modalities: int, n_sub: int,
                 n_classes: int, *, use_long: bool = True, use_short: bool = True,
                 gate: bool = True, hidden: Sequence[int] = (256, 128),
                 dropout: float = 0.2):
        super().__init__()
        if not (use_long or use_short):
            raise PhysioSyncError("At least one of use_long and use_short must be True.")
        for name, value, needed in (("long_dim", long_dim, use_long),
                                    ("short_dim", short_dim, use_short),
                                    ("n_sub", n_sub, use_short),
                                    ("n_modalities", n_modalities, True)):
            if needed and (not isinstance(value, int) or value < 1):
                raise PhysioSyncError(f"{name} must be a positive integer, got {value!r}.")
        if not isinstance(n_classes, int) or n_classes < 2:
            raise PhysioSyncError(f"n_classes must be an integer >= 2, got {n_classes!r}.")
        if not 0.0 <= dropout < 1.0:
            raise PhysioSyncError(f"dropout must be in [0, 1), got {dropout!r}.")
        self.long_dim, self.short_dim = long_dim, short_dim
        self.n_modalities, self.n_sub, self.n_classes = n_modalities, n_sub, n_classes
        self.use_long, self.use_short, self.gate = use_long, use_short, gate
        per_modality = (long_dim if use_long else 0) + (n_sub * short_dim if use_short else 0)
        self.in_features = n_modalities * per_modality

        # Probes exist only where a gate uses them: no dead parameters.
        self.long_probe = nn.Linear(long_dim, n_classes) if gate and use_long else None
        self.short_probe = nn.Linear(short_dim, n_classes) if gate and use_short else None
        layers: list[nn.Module] = []
        prev = self.in_features
        for h in hidden:
            layers += [nn.Linear(prev, h), nn.BatchNorm1d(h), nn.ReLU()]
            prev = h
        layers += [nn.Dropout(dropout), nn.Linear(prev, n_classes)]
        self.classifier = nn.Sequential(*layers)
        self.apply(init_weights)

    @staticmethod
    def _gate(f: torch.Tensor, probe: nn.Linear) -> torch.Tensor:
        # Softmax in float32 so the confidence is stable under fp16 autocast.
        conf = torch.softmax(probe(f).float(), dim=-1).amax(dim=-1, keepdim=True)
        return f * conf.to(f.dtype)

    def _check_list(self, name: str, feats, used: bool, shape_tail: tuple) -> None:
        if not used:
            if feats is not None:
                raise PhysioSyncError(
                    f"{name} was given but this head was built with "
                    f"use_{name.split('_')[0]}=False; pass None.")
            return
        if feats is None or len(feats) != self.n_modalities:
            got = "None" if feats is None else f"{len(feats)} tensors"
            raise ShapeError(
                f"{name} must be a list of {self.n_modalities} tensors (one per modality), "
                f"got {got}.")
        for m, f in enumerate(feats):
            if tuple(f.shape[1:]) != shape_tail:
                expected = ", ".join(("batch",) + tuple(map(str, shape_tail)))
                raise ShapeError(
                    f"{name}[{m}] expected shape ({expected}), got {tuple(f.shape)}.")

    def forward(self, long_feats: Sequence[torch.Tensor] | None,
                short_feats: Sequence[torch.Tensor] | None) -> torch.Tensor:
        """Gate, concatenate and classify.

        Parameters
        ----------
        long_feats : list of torch.Tensor or None
            One ``(B, long_dim)`` tensor per modality; ``None`` when ``use_long=False``.
        short_feats : list of torch.Tensor or None
            One ``(B, n_sub, short_dim)`` tensor per modality (sub-windows in time
            order); ``None`` when ``use_short=False``.

        Returns
        -------
        torch.Tensor
            ``(B, n_classes)`` logits.
        """
        self._check_list("long_feats", long_feats, self.use_long, (self.long_dim,))
        self._check_list("short_feats", short_feats, self.use_short,
                         (self.n_sub, self.short_dim))
        batch = {f.shape[0] for f in (long_feats or [])} | {
            f.shape[0] for f in (short_feats or [])}
        if len(batch) != 1:
            raise ShapeError(f"All features must have the same batch size, got {sorted(batch)}.")
        parts = []
        for m in range(self.n_modalities):
            if self.use_long:
                f = long_feats[m]
                parts.append(self._gate(f, self.long_probe) if self.gate else f)
            if self.use_short:
                f = short_feats[m]
                if self.gate:
                    f = self._gate(f, self.short_probe)  # one gate per sub-window
                parts.append(f.flatten(1))
        return self.classifier(torch.cat(parts, dim=1))
