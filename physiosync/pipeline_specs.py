"""Declarations of the pipeline kinds and the parameters of the baselines, free of torch.

One :class:`PipelineKindSpec` per pipeline kind (:data:`PIPELINE_KIND_SPECS`) says where
its implementation lives, which configuration keys it reads, its ``baselines`` section
and the pipelines it names. Configuration validation (:mod:`physiosync.config`), the
command line and the registry of implementations
(``physiosync.evaluation.pipelines.PIPELINE_KINDS``) all read these declarations.
The options of each baseline section are a dataclass here (:class:`BandPowerParams`,
:class:`DEParams`, :class:`DeepParams`, :class:`RiemannParams`) with its
``_parameter_constraints``, as the stages' parameters are in :mod:`physiosync.params`.
"""

from __future__ import annotations

import copy
import typing
from dataclasses import dataclass, field

from ._utils.checks import Interval, ListOf, Options, validate_params
from .exceptions import PhysioSyncError
from .params import _EPOCHS, _LR, _WEIGHT_DECAY, DE_METHODS, EPOCH_SELECTIONS

__all__ = ["BandPowerParams", "DEParams", "DeepParams", "BRAINDECODE_MODELS", "RiemannParams",
           "PipelineKindSpec", "PIPELINE_KIND_SPECS"]


# -- the baselines' parameters ---------------------------------------------------------
@dataclass
class BandPowerParams:
    """Options of the band-power baseline (``baselines.bandpower`` of a configuration).

    Parameters
    ----------
    C : float
        Inverse regularisation strength of the logistic regression.
    """

    C: float = 0.1

    _parameter_constraints: typing.ClassVar[dict] = {
        "C": Interval(float, 0, 1e6, closed="right"),
    }

    def __post_init__(self):
        validate_params(self)


@dataclass
class DEParams:
    """Options of the differential-entropy baselines (``baselines.de`` of a configuration).

    Read by the ``de-lr`` and ``de-svm`` pipelines only
    (:class:`~physiosync.evaluation.baselines.DEClassifier`).

    Parameters
    ----------
    method : {"welch", "filter"}
        How each band's variance is measured: Welch spectrum or Butterworth band-pass
        (:func:`~physiosync.preprocessing.features.differential_entropy`).
    smoothing : int
        Width, in windows, of the causal moving average of the features within each
        trial (1: none).
    C : float
        Inverse regularisation strength of the logistic regression (``de-lr``).
    svm_C : list of float
        Values of the SVM's ``C`` searched on the validation windows (``de-svm``).
    svm_gamma : list of float
        Values of the RBF kernel's ``gamma`` searched, in units of ``1 / n_features``
        (the features are standardised, so 1 is scikit-learn's ``gamma="scale"``).
    """

    method: str = "welch"
    smoothing: int = 1
    C: float = 0.1
    svm_C: list = field(default_factory=lambda: [0.1, 1.0, 10.0])
    svm_gamma: list = field(default_factory=lambda: [0.1, 1.0, 10.0])

    _parameter_constraints: typing.ClassVar[dict] = {
        "method": Options(DE_METHODS),
        "smoothing": Interval(int, 1, 1_000, closed="both"),
        "C": Interval(float, 0, 1e6, closed="right"),
        "svm_C": ListOf(float, Interval(float, 0, 1e6, closed="right"), 1, 10),
        "svm_gamma": ListOf(float, Interval(float, 0, 1e6, closed="right"), 1, 10),
    }

    def __post_init__(self):
        validate_params(self)


#: braindecode networks of the deep baselines (``BraindecodeClassifier(model=...)``):
#: ``"eegnet"`` (EEGNetv4), ``"shallow"`` (ShallowFBCSPNet), ``"deep4"`` (Deep4Net).
BRAINDECODE_MODELS = ("eegnet", "shallow", "deep4")


@dataclass
class DeepParams:
    """Training of the braindecode baselines (``baselines.deep`` of a configuration).

    The networks (EEGNet, ShallowFBCSPNet, Deep4Net) keep braindecode's architecture
    defaults; these are the options of their training, which follows PhysioSync's
    fine-tuning: the same validation windows select the epoch.

    Parameters
    ----------
    epochs : int
        Passes over the training windows.
    batch_size : int
        Windows per step.
    lr, weight_decay : float
        AdamW's learning rate and (decoupled) weight decay.
    select : {"val_loss", "val_balanced_accuracy", "last"}
        Which epoch's weights to keep, as ``finetune.select``: selection reads the
        validation windows only; without them the last epoch is kept.
    """

    epochs: int = 20
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    select: str = "val_loss"

    _parameter_constraints: typing.ClassVar[dict] = {
        "epochs": _EPOCHS,
        "batch_size": Interval(int, 2, 65_536, closed="both"),
        "lr": _LR,
        "weight_decay": _WEIGHT_DECAY,
        "select": Options(EPOCH_SELECTIONS),
    }

    def __post_init__(self):
        validate_params(self)


@dataclass
class RiemannParams:
    """Options of the Riemannian baseline (``baselines.riemann`` of a configuration).

    Read by the ``riemann-lr`` pipeline only
    (``TangentSpaceClassifier``).

    Parameters
    ----------
    estimator : str
        pyRiemann's covariance estimator (:class:`pyriemann.estimation.Covariances`):
        ``"oas"`` or ``"lwf"`` (shrunk towards a scaled identity, so that a window of
        fewer samples than its channels still gives a positive definite matrix),
        ``"scm"`` (sample covariance) or ``"corr"`` (correlation).
    metric : str
        Where the tangent space is taken (the mean of the training covariances under
        this metric, :class:`pyriemann.tangentspace.TangentSpace`): ``"riemann"``
        (affine-invariant), ``"logeuclid"`` or ``"euclid"``.
    C : float
        Inverse regularisation strength of the logistic regression, used when no
        validation windows choose one.
    C_grid : list of float
        Values of ``C`` searched on the validation windows (balanced accuracy).
    """

    estimator: str = "oas"
    metric: str = "riemann"
    C: float = 1.0
    C_grid: list = field(default_factory=lambda: [0.01, 0.1, 1.0, 10.0, 100.0])

    _parameter_constraints: typing.ClassVar[dict] = {
        "estimator": Options(("oas", "lwf", "scm", "corr")),
        "metric": Options(("riemann", "logeuclid", "euclid")),
        "C": Interval(float, 0, 1e6, closed="right"),
        "C_grid": ListOf(float, Interval(float, 0, 1e6, closed="right"), 1, 10),
    }

    def __post_init__(self):
        validate_params(self)


# -- pipeline kinds --------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class PipelineKindSpec:
    """One pipeline kind, declared once and free of torch.

    Configuration validation (:mod:`physiosync.config`: its ``baselines`` section, the
    pipeline names ``pipelines:`` may list, the keys a run ignores), the command line
    and the registry of implementations
    (``physiosync.evaluation.pipelines.PIPELINE_KINDS``) all read this declaration.

    Parameters
    ----------
    name : str
        The kind.
    implementation : str
        ``"module:attribute"`` of its ``PipelineKind``,
        imported only when a run needs it.
    description : str
        One line saying what its default pipeline is (``--help``, docs).
    reads : tuple of str | None
        Dotted keys or sections of ``pretrain`` and ``finetune`` that it reads, beside
        its own ``baselines.<section>``; None: every optional section.
    section : str | None
        Its parameters section, ``baselines.<section>`` (kinds may share one).
    params : type | None
        The dataclass of that section (its fields, defaults and
        ``_parameter_constraints``).
    settings : dict
        Dotted overrides of its default pipeline, e.g. ``{"finetune.modalities": ["eeg"]}``.
    pipeline : str | None
        Name of its default pipeline (None: the kind's name).
    variants : dict
        Further named pipelines of this kind, ``name -> {"set": {...}, "doc": "..."}``
        (the PhysioSync ablations).
    """

    name: str
    implementation: str
    description: str
    reads: typing.Optional[tuple] = None
    section: typing.Optional[str] = None
    params: typing.Optional[type] = None
    settings: dict = field(default_factory=dict)
    pipeline: typing.Optional[str] = None
    variants: dict = field(default_factory=dict)

    def __post_init__(self):
        if (self.section is None) != (self.params is None):
            raise PhysioSyncError(f"pipeline kind {self.name!r}: give both section and "
                                  "params, or neither.")
        if ":" not in self.implementation:
            raise PhysioSyncError(f"pipeline kind {self.name!r}: implementation must be "
                                  f"'module:attribute', got {self.implementation!r}.")

    @property
    def keys_read(self) -> tuple | None:
        """``reads`` and its ``baselines.<section>`` (None: everything)."""
        if self.reads is None:
            return None
        return tuple(self.reads) + ((f"baselines.{self.section}",) if self.section else ())

    @property
    def pipelines(self) -> dict:
        """Its named pipelines, ``name -> {"kind", "set", "doc"}``, the default first."""
        out = {self.pipeline or self.name: {"kind": self.name, "set": self.settings,
                                            "doc": self.description}}
        for name, variant in self.variants.items():
            out[name] = {"kind": self.name, "set": variant.get("set", {}),
                         "doc": variant.get("doc", "")}
        return copy.deepcopy(out)


_EEG = {"finetune.modalities": ["eeg"]}
_PIPELINES_MODULE = "physiosync.evaluation.pipelines"

#: Every pipeline kind, in the order of the pipeline names they declare. A new kind is
#: one entry here (with a dataclass of its ``baselines`` section if it has options) and
#: the module of its implementation.
PIPELINE_KIND_SPECS: dict[str, PipelineKindSpec] = {spec.name: spec for spec in (
    PipelineKindSpec(
        "physiosync", f"{_PIPELINES_MODULE}:PHYSIOSYNC",
        "LS-TCL + CM-CA pre-training, hierarchical fusion fine-tuning",
        reads=("pretrain", "finetune"),
        variants={
            "no-cmca": {"set": {"pretrain.cmca_variant": "none"},
                        "doc": "ablation: pre-training without cross-modal alignment"},
            "short-only": {"set": {"finetune.use_long": False},
                           "doc": "ablation: no long/short LS-TCL, short (1 s) encoders only"},
            "long-only": {"set": {"finetune.use_short": False},
                          "doc": "ablation: long (5 s) encoders only"},
            "eeg-only": {"set": {"finetune.modalities": ["eeg"]},
                         "doc": "ablation: EEG alone (pre-training without CM-CA)"},
            "no-pretrain": {"set": {"pretrain.enabled": False},
                            "doc": "ablation: fine-tuning from random weights"},
            "no-gate": {"set": {"finetune.gate": False},
                        "doc": "ablation: plain concatenation instead of confidence gating"},
            "frozen": {"set": {"finetune.freeze_encoders": True},
                       "doc": "pre-trained encoders frozen, head trained only"},
        }),
    PipelineKindSpec(
        "simclr", f"{_PIPELINES_MODULE}:SIMCLR",
        "baseline: the same EEG encoders pre-trained with SimCLR (two augmented views of "
        "one window, NT-Xent; no peripheral signal, no other subject)",
        reads=("pretrain", "finetune"), settings=_EEG),
    PipelineKindSpec(
        "bandpower", f"{_PIPELINES_MODULE}:BANDPOWER",
        "baseline: log band powers + logistic regression",
        reads=("finetune.modalities",), section="bandpower", params=BandPowerParams),
    PipelineKindSpec(
        "stimulus-prior", f"{_PIPELINES_MODULE}:STIMULUS_PRIOR",
        "baseline: no signal, the training labels of the same stimulus (the class prior "
        "for unseen stimuli)", reads=()),
    PipelineKindSpec(
        "de-lr", f"{_PIPELINES_MODULE}:DE_LR",
        "baseline: EEG differential entropy of 5 bands + logistic regression",
        reads=("finetune.modalities",), section="de", params=DEParams, settings=_EEG),
    PipelineKindSpec(
        "de-svm", f"{_PIPELINES_MODULE}:DE_SVM",
        "baseline: EEG differential entropy of 5 bands + RBF SVM (C, gamma searched on the "
        "validation windows)",
        reads=("finetune.modalities",), section="de", params=DEParams, settings=_EEG),
    PipelineKindSpec(
        "eegnet", f"{_PIPELINES_MODULE}:EEGNET",
        "baseline: braindecode's EEGNetv4 on the EEG windows (needs physiosync[deep])",
        reads=("finetune.modalities",), section="deep", params=DeepParams, settings=_EEG),
    PipelineKindSpec(
        "shallow-fbcsp", f"{_PIPELINES_MODULE}:SHALLOW_FBCSP",
        "baseline: braindecode's ShallowFBCSPNet on the EEG windows (needs "
        "physiosync[deep])",
        reads=("finetune.modalities",), section="deep", params=DeepParams, settings=_EEG),
    PipelineKindSpec(
        "deep4", f"{_PIPELINES_MODULE}:DEEP4",
        "baseline: braindecode's Deep4Net on the EEG windows (needs physiosync[deep]; "
        "windows of 3.5 s or more at 128 Hz)",
        reads=("finetune.modalities",), section="deep", params=DeepParams, settings=_EEG),
    PipelineKindSpec(
        "riemann-lr", "physiosync.evaluation.riemann:RIEMANN_LR",
        "baseline: EEG covariances (shrinkage), Riemannian tangent space + logistic "
        "regression (C searched on the validation windows; needs physiosync[riemann])",
        reads=("finetune.modalities",), section="riemann", params=RiemannParams,
        settings=_EEG),
)}
