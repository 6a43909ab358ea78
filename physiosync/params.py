"""Parameters of every stage of a run, free of torch.

Each stage's hyper-parameters are a dataclass here, and every set of allowed values
is declared once, beside its parameter (the pipeline kinds and the baselines' options are
declared in :mod:`physiosync.pipeline_specs`, the datasets in
:mod:`physiosync.dataset_specs`). The configuration loader
(:mod:`physiosync.config`), the command line and the stages themselves validate
against these declarations, so a value is refused with the same message wherever it
comes from, and ``load_config`` never imports torch.
"""

from __future__ import annotations

import typing
from dataclasses import asdict, dataclass, field, fields

from ._utils.checks import AnyOf, Interval, ListOf, MappingOf, Options, validate_params
from .dataset_specs import (DATASET_SPECS, TARGETS, DatasetNames, DatasetOption, DatasetSpec,
                            DatasetTable, dataset_spec)
from .exceptions import PhysioSyncError

__all__ = [
    "PrepareParams", "PretrainConfig", "FinetuneConfig", "DataConfig", "ProtocolConfig",
    "DE_METHODS", "default_modalities",
    "DATASETS", "DEFAULT_MODALITIES", "TARGETS", "DATASET_SPECS", "DATASET_TARGETS",
    "DatasetSpec", "dataset_spec", "BASELINE_METHODS", "NORM_METHODS",
    "SYNTHETIC_AFFECT", "SYNTHETIC_CONTROLS",
    "STIMULUS_ALIGNS", "BDF_PREPROCESSING", "THRESHOLDS", "RELEASE_SFREQ", "RELEASE_BAND",
    "EMBEDDINGS", "CMCA_PAIRINGS", "CMCA_VARIANTS", "OPTIMIZERS", "AUGMENT_PAIRINGS",
    "PRETRAIN_OBJECTIVES",
    "SCHEDULERS", "EPOCH_SELECTIONS", "ONE_CLASS_RULES", "PROTOCOLS", "PROTOCOL_TRAITS",
    "ProtocolTraits", "SEED", "EXECUTORS", "AMP_MODES", "LABEL_BUDGET_ALL", "PRETRAIN_HELD_OUT",
]

# -- data ------------------------------------------------------------------------------
# Each dataset is declared once, in physiosync.dataset_specs (DATASET_SPECS); the tables
# below are views of those declarations, keyed by configuration name ("deap"), that a
# lookup by display name ("DEAP") also finds, and that follow a dataset registered later.
#: Dataset formats that ``data.name`` may name.
DATASETS = DatasetNames()
#: Modalities prepared when none are named: EEG first, then one peripheral signal.
DEFAULT_MODALITIES = DatasetTable("default_modalities")
BASELINE_METHODS = ("deviation", "mean", "none")
NORM_METHODS = ("spatial", "channel", "subject", "none")
#: Affect models of the synthetic writers (``physiosync.synthetic``).
SYNTHETIC_AFFECT = ("static", "dynamics")
#: Paired controls of ``affect="dynamics"``; ``"none"`` is the model itself.
SYNTHETIC_CONTROLS = ("none", "static-affect", "shuffled")
#: Rating at or above which a trial is "high", per dataset (DEAP 1-9, DREAMER 1-5 scales).
THRESHOLDS = DatasetTable("threshold")
#: The rating targets each dataset offers (a subset of :data:`TARGETS`).
DATASET_TARGETS = DatasetTable("targets")
#: What ``PrepareParams.bdf_preprocessing`` may be.
BDF_PREPROCESSING = ("release", "none")
#: Sampling rate (Hz) and EEG pass band (Hz) of DEAP's preprocessed (``.dat``) release.
RELEASE_SFREQ = 128.0
RELEASE_BAND = (4.0, 45.0)
STIMULUS_ALIGNS = ("start", "end")

# -- models and training ---------------------------------------------------------------
#: Token embeddings of :class:`~physiosync.models.SignalEncoder`.
EMBEDDINGS = ("multiview", "factorised", "spectral")
#: Which EEG and peripheral windows CM-CA aligns (the authors' pairing, or the same subjects).
CMCA_PAIRINGS = ("cross-subject", "same-subject")
#: ``pretrain.cmca_variant``: a CM-CA pairing or ``"none"`` (no cross-modal term).
CMCA_VARIANTS = CMCA_PAIRINGS + ("none",)
OPTIMIZERS = ("adam", "adamw")
AUGMENT_PAIRINGS = ("independent", "shared")
#: Pre-training objectives: ``"ls-tcl"`` (inter-subject temporal contrast and CM-CA,
#: PhysioSync) or ``"simclr"`` (two augmented views of one EEG window; a baseline kind).
PRETRAIN_OBJECTIVES = ("ls-tcl", "simclr")
SCHEDULERS = ("cosine-restarts", "none")
#: ``pretrain.held_out``: the units of the held-out diagnostic of pre-training. ``"val"``
#: keeps each fold's validation units out of pre-training and measures the encoders on
#: them; ``"unused"`` measures the units a fold neither pre-trains on nor tests (only
#: ``subject-stimulus-kfold`` has any) and changes nothing; ``"none"`` measures nothing.
PRETRAIN_HELD_OUT = ("val", "unused", "none")
EPOCH_SELECTIONS = ("val_loss", "val_balanced_accuracy", "last")

# -- evaluation ------------------------------------------------------------------------
#: The label budget of ``protocol.labelled_trials`` that keeps every training trial.
LABEL_BUDGET_ALL = "all"

@dataclass(frozen=True)
class ProtocolTraits:
    """What an evaluation protocol holds out: the facts every stage reads.

    The configuration loader, the reports and the experiment read these traits;
    :mod:`physiosync.evaluation.protocols` pairs each with its split function.

    Parameters
    ----------
    name : str
        The name in configurations (``protocol.name``) and reports.
    held_out : tuple of {"subject", "trial", "session"}
        Unit columns that a fold holds out whole: ``("trial",)`` (stimuli, within
        subjects), ``("session",)`` (recording sessions, within subjects),
        ``("subject",)``, ``("subject", "trial")`` (both together), or ``()`` for a
        protocol that splits windows, not units. A held-out ``"trial"`` is a held-out
        *stimulus*: a clip shown in several sessions is held out in all of them.
    leave_one_out : bool
        One fold per held-out group (``n_splits`` unused).
    description : str
        What a fold tests, in a few words.
    first_trials : bool
        One fold, within subjects and sessions: the first ``protocol.train_trials``
        trials of each session (in presentation order) train, the others test (the
        common SEED split). ``held_out`` must then be ``("trial",)``.
    """

    name: str
    held_out: tuple = ("trial",)
    leave_one_out: bool = False
    description: str = ""
    first_trials: bool = False

    def __post_init__(self):
        if tuple(self.held_out) not in ((), ("trial",), ("subject",), ("subject", "trial"),
                                        ("session",)):
            raise PhysioSyncError(
                f"protocol {self.name!r}: held_out must be (), ('trial',), ('subject',), "
                f"('subject', 'trial') or ('session',), got {self.held_out!r}.")
        if self.first_trials and (tuple(self.held_out) != ("trial",) or self.leave_one_out):
            raise PhysioSyncError(f"protocol {self.name!r}: first_trials holds out trials "
                                  "(held_out ('trial',)) in one fold, not leave-one-out.")

    @property
    def within_subject(self) -> bool:
        """True if every subject is in training and test: folds hold out stimuli or
        sessions of each subject."""
        return tuple(self.held_out) in (("trial",), ("session",))

    @property
    def needs_sessions(self) -> bool:
        """True if the protocol holds out sessions (data from two or more are needed)."""
        return "session" in self.held_out

    @property
    def splits_windows(self) -> bool:
        """True if windows, not units, are split (``n_windows`` is needed)."""
        return not self.held_out

    @property
    def leaky(self) -> bool:
        """True if test windows share units with training: results carry a warning."""
        return self.splits_windows

    @property
    def uses_n_splits(self) -> bool:
        """False for the leave-one-group-out protocols and the fixed split, which ignore
        ``n_splits``."""
        return not (self.leave_one_out or self.first_trials)

    @property
    def per_subject_models(self) -> bool:
        """Whether fine-tuning fits one model per subject unless ``protocol.pooled``."""
        return self.within_subject


#: Every evaluation protocol's traits by name, in documentation order (the split
#: functions are in :mod:`physiosync.evaluation.protocols`).
PROTOCOL_TRAITS: dict[str, ProtocolTraits] = {t.name: t for t in (
    ProtocolTraits("within-trial-kfold", ("trial",),
                   description="a set of stimuli, for every subject"),
    ProtocolTraits("within-loto", ("trial",), leave_one_out=True,
                   description="one stimulus, for every subject"),
    ProtocolTraits("loso", ("subject",), leave_one_out=True,
                   description="one subject, all stimuli"),
    ProtocolTraits("subject-kfold", ("subject",), description="a set of subjects"),
    ProtocolTraits("subject-stimulus-kfold", ("subject", "trial"),
                   description="a set of subjects on a set of stimuli"),
    ProtocolTraits("legacy-segment", (), description="random windows, pooled (authors' protocol)"),
    ProtocolTraits("cross-session", ("session",), leave_one_out=True,
                   description="one session, for every subject (trained on the others)"),
    ProtocolTraits("session-split", ("trial",), first_trials=True,
                   description="the last trials of each session, for every subject"),
)}
#: Names of the evaluation protocols.
PROTOCOLS = tuple(PROTOCOL_TRAITS)
#: What happens to a model whose training windows hold one class.
ONE_CLASS_RULES = ("error", "constant")
#: ``amp`` of pre-training and fine-tuning: float32, float16 on CUDA, or bfloat16 anywhere.
AMP_MODES = (False, True, "bf16")
#: Where the units of a study run (:mod:`physiosync.execution`).
EXECUTORS = ("serial", "processes", "ray")
#: ``pretrain.compile``: eager (None), or a mode of :func:`torch.compile` for the step.
COMPILE_MODES = (None, "default", "reduce-overhead", "max-autotune")
#: How the differential-entropy baselines measure a band's variance
#: (:func:`physiosync.preprocessing.features.differential_entropy`).
DE_METHODS = ("welch", "filter")

# -- bounds ----------------------------------------------------------------------------
# Every count and size has an upper bound, so that a typo (an extra zero, ``1e9``) is
# refused before any compute instead of exhausting memory or running for days.
_MAX_DIM = 16_384        # widths: cmca_dim, projector_dims[i], hidden[i]
_MAX_STEPS = 10_000_000  # pre-training steps, checkpoint_every
_MAX_EPOCHS = 100_000
#: Seeds are ``0 <= seed < 2**63`` (every derived seed is 63-bit).
SEED = Interval(int, 0, 2**63, closed="left")
_DROPOUT = Interval(float, 0, 1, closed="left")
_LR = Interval(float, 0, 10, closed="right")
_WEIGHT_DECAY = Interval(float, 0, 10, closed="both")
_WIDTH = Interval(int, 1, _MAX_DIM, closed="both")
_EPOCHS = Interval(int, 1, _MAX_EPOCHS, closed="both")
_MODALITIES = ListOf(str, None, 1, 8, allow_none=True)
_NORM = MappingOf(Options(NORM_METHODS))


def default_modalities(dataset: str) -> tuple:
    """Modalities prepared when none are named (:data:`DEFAULT_MODALITIES`).

    Parameters
    ----------
    dataset : str
        A dataset's configuration or display name, in any case (``"deap"``,
        ``"DREAMER"``).

    Returns
    -------
    modalities : tuple of str

    Raises
    ------
    ConfigError
        If no dataset of that name is declared (:data:`DATASET_SPECS`).
    """
    return dataset_spec(dataset).default_modalities


class _FromDict:
    """``from_dict``: build a parameter dataclass from a stored dict (checkpoints, reports)."""

    @classmethod
    def from_dict(cls, d: dict):
        """Build from a dict, ignoring keys that are not fields (e.g. stored shapes)."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})


@dataclass(frozen=True)
class PrepareParams:
    """Everything that determines the prepared arrays (and so the cache key).

    Parameters
    ----------
    modalities : tuple of str
        Modalities to prepare, e.g. ``("eeg", "gsr")`` for DEAP, ``("eeg", "ecg")``
        for DREAMER.
    baseline : {"deviation", "mean", "none"}
        ``"deviation"`` (PhysioSync): the mean of the baseline's 1 s
        chunks is subtracted from every 1 s chunk of the stimulus. ``"mean"``: the
        baseline's per-channel mean is subtracted. ``"none"``: nothing.
    norm : dict of str -> str
        Per-modality normalisation: ``"spatial"`` (z-score across channels at every
        time sample, the reference's EEG normalisation), ``"channel"`` (z-score of
        each channel over its trial), ``"subject"`` (each channel divided by one
        scale per subject, the SD of its pre-stimulus baselines pooled over the
        subject's trials, so that differences of level and amplitude between trials
        survive; with ``baseline="mean"`` this is ``(x - baseline mean) / subject
        scale``) or ``"none"``. Modalities not listed use ``"spatial"`` for EEG and
        ``"channel"`` for the rest (the reference leaves GSR raw; pass
        ``{"gsr": "none"}`` to reproduce that).
    stimulus_seconds : float | None
        Stimulus length to keep from every trial. ``None`` keeps the longest length
        common to all trials of the subject (60 s on DEAP; the shortest clip on
        DREAMER).
    stimulus_align : {"start", "end"}
        Keep the first (``"start"``, the reference's choice on DREAMER) or the last
        *stimulus_seconds* of each stimulus.
    dtype : str
        Storage dtype of the prepared arrays.
    bdf_preprocessing : {"release", "none"}
        What happens to the original DEAP recordings (``sXX.bdf``, 512 Hz) before the
        steps above; recordings from any other file are not touched. ``"release"``
        (default) reproduces the preprocessed ``.dat`` release, for which the
        configurations are tuned: every modality is resampled to 128 Hz (with MNE's
        anti-alias low-pass), and EEG is band-passed 4-45 Hz and re-referenced to the
        common average (see ``release_preprocess()``). Each trial (its baseline and
        stimulus, contiguous in the file) is filtered on its own, so the first and last
        tenths of a second see the filter's edge padding. The release also removed
        EOG artefacts; that is not reproduced. ``"none"``: the signals at 512 Hz, as
        recorded.
    """

    modalities: tuple = DEFAULT_MODALITIES["deap"]
    baseline: str = "deviation"
    norm: dict = field(default_factory=dict)
    stimulus_seconds: float | None = None
    stimulus_align: str = "start"
    dtype: str = "float32"
    bdf_preprocessing: str = "release"

    _parameter_constraints: typing.ClassVar[dict] = {
        "modalities": ListOf(str, None, 1),
        "baseline": Options(BASELINE_METHODS),
        "norm": _NORM,
        "stimulus_seconds": Interval(float, 0, None, closed="neither", allow_none=True),
        "stimulus_align": Options(STIMULUS_ALIGNS),
        "bdf_preprocessing": Options(BDF_PREPROCESSING),
    }

    def __post_init__(self):
        object.__setattr__(self, "modalities", tuple(self.modalities))
        validate_params(self)
        object.__setattr__(self, "norm", dict(self.norm))

    def norm_for(self, modality: str) -> str:
        """Normalisation method used for *modality*."""
        return self.norm.get(modality, "spatial" if modality == "eeg" else "channel")

    def to_dict(self) -> dict:
        """A JSON-serialisable description (used for the cache key)."""
        d = asdict(self)
        d["modalities"] = list(self.modalities)
        d["norm"] = {m: self.norm_for(m) for m in self.modalities}
        return d


@dataclass
class PretrainConfig(_FromDict):
    """Hyper-parameters of one pre-training run (defaults: the reference's DEAP setting).

    Parameters
    ----------
    embed_dim : int | None
        Token size D; ``None`` uses the EEG window length in samples (the reference:
        128 at 1 s, 640 at 5 s), rounded down to a multiple of ``n_heads`` and not held
        to the upper bound of a typed value. Both encoders share it (CM-CA's head is
        shared).
    depth, n_heads : int
        Transformer blocks and attention heads.
    n_prompts : int
        Learnable prompt tokens per block, EEG encoder only.
    eeg_dropout : float
        Dropout after the token assembly of the EEG encoder (the reference: 0.2).
    embedding : {"multiview", "factorised", "spectral"}
        Embedding of the encoders (see :class:`~physiosync.models.SignalEncoder`).
    projector_dims : tuple of int
        Sizes of the contrastive projector.
    projector_dropout : float
        Dropout inside the projector (a module: off in eval mode).
    cmca_dim : int
        Output size of the shared CM-CA head.
    temperature : float
        NT-Xent temperature.
    loss_weights : tuple of float
        ``(w_eeg, w_pps, w_cmca)``; the reference uses ``(0.5, 0.5, 1.0)``.
    cmca_variant : {"cross-subject", "same-subject", "none"}
        CM-CA as coded by the authors, EEG<->peripheral of the same subjects, or off.
    optimizer : {"adam", "adamw"}
        Adam with coupled L2 (the reference) or AdamW.
    lr, weight_decay : float
        Learning rate and weight decay (the reference: 7e-4 and 1e-3 on DEAP).
    batch_slots, group_size : int
        Stimulus slots per batch (B) and subjects per group (N).
    steps : int | None
        Optimisation steps; ``None`` runs *epochs* passes over the usable slots.
    epochs : int
        Passes over the slots when *steps* is None.
    augment : bool
        On-the-fly augmentation (six kinds).
    augment_pairing : {"independent", "shared"}
        ``"independent"``: every window draws its own augmentation kind. ``"shared"``:
        both subject groups of a slot get the same kind, as the reference's aligned,
        pre-augmented copies imply; the positives then share their amplitude scaling
        and noise, a shortcut the contrastive task can match instead of the stimulus.
    snr_db : float
        SNR of the additive-noise augmentation.
    amp : bool | "bf16"
        Mixed precision. ``True``: float16 autocast with loss scaling, on CUDA only
        (ignored on the CPU). ``"bf16"``: bfloat16 autocast on any device (no loss
        scaling needed), for GPUs and for CPUs with AVX512-BF16 or AMX; results then
        differ from float32 in the last digits. ``False`` (default): float32.
    checkpoint_every : int
        Steps between checkpoints (when a checkpoint path is given).
    seed : int
        Seed of everything random in the run.
    """

    embed_dim: int | None = None
    depth: int = 3
    n_heads: int = 4
    n_prompts: int = 2
    eeg_dropout: float = 0.2
    embedding: str = "multiview"
    projector_dims: tuple = (1024, 2048, 4096)
    projector_dropout: float = 0.2
    cmca_dim: int = 1024
    temperature: float = 0.1
    loss_weights: tuple = (0.5, 0.5, 1.0)
    cmca_variant: str = "cross-subject"
    optimizer: str = "adam"
    lr: float = 7e-4
    weight_decay: float = 1e-3
    batch_slots: int = 8
    group_size: int = 2
    steps: int | None = None
    epochs: int = 1
    augment: bool = True
    augment_pairing: str = "independent"
    snr_db: float = 5.0
    amp: bool | str = False
    checkpoint_every: int = 200
    seed: int = 0

    _parameter_constraints: typing.ClassVar[dict] = {
        "embed_dim": Interval(int, 1, 4_096, closed="both", allow_none=True),
        "depth": Interval(int, 1, 64, closed="both"),
        "n_heads": Interval(int, 1, 64, closed="both"),
        "n_prompts": Interval(int, 0, 64, closed="both"),
        "eeg_dropout": _DROPOUT,
        "embedding": Options(EMBEDDINGS),
        "projector_dims": ListOf(int, _WIDTH, 1, 8),
        "projector_dropout": _DROPOUT,
        "cmca_dim": _WIDTH,
        "temperature": Interval(float, 0, 100, closed="right"),
        "loss_weights": ListOf(float, Interval(float, 0, 1_000, closed="both"), 3, 3),
        "cmca_variant": Options(CMCA_VARIANTS),
        "optimizer": Options(OPTIMIZERS),
        "lr": _LR,
        "weight_decay": _WEIGHT_DECAY,
        "batch_slots": Interval(int, 2, 4_096, closed="both"),
        "group_size": Interval(int, 1, 1_024, closed="both"),
        "steps": Interval(int, 1, _MAX_STEPS, closed="both", allow_none=True),
        "amp": Options(AMP_MODES),
        "epochs": _EPOCHS,
        "augment_pairing": Options(AUGMENT_PAIRINGS),
        "snr_db": Interval(float, -100, 100, closed="both"),
        "checkpoint_every": Interval(int, 1, _MAX_STEPS, closed="both"),
        "seed": SEED,
    }

    def __post_init__(self):
        self.projector_dims = tuple(self.projector_dims)
        self.loss_weights = tuple(self.loss_weights)
        if len(self.loss_weights) != 3:
            raise PhysioSyncError(f"loss_weights must be (w_eeg, w_pps, w_cmca), got "
                                  f"{self.loss_weights!r}.")
        validate_params(self)
        self.loss_weights = tuple(float(w) for w in self.loss_weights)



@dataclass
class FinetuneConfig(_FromDict):
    """Hyper-parameters of fine-tuning (defaults: the reference's DEAP dependent run).

    Parameters
    ----------
    modalities : tuple of str | None
        Modalities to use (EEG first); ``("eeg",)`` is the EEG-only ablation.
        ``None`` uses all those of the data.
    use_long, use_short : bool
        Use the long-window and/or the short-window encoders.
    gate : bool
        Confidence gating of the features (off = plain concatenation).
    freeze_encoders : bool
        Train the head only (encoders frozen in eval mode) instead of end to end.
    hidden : tuple of int
        Hidden sizes of the head's MLP.
    dropout : float
        Dropout before the head's output layer.
    epochs, batch_size : int
        Passes over the training windows, and windows per step.
    lr, weight_decay : float
        Adam's learning rate and weight decay (the reference: 1e-3 and none).
    optimizer : {"adam", "adamw"}
        Optimiser.
    scheduler : {"cosine-restarts", "none"}
        ``CosineAnnealingWarmRestarts`` with ``T_0 = epochs // 3`` stepped per epoch
        (the reference), or a constant learning rate.
    select : {"val_loss", "val_balanced_accuracy", "last"}
        Which epoch's weights to keep. Selection uses the validation windows only
        (drawn from training data); without them the last epoch is kept.
    amp : bool | "bf16"
        Mixed precision, as in :class:`PretrainConfig`.
    seed : int
        Seed of batching and dropout.
    """

    modalities: tuple | None = None
    use_long: bool = True
    use_short: bool = True
    gate: bool = True
    freeze_encoders: bool = False
    hidden: tuple = (256, 128)
    dropout: float = 0.2
    epochs: int = 6
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    scheduler: str = "cosine-restarts"
    select: str = "val_loss"
    amp: bool | str = False
    seed: int = 0

    _parameter_constraints: typing.ClassVar[dict] = {
        "modalities": _MODALITIES,
        "hidden": ListOf(int, _WIDTH, 0, 8),
        "dropout": _DROPOUT,
        "epochs": _EPOCHS,
        "batch_size": Interval(int, 2, 65_536, closed="both"),
        "lr": _LR,
        "weight_decay": _WEIGHT_DECAY,
        "optimizer": Options(OPTIMIZERS),
        "scheduler": Options(SCHEDULERS),
        "select": Options(EPOCH_SELECTIONS),
        "amp": Options(AMP_MODES),
        "seed": SEED,
    }

    def __post_init__(self):
        if self.modalities is not None:
            self.modalities = tuple(self.modalities)
        self.hidden = tuple(self.hidden)
        if not (self.use_long or self.use_short):
            raise PhysioSyncError("At least one of use_long and use_short must be True.")
        validate_params(self)



@dataclass
class DataConfig:
    """Where the data is and how it is prepared.

    Parameters
    ----------
    name : str
        Dataset: a name of :data:`DATASET_SPECS` (``"deap"``, ``"dreamer"``,
        ``"amigos"``, ``"mahnob"``, ``"seed"``, ``"seed-iv"``).
    root : str | None
        The release's folder or file, as the dataset's ``root_description`` says (a DEAP
        folder of ``.dat`` or ``.bdf`` files, ``DREAMER.mat``, ...).
    modalities : tuple of str | None
        EEG first, then one peripheral modality. ``None``: the dataset's
        ``default_modalities`` (``eeg, gsr`` on DEAP, AMIGOS and MAHNOB-HCI, ``eeg, ecg``
        on DREAMER, ``eeg`` on SEED and SEED-IV).
    target : str
        Rating to classify (high/low at the dataset's threshold), or the four
        valence-arousal quadrants, or a categorical target (SEED's ``emotion``); the
        dataset's specification lists those it offers. In a configuration that leaves it
        unset: ``valence``, or the dataset's first target where it has no valence rating
        (:attr:`~physiosync.dataset_specs.DatasetSpec.default_target`).
    baseline : {"deviation", "mean", "none"}
        Baseline removal (:class:`~physiosync.preprocessing.transforms.PrepareParams`).
        In a configuration that leaves it unset: ``"none"`` on a dataset whose trials hold
        no pre-stimulus baseline (SEED, SEED-IV), else ``"deviation"``.
    norm : dict of str -> str
        Per-modality normalisation (``spatial``, ``channel`` or ``none``).
    stimulus_seconds : float | None
        Stimulus length kept from every trial (``None``: the longest common length).
    bdf_preprocessing : {"release", "none"}
        Original DEAP recordings (``sXX.bdf``, 512 Hz): ``"release"`` resamples them to
        128 Hz and band-passes (4-45 Hz) and average-references the EEG, as the ``.dat``
        release did; ``"none"`` keeps the 512 Hz signals as recorded
        (:class:`~physiosync.preprocessing.transforms.PrepareParams`). Other data ignore it.
    ratings_csv : str | None
        DEAP's ``participant_ratings.csv`` for the original ``.bdf`` recordings (CLI
        ``--ratings-csv``; ``ratings_csv=`` of :class:`~physiosync.datasets.DEAP`).
        ``None``: looked for beside the recordings (in the root, its parent, and
        ``metadata_csv/`` or ``Metadata/`` beside them). The ``.dat`` release ignores it
        (its ratings are in its files); DREAMER refuses it.
    subjects : tuple of int | None
        Subjects to use (``None``: all).
    cache_dir : str | None
        Cache of prepared arrays (``None``: the user cache folder).
    long_seconds : float
        Long-window length in seconds (the reference: 5).
    n_sub : int
        Short windows per long window (the reference: five 1-s windows).
    """

    name: str = "deap"
    root: typing.Optional[str] = None
    modalities: typing.Optional[tuple] = None
    target: str = "valence"
    baseline: str = "deviation"
    norm: dict = field(default_factory=dict)
    stimulus_seconds: typing.Optional[float] = None
    bdf_preprocessing: str = "release"
    ratings_csv: typing.Optional[str] = None
    subjects: typing.Optional[tuple] = None
    cache_dir: typing.Optional[str] = None
    long_seconds: float = 5.0
    n_sub: int = 5

    _parameter_constraints: typing.ClassVar[dict] = {
        "name": DatasetOption(),
        "modalities": _MODALITIES,
        "target": Options(TARGETS),
        "baseline": Options(BASELINE_METHODS),
        "norm": _NORM,
        "stimulus_seconds": Interval(float, 0, 86_400, closed="right", allow_none=True),
        "bdf_preprocessing": Options(BDF_PREPROCESSING),
        "subjects": ListOf(int, Interval(int, 0, 1_000_000, closed="left"), 1, 10_000,
                           allow_none=True),
        "long_seconds": Interval(float, 0, 600, closed="right"),
        "n_sub": Interval(int, 1, 100, closed="both"),
    }

    def __post_init__(self):
        validate_params(self)


@dataclass
class ProtocolConfig:
    """The cross-validation protocol (see ``docs/evaluation.md``).

    Parameters
    ----------
    name : str
        One of :data:`PROTOCOLS`.
    n_splits : int
        Folds of the k-fold protocols (``subject-stimulus-kfold``: groups of subjects
        and of stimuli, paired one to one).
    val_size : float
        Fraction of training stimuli (within) or subjects (across, including
        ``subject-stimulus-kfold``) held out for epoch selection; 0 keeps the last
        epoch.
    pooled : bool
        Within-subject protocols: fit one model over all subjects instead of one per
        subject.
    one_class : {"error", "constant"}
        A model whose training windows hold one class: stop before training, or
        predict that class and flag it in the report.
    permutations : int
        Label permutations for a p-value of the mean balanced accuracy (0: none).
    permutation_refit : int
        Refits of every pipeline on permuted training labels, for a p-value that
        accounts for training (0: none). Each refit shuffles, within every subject,
        the labels of each fold's training units (and separately of its validation
        units), retrains on the same folds and scores the true test labels with the
        headline subject-level metric. Costs *N* extra cross-validations per
        pipeline (pre-training is shared by the refits of a fold). Not available
        with ``legacy-segment``, whose test windows share trials with training.
    train_trials : int | None
        ``session-split`` only: trials of each session, in presentation order, that
        train (the rest test). ``None``: the dataset's
        ``session_train_trials`` (SEED: 9 of
        15).
    labelled_trials : list of (int | "all") | None
        A label-efficiency study: every pipeline is fine-tuned, on the same folds,
        with each of these numbers of labelled training trials per subject (``"all"``:
        every training trial), drawn reproducibly, stratified by class and nested
        (the trials of a budget are among those of every larger one), while
        pre-training still sees every unlabelled training window (a budget named
        twice runs once). No labelled trial
        is set aside for model selection under a budget. The report adds the
        label-efficiency curve and each pipeline's area under it. None (default): an
        ordinary run. Not available with ``legacy-segment`` nor with
        ``permutation_refit``.
    """

    name: str = "within-trial-kfold"
    n_splits: int = 5
    val_size: float = 0.2
    pooled: bool = False
    one_class: str = "error"
    permutations: int = 0
    permutation_refit: int = 0
    labelled_trials: list | None = None
    train_trials: int | None = None

    _parameter_constraints: typing.ClassVar[dict] = {
        "name": Options(PROTOCOLS),
        "n_splits": Interval(int, 2, 1_000, closed="both"),
        # val_size <= 0.5: validation never takes more than half of the training units
        # (0.99 would leave a model with one or no training unit).
        "val_size": Interval(float, 0, 0.5, closed="both"),
        "one_class": Options(ONE_CLASS_RULES),
        "permutations": Interval(int, 0, 100_000, closed="both"),
        "permutation_refit": Interval(int, 0, 1_000, closed="both"),
        "labelled_trials": ListOf(object, AnyOf(Interval(int, 1, 100_000, closed="both"),
                                                Options((LABEL_BUDGET_ALL,))),
                                  1, 32, allow_none=True),
        "train_trials": Interval(int, 1, 100_000, closed="both", allow_none=True),
    }

    def __post_init__(self):
        validate_params(self)
