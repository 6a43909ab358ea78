"""The assembled PhysioSync networks: what pre-training and fine-tuning train.

* :class:`PretrainModel` -- the encoders of one window length with their contrastive
  projectors and the shared CM-CA head (what pre-training optimises);
* :class:`PhysioSyncNet` -- the long- and short-window encoders of every modality
  under the hierarchical fusion head (the fine-tuned classifier).

Both rebuild from the plain-dict configuration they store in checkpoints.
"""

from __future__ import annotations

from dataclasses import asdict

import torch
from torch import nn

from ..exceptions import ConfigError, PhysioSyncError
from ..params import FinetuneConfig, PretrainConfig
from ..preprocessing.windows import split_sub_windows
from .encoders import SignalEncoder
from .heads import CMCAHead, HierarchicalFusionHead, Projector
from .._utils.docs import fill_doc

__all__ = ["build_encoders", "default_embed_dim", "PretrainModel", "PhysioSyncNet"]


def default_embed_dim(n_times: int, n_heads: int) -> int:
    """The token size for windows of *n_times* samples when ``embed_dim`` is None.

    The window length rounded down to a multiple of *n_heads* (at least *n_heads*),
    so that the attention heads split it evenly.
    """
    return max(n_times - n_times % n_heads, n_heads)


#: The keys of a :class:`~physiosync.params.PretrainConfig` that decide the encoders'
#: weights (names and shapes), as :func:`build_encoders` reads them.
ENCODER_KEYS = ("embedding", "embed_dim", "depth", "n_heads", "n_prompts")


def build_encoders(n_chans: dict, n_times: dict, config: PretrainConfig) -> nn.ModuleDict:
    """One :class:`SignalEncoder` per modality (EEG first) with the config's sizes.

    The token size (``config.embed_dim``) defaults to the EEG window length in samples,
    rounded down to a multiple of ``config.n_heads``, shared by all modalities; only
    the EEG encoder gets prompts and dropout (as in the reference). A size resolved
    from the window length is not held to ``embed_dim``'s upper bound, which guards
    against typed values only.
    """
    eeg = next(iter(n_chans))
    dim = config.embed_dim or default_embed_dim(n_times[eeg], config.n_heads)
    return nn.ModuleDict({
        m: SignalEncoder(n_chans[m], n_times[m], dim, depth=config.depth,
                         n_heads=config.n_heads,
                         n_prompts=config.n_prompts if m == eeg else 0,
                         dropout=config.eeg_dropout if m == eeg else 0.0,
                         embedding=config.embedding)
        for m in n_chans})


class PretrainModel(nn.Module):
    """Encoders, projectors and CM-CA head of one window length.

    Parameters
    ----------
    n_chans, n_times : dict of str -> int
        Channels and samples per window of each modality; the first key is the EEG.
    config : PretrainConfig
        Hyper-parameters.
    """

    def __init__(self, n_chans: dict, n_times: dict, config: PretrainConfig):
        super().__init__()
        self.modalities = tuple(n_chans)
        self.n_chans, self.n_times = dict(n_chans), dict(n_times)
        self.config = config
        self.encoders = build_encoders(self.n_chans, self.n_times, config)
        dim = self.embed_dim = self.encoders[self.modalities[0]].out_dim // 4
        feat = 4 * dim
        self.projectors = nn.ModuleDict({
            m: Projector(feat, dims=config.projector_dims, dropout=config.projector_dropout)
            for m in self.modalities})
        self.cmca_head = (CMCAHead(feat, config.cmca_dim)
                          if len(self.modalities) == 2 and config.cmca_variant != "none" else None)

    def resolved_config(self) -> dict:
        """The configuration with the shapes, enough to rebuild the model."""
        d = asdict(self.config)
        d.update(n_chans=self.n_chans, n_times=self.n_times,
                 modalities=list(self.modalities), embed_dim_resolved=self.embed_dim)
        return d

    @classmethod
    def from_config(cls, d: dict) -> "PretrainModel":
        """Rebuild a model from :meth:`resolved_config` output."""
        n_chans = {m: d["n_chans"][m] for m in d["modalities"]}
        n_times = {m: d["n_times"][m] for m in d["modalities"]}
        return cls(n_chans, n_times, PretrainConfig.from_dict(d))

    def encoder(self, modality: str) -> nn.Module:
        """The encoder of *modality*, a plain :class:`torch.nn.Module`."""
        return self.encoders[modality]


@fill_doc
class PhysioSyncNet(nn.Module):
    """Long and short encoders per modality plus the hierarchical fusion head.

    Parameters
    ----------
    n_chans : dict of str -> int
        Channels per modality, EEG first.
    n_times : dict of str -> int
        Samples per *long* window of each modality.
    %(n_sub)s
    n_classes : int
        Number of classes.
    config : FinetuneConfig
        Head and ablation settings.
    long_config, short_config : PretrainConfig | None
        Encoder sizes of the long and short branches (default ``PretrainConfig()``).
    """

    def __init__(self, n_chans: dict, n_times: dict, n_sub: int, n_classes: int,
                 config: FinetuneConfig, long_config: PretrainConfig | None = None,
                 short_config: PretrainConfig | None = None):
        super().__init__()
        mods = tuple(config.modalities or n_chans)
        unknown = [m for m in mods if m not in n_chans]
        if unknown:
            raise PhysioSyncError(f"modalities {unknown} are not in the data {list(n_chans)}.")
        self.modalities = mods
        self.n_chans = {m: int(n_chans[m]) for m in mods}
        self.n_times = {m: int(n_times[m]) for m in mods}
        self.n_sub, self.n_classes, self.config = int(n_sub), int(n_classes), config
        for m in mods if config.use_short else ():
            if self.n_times[m] % self.n_sub:
                raise PhysioSyncError(
                    f"{m} windows of {self.n_times[m]} samples do not split into {n_sub} "
                    "equal short windows.")
        self.long_config = long_config or PretrainConfig()
        self.short_config = short_config or self.long_config
        self.long = (build_encoders(self.n_chans, self.n_times, self.long_config)
                     if config.use_long else None)
        short_times = {m: t // self.n_sub for m, t in self.n_times.items()}
        self.short = (build_encoders(self.n_chans, short_times, self.short_config)
                      if config.use_short else None)
        long_dim = self.long[mods[0]].out_dim if self.long is not None else 1
        short_dim = self.short[mods[0]].out_dim if self.short is not None else 1
        self.head = HierarchicalFusionHead(
            long_dim, short_dim, len(mods), self.n_sub, self.n_classes,
            use_long=config.use_long, use_short=config.use_short, gate=config.gate,
            hidden=config.hidden, dropout=config.dropout)

    # ------------------------------------------------------------ construction
    def resolved_config(self) -> dict:
        """Everything needed to rebuild this network (see :meth:`from_config`)."""
        return {"n_chans": self.n_chans, "n_times": self.n_times, "n_sub": self.n_sub,
                "n_classes": self.n_classes, "modalities": list(self.modalities),
                "finetune": asdict(self.config), "long": asdict(self.long_config),
                "short": asdict(self.short_config)}

    @classmethod
    def from_config(cls, d: dict) -> "PhysioSyncNet":
        """Rebuild from :meth:`resolved_config` output."""
        mods = d["modalities"]
        return cls({m: d["n_chans"][m] for m in mods}, {m: d["n_times"][m] for m in mods},
                   d["n_sub"], d["n_classes"], FinetuneConfig.from_dict(d["finetune"]),
                   PretrainConfig.from_dict(d["long"]), PretrainConfig.from_dict(d["short"]))

    def pretrained_mismatch(self, name: str, source) -> list:
        """What differs between pre-trained encoders and this network's *name* branch.

        Parameters
        ----------
        name : {"long", "short"}
            The branch.
        source : PretrainModel
            The pre-trained model (e.g. from :func:`~physiosync.load_checkpoint`).

        Returns
        -------
        differences : list of (str, object, object)
            ``(key, pre-trained value, this network's value)`` for each encoder key
            (:data:`ENCODER_KEYS`, ``embed_dim`` as resolved), modality, channel count
            and window length that differs; empty when the weights fit. A branch this
            network does not use has no differences.
        """
        branch = self.long if name == "long" else self.short
        if branch is None:
            return []
        mine = self.long_config if name == "long" else self.short_config
        theirs = source.config
        diff = [(k, getattr(theirs, k), getattr(mine, k)) for k in ENCODER_KEYS
                if k != "embed_dim" and getattr(theirs, k) != getattr(mine, k)]
        dim = branch[self.modalities[0]].out_dim // 4
        if source.embed_dim != dim:
            diff.append(("embed_dim", source.embed_dim, dim))
        missing = [m for m in self.modalities if m not in source.encoders]
        if missing:
            diff.append(("modalities", list(source.modalities), list(self.modalities)))
        n_times = (self.n_times if name == "long"
                   else {m: t // self.n_sub for m, t in self.n_times.items()})
        for m in self.modalities:
            if m in missing:
                continue
            if source.n_chans[m] != self.n_chans[m]:
                diff.append((f"{m} channels", source.n_chans[m], self.n_chans[m]))
            if source.n_times[m] != n_times[m]:
                diff.append((f"{m} window samples", source.n_times[m], n_times[m]))
        return diff

    def load_pretrained(self, long=None, short=None) -> "PhysioSyncNet":
        """Copy encoder weights from pre-trained :class:`~physiosync.training.pretrain.PretrainModel` s.

        Raises
        ------
        ConfigError
            If the pre-trained encoders were built with another configuration
            (:meth:`pretrained_mismatch`); the message names the differing keys.
        """
        for name, branch, source in (("long", self.long, long), ("short", self.short, short)):
            if branch is None or source is None:
                continue
            diff = self.pretrained_mismatch(name, source)
            if diff:
                raise ConfigError(f"the pre-trained {name} encoders do not fit this model: "
                                  f"{describe_mismatch(diff)}.")
            for m in self.modalities:
                branch[m].load_state_dict(source.encoders[m].state_dict())
        return self

    def encoders(self) -> dict:
        """The encoders as plain modules: ``{"long": {m: ...}, "short": {m: ...}}``."""
        return {name: dict(branch.items()) for name, branch in
                (("long", self.long), ("short", self.short)) if branch is not None}

    # ----------------------------------------------------------------- forward
    def _check(self, x: dict):
        for m in self.modalities:
            if m not in x:
                raise PhysioSyncError(f"missing input for modality {m!r}.")
            shape = tuple(x[m].shape)
            want = (self.n_chans[m], self.n_times[m])
            if len(shape) != 3 or shape[1:] != want:
                raise PhysioSyncError(
                    f"{m} input has shape {shape}; expected (batch, {want[0]}, {want[1]}).")

    def features(self, x: dict):
        """Long and short features: two lists (one entry per modality) or None."""
        self._check(x)
        long_feats = short_feats = None
        if self.long is not None:
            long_feats = [self.long[m](x[m]) for m in self.modalities]
        if self.short is not None:
            short_feats = []
            for m in self.modalities:
                b, c, t = x[m].shape
                ts = t // self.n_sub
                # (B, C, n_sub, ts) -> the n_sub short windows of each long one, window-major
                xs = split_sub_windows(x[m], self.n_sub).transpose(1, 2).reshape(-1, c, ts)
                short_feats.append(self.short[m](xs).view(b, self.n_sub, -1))
        return long_feats, short_feats

    def forward(self, x: dict) -> torch.Tensor:
        """Class logits ``(B, n_classes)`` from long windows ``{m: (B, C_m, T_m)}``."""
        return self.head(*self.features(x))

    def embed(self, x: dict) -> torch.Tensor:
        """Concatenated encoder features (no gating), ``(B, n_features)``."""
        long_feats, short_feats = self.features(x)
        parts = []
        for i in range(len(self.modalities)):
            if long_feats is not None:
                parts.append(long_feats[i])
            if short_feats is not None:
                parts.append(short_feats[i].flatten(1))
        return torch.cat(parts, dim=1)


def describe_mismatch(diff) -> str:
    """``[("embed_dim", 8, 16)]`` -> ``"embed_dim 8 (pre-trained) vs 16 (this run)"``."""
    return ", ".join(f"{key} {theirs!r} (pre-trained) vs {mine!r} (this run)"
                     for key, theirs, mine in diff)
