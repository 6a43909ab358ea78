"""Pipeline kinds: how each kind declared in
:data:`physiosync.pipeline_specs.PIPELINE_KIND_SPECS` runs a fold.

:data:`PIPELINE_KINDS` maps a kind name to a :class:`PipelineKind`, loaded from the
``implementation`` its declaration names. A kind turns the pipeline's resolved
configuration into the fold function and keyword arguments that
:func:`~physiosync.evaluation.runner.cross_validate` runs on every fold, describes the
pipeline for the report, runs its own pre-flight checks and may prepare the pending folds
of a study together (PhysioSync pre-trains several folds' encoders in one run). Every
kind shares the fold loop of :func:`~physiosync.evaluation.runner.run_fold_with`.

A run resolves each of its pipelines once into a :class:`PipelinePlan` (its configuration,
its kind, its folds, :func:`plan_pipeline`), which the orchestrator hands down.

A classifier with the scikit-learn API is one :class:`EstimatorKind`::

    DE_SVM = EstimatorKind(
        "de-svm", lambda cfg, data: make_de_svm(data.sfreq), validation="fit",
        text="differential entropy + SVM")

plus its declaration (:class:`~physiosync.pipeline_specs.PipelineKindSpec`: its parameters
section, the configuration keys it reads, its default pipeline name and description, and
``implementation="module:DE_SVM"``). Its estimator is fitted per subject (or pooled) on
the fold's training windows, given as a dict modality -> ``(n_windows, n_channels,
n_times)`` array, with the protocol's validation windows passed to ``fit`` as
``X_val``/``y_val`` when ``validation="fit"``.
"""

from __future__ import annotations

import importlib
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Callable

from .._logging import logger, verbose
from .._utils.docs import fill_doc
from ..dataset_specs import dataset_spec
from ..exceptions import PhysioSyncError, TrainingDivergedError
from ..pipeline_specs import PIPELINE_KIND_SPECS
from . import runner

__all__ = ["PipelineKind", "PhysioSyncKind", "SimCLRKind", "EstimatorKind", "BraindecodeKind",
           "PIPELINE_KINDS", "get_pipeline_kind", "PipelinePlan", "plan_pipeline",
           "BANDPOWER_IMPORTANCE"]


class PipelineKind:
    """One kind of pipeline: its fold function, its arguments and its description.

    Attributes
    ----------
    name : str
        The kind, as in :data:`physiosync.config.PIPELINES`.
    importance_method : str | None
        How its channel importance is computed (None: it computes none), for the report.
    uses_signal : bool
        False for a kind that reads no signal (its report lists no modalities).
    """

    name: str = ""
    importance_method: str | None = None
    uses_signal: bool = True

    def fold_function(self) -> Callable:
        """``f(data, fold, **kwargs) -> (predictions, details)``."""
        return runner.run_fold_with

    def fold_kwargs(self, cfg, data, *, pretrain_cache: dict | None = None) -> dict:
        """Keyword arguments of :meth:`fold_function` for a pipeline.

        Parameters
        ----------
        cfg : RunConfig
            The pipeline's configuration (:func:`physiosync.config.pipeline_config`).
        data : ExperimentData
            The labelled windows, their sampling rates and channels.
        pretrain_cache : dict | None
            Shared by the refits of one fold (see :func:`~physiosync.evaluation.runner.run_fold`).

        Returns
        -------
        kwargs : dict
            Hashed into the fold keys (except ``device``, ``pretrain_cache``), so
            a finished fold is reused only for identical settings.
        """
        raise NotImplementedError

    def describe(self, cfg) -> dict:
        """``text`` (one line for the report), and ``embedding``/``pretrained`` if any."""
        return {"text": self.name}

    def fold_runner(self, cfg, data) -> runner.FoldRunner:
        """The :class:`~physiosync.evaluation.runner.FoldRunner` that trains a fold's models.

        What :meth:`fold_function` runs in each fold, for the cost estimate
        (:mod:`physiosync.evaluation.cost`); the default reads ``model`` from
        :meth:`fold_kwargs`.
        """
        return self.fold_kwargs(cfg, data)["model"]

    def preflight(self, cfg, data, folds: list, *, pipeline: str) -> None:
        """Checks before any training (raise :class:`PhysioSyncError` naming *pipeline*)."""

    def fold_batch(self, cfg) -> int:
        """How many pending folds :meth:`prepare_folds` prepares together (1: none)."""
        return 1

    @fill_doc
    def prepare_folds(self, cfg, data, folds: list, *, cache: dict, verbose=None) -> None:
        """Per-study preparation of a group of pending folds, before they run.

        The orchestrator groups the folds that a run still has to compute by
        :meth:`fold_batch`, calls this once per group, then runs each fold of the group
        with ``fold_kwargs(cfg, data, pretrain_cache=cache)``. The default does
        nothing.

        Parameters
        ----------
        cfg : RunConfig
            The pipeline's configuration.
        data : ExperimentData
            The labelled windows.
        folds : list of Fold
            The group's pending folds (at most :meth:`fold_batch` of them).
        cache : dict
            Shared with the group's folds (``pretrain_cache``); what is put here the
            folds reuse instead of computing it again.
        %(verbose)s
        """

    def shared_across_subjects(self, cfg) -> str | None:
        """What the subjects' models of one fold share, or None when they are independent.

        The report pairs its comparisons by subject only when neither pipeline shares
        anything fitted or drawn between the subjects of a fold (a pre-training on all
        subjects, other subjects' labels, one seeded initialisation); see
        :func:`physiosync.reporting.report.paired_comparison`.

        Returns
        -------
        reason : str | None
            A clause such as ``"pre-trains one encoder per fold on all subjects'
            training trials"``. The default, None, suits an estimator fitted on one
            subject's windows alone, deterministically or with a seed of its own.
        """
        return None

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}>"


class PhysioSyncKind(PipelineKind):
    """PhysioSync pre-training and fine-tuning (:func:`~physiosync.evaluation.runner.run_fold`)."""

    name = "physiosync"
    importance_method = runner.PhysioSyncRunner.importance_method
    #: The pre-training objective (see :func:`~physiosync.training.pretrain.pretrain`).
    objective = "ls-tcl"
    #: The report's name of the method, first in :meth:`describe`'s text.
    label = "PhysioSync"

    def fold_function(self) -> Callable:
        return runner.run_fold

    def fold_kwargs(self, cfg, data, *, pretrain_cache=None) -> dict:
        return dict(n_sub=cfg.data.n_sub, long_config=cfg.pretrain_long,
                    short_config=cfg.pretrain_short, finetune_config=cfg.finetune,
                    do_pretrain=cfg.pretrain_enabled, device=cfg.device,
                    pretrain_cache=pretrain_cache, compile=cfg.pretrain_compile,
                    held_out=cfg.pretrain_held_out)

    def fold_runner(self, cfg, data) -> runner.FoldRunner:
        return runner.PhysioSyncRunner(**self.fold_kwargs(cfg, data))

    def describe(self, cfg) -> dict:
        ft, d = cfg.finetune, cfg.data
        emb = {}
        if ft.use_long:
            emb["long"] = cfg.pretrain_long.embedding
        if ft.use_short:
            emb["short"] = cfg.pretrain_short.embedding
        scales = {"long": f"long {d.long_seconds:g} s",
                  "short": f"short {d.long_seconds / d.n_sub:g} s"}
        kinds = sorted(set(emb.values()))
        if len(kinds) == 1:
            what = f"{kinds[0]} embedding ({', '.join(scales[k] for k in emb)})"
        else:
            what = ", ".join(f"{scales[k]}: {v} embedding" for k, v in emb.items())
        state = "pre-trained" if cfg.pretrain_enabled else "no pre-training"
        spec = dataset_spec(d.name)
        if cfg.pretrain_enabled and self.objective == "ls-tcl" and spec.eeg_only:
            state += (f" (on EEG alone, without CM-CA: {spec.display_name} has no "
                      "peripheral signal)")
        if ft.freeze_encoders:
            state += ", encoders frozen"
        return {"embedding": emb, "pretrained": bool(cfg.pretrain_enabled),
                "text": f"{self.label}, {what}, {state}"}

    def shared_across_subjects(self, cfg) -> str | None:
        if cfg.pretrain_enabled:
            return "pre-trains one encoder per fold on all subjects' training trials"
        return "starts every subject's model of a fold from the same initial weights"

    def fold_batch(self, cfg) -> int:
        """``pretrain.batch_folds`` when the pipeline pre-trains, else 1."""
        return cfg.pretrain_batch_folds if cfg.pretrain_enabled else 1

    @verbose
    def prepare_folds(self, cfg, data, folds: list, *, cache: dict, verbose=None) -> None:
        """Pre-train the encoders of *folds* in one fold-batched run, into *cache*.

        The folds then read their encoders from *cache*
        (:meth:`~physiosync.evaluation.runner.PhysioSyncRunner.pretrain_folds`) and run
        and are written as they would be one by one. A group of one pre-trains as
        usual, in its fold. Two failures of the batched run are met by emptying the
        cache and pre-training each fold on its own, with one warning that names the
        cause: a fold whose loss diverged (the group's other folds then still finish and
        are written; the diverging fold fails as it would alone) and running out of
        memory (one fold needs about 1/K of a group's). Anything else (a compiler
        error, a sticky CUDA error, a refusal) is raised: run fold by fold it would
        fail again, or hide what went wrong.
        """
        import torch

        if len(folds) < 2:
            return
        model = runner.PhysioSyncRunner(**self.fold_kwargs(cfg, data, pretrain_cache=cache))
        numbers = [f.fold for f in folds]
        try:
            model.pretrain_folds(data.slots, folds)
        except TrainingDivergedError as err:
            logger.warning("pre-training folds %s together stopped: %s; running them one at "
                           "a time, so that the other folds finish", numbers, err)
            cache.clear()
        except torch.OutOfMemoryError as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else "out of memory"
            logger.warning("pre-training folds %s together ran out of memory (%s); running "
                           "them one at a time (set pretrain.batch_folds lower to skip the "
                           "attempt)", numbers, first)
            cache.clear()

    def preflight(self, cfg, data, folds: list, *, pipeline: str) -> None:
        """Every fold's pre-training units must fill a batch of the kind's sampler.

        The synchrony sampler needs ``batch_slots`` stimulus slots, each seen by ``2 N``
        allowed subjects; protocols that hold out subjects can leave a fold too few.
        """
        from ..training.pretrain import make_sampler

        if not cfg.pretrain_enabled:
            return
        runs = [(name, sub, pcfg) for name, sub, pcfg, used in (
            ("long", 1, cfg.pretrain_long, cfg.finetune.use_long),
            ("short", cfg.data.n_sub, cfg.pretrain_short, cfg.finetune.use_short)) if used]
        cells_of = runner.PhysioSyncRunner(held_out=cfg.pretrain_held_out).pretrain_cells
        for fold in folds:
            allowed = cells_of(data.slots, fold) & data.slots.valid
            held = cfg.pretrain_held_out == "val" and len(fold.val)
            for name, sub, pcfg in runs:
                try:
                    make_sampler(allowed, pcfg, n_sub=sub, objective=self.objective)
                except PhysioSyncError as err:
                    hint = (" The fold's validation units are kept out of pre-training for "
                            "its held-out diagnostic (pretrain.held_out: val); "
                            "pretrain.held_out: unused pre-trains on them too."
                            if held else "")
                    raise PhysioSyncError(f"pipeline {pipeline!r}, fold {fold.fold}, {name} "
                                          f"pre-training: {err}{hint}") from None


class SimCLRKind(PhysioSyncKind):
    """The EEG-only SimCLR baseline: PhysioSync's encoders, fine-tuning and fold loop,
    pre-trained on two augmented views of single windows (NT-Xent) instead of LS-TCL.

    No peripheral signal and no other subject enter pre-training, so beside the
    ``eeg-only`` ablation it shows what inter-subject synchrony adds beyond plain
    contrastive learning. The objective enters the fold keys of this kind only.
    """

    name = "simclr"
    objective = "simclr"
    label = "EEG-only SimCLR (two augmented views per window)"

    def fold_kwargs(self, cfg, data, *, pretrain_cache=None) -> dict:
        return {**super().fold_kwargs(cfg, data, pretrain_cache=pretrain_cache),
                "objective": self.objective}

    def preflight(self, cfg, data, folds: list, *, pipeline: str) -> None:
        """Pre-training must see EEG alone, and every fold must fill a batch of windows."""
        mods = tuple(cfg.finetune.modalities or data.slots.modalities)
        if len(mods) != 1:
            raise PhysioSyncError(
                f"pipeline {pipeline!r} (kind simclr) pre-trains and fine-tunes EEG alone; "
                f"finetune.modalities is {list(mods)}. Set finetune.modalities: [eeg].")
        super().preflight(cfg, data, folds, pipeline=pipeline)


class EstimatorKind(PipelineKind):
    """A kind made of any scikit-learn-style classifier, run on the fold's windows.

    Parameters
    ----------
    name : str
        The kind.
    factory : callable
        ``factory(cfg, data) -> estimator``, a new unfitted classifier for the
        pipeline's configuration and data (``data.sfreq``, ``data.channels``,
        ``data.n_classes``). Its ``fit(X, y)`` receives a dict modality ->
        ``(n_windows, n_channels, n_times)`` array and the windows' labels.
    validation : {"ignore", "train", "fit"}
        Use of the protocol's validation windows; see
        :class:`~physiosync.evaluation.runner.EstimatorRunner`.
    inputs : {"windows", "units"}
        See :class:`~physiosync.evaluation.runner.EstimatorRunner`.
    importance : callable | None
        ``importance(estimator, slots, modalities) -> ndarray | None``: EEG channel
        importance of a fitted estimator.
    importance_method : str | None
        How *importance* is computed.
    text : str | None
        One line describing the pipeline in the report (default: *name*).
    uses_signal : bool
        False if the estimator reads no signal.
    window_ids : bool
        Give the estimator each window's subject, trial and window index; see
        :class:`~physiosync.evaluation.runner.EstimatorRunner`.
    shared : str | None
        What the subjects' models of one fold share (:meth:`shared_across_subjects`);
        None: nothing.
    """

    def __init__(self, name: str, factory: Callable, *, validation: str = "ignore",
                 inputs: str = "windows", importance: Callable | None = None,
                 importance_method: str | None = None, text: str | None = None,
                 uses_signal: bool = True, window_ids: bool = False,
                 shared: str | None = None):
        self.name = name
        self.factory = factory
        self.validation = validation
        self.inputs = inputs
        self.importance = importance
        self.importance_method = importance_method
        self.text = text or name
        self.uses_signal = uses_signal
        self.window_ids = window_ids
        self.shared = shared

    def fold_kwargs(self, cfg, data, *, pretrain_cache=None) -> dict:
        # an estimator of units reads no signal, hence no finetune.modalities
        mods = cfg.finetune.modalities if self.inputs == "windows" else None
        model = runner.EstimatorRunner(
            lambda: self.factory(cfg, data), modalities=mods, inputs=self.inputs, validation=self.validation, importance=self.importance,
            importance_method=self.importance_method, window_ids=self.window_ids)
        return {"model": model}

    def describe(self, cfg) -> dict:
        return {"text": self.text}

    def shared_across_subjects(self, cfg) -> str | None:
        return self.shared


def _bandpower(cfg, data):
    """The band-power baseline's classifier (``baselines.bandpower``)."""
    from .baselines import BandPowerClassifier

    mods = cfg.finetune.modalities or tuple(data.sfreq)
    return BandPowerClassifier(sfreq={m: data.sfreq[m] for m in mods},
                               C=cfg.baselines["bandpower"]["C"])


def _stimulus_prior(cfg, data):
    from .baselines import StimulusPriorClassifier

    return StimulusPriorClassifier()


def _de_classifier(estimator: str) -> Callable:
    """``factory(cfg, data)`` of the differential-entropy baselines (``baselines.de``)."""

    def factory(cfg, data):
        from .baselines import DEClassifier

        p = cfg.baselines["de"]
        mods = cfg.finetune.modalities or tuple(data.sfreq)
        kw = dict(sfreq={m: float(data.sfreq[m]) for m in mods}, method=p["method"],
                  smoothing=p["smoothing"], estimator=estimator)
        if estimator == "lr":
            return DEClassifier(C=p["C"], **kw)
        return DEClassifier(param_grid={"C": list(p["svm_C"]), "gamma": list(p["svm_gamma"])},
                            **kw)

    return factory


def _eeg_importance(clf, data, mods: tuple):
    """EEG channel shares of a linear model's weights (``clf.channel_importance``; None for
    an SVM or without EEG)."""
    return clf.channel_importance("eeg") if "eeg" in mods else None


#: How the band-power and ``de-lr`` baselines measure channel importance.
BANDPOWER_IMPORTANCE = "sum of |standardised logistic coefficient| over bands"


class BraindecodeKind(EstimatorKind):
    """A braindecode network (:class:`~physiosync.evaluation.deep.BraindecodeClassifier`).

    Trained on the fold's windows of ``finetune.modalities`` with the options of
    ``baselines.deep`` (:class:`~physiosync.pipeline_specs.DeepParams`), the run's seed and
    device, and its epoch selected on the protocol's validation windows.

    Parameters
    ----------
    name : str
        The kind.
    model : {"eegnet", "shallow", "deep4"}
        The network (:func:`~physiosync.evaluation.deep.build_network`).
    text : str
        One line describing the pipeline in the report.
    """

    def __init__(self, name: str, model: str, *, text: str):
        super().__init__(name, self._classifier, validation="fit", text=text)
        self.model = model

    def shared_across_subjects(self, cfg) -> str | None:
        return "starts every subject's network from the same seeded initial weights"

    def _classifier(self, cfg, data):
        from .deep import BraindecodeClassifier

        p = cfg.baselines["deep"]
        mods = tuple(cfg.finetune.modalities or data.sfreq)
        return BraindecodeClassifier(
            self.model, sfreq={m: float(data.sfreq[m]) for m in mods}, n_epochs=p["epochs"],
            lr=p["lr"], batch_size=p["batch_size"], weight_decay=p["weight_decay"],
            select=p["select"], seed=cfg.seed, device=cfg.device, modalities=mods)

    def preflight(self, cfg, data, folds: list, *, pipeline: str) -> None:
        """braindecode must be installed, and its network must fit the windows."""
        from .deep import build_network, check_braindecode

        try:
            check_braindecode()
            clf = self._classifier(cfg, data)
            n_times = {data.slots.n_times(m) for m in clf.modalities}
            if len(n_times) > 1:
                raise PhysioSyncError(
                    f"modalities {', '.join(clf.modalities)} have windows of different "
                    f"lengths {sorted(n_times)}; a braindecode network takes one. Set "
                    "finetune.modalities to modalities of one sampling rate (e.g. [eeg]).")
            build_network(self.model, sum(data.slots.n_chans(m) for m in clf.modalities),
                          n_times.pop(), data.n_classes,
                          next(iter(clf.sfreq.values())))
        except PhysioSyncError as err:
            raise type(err)(f"pipeline {pipeline!r}: {err}") from None


PHYSIOSYNC = PhysioSyncKind()
SIMCLR = SimCLRKind()
BANDPOWER = EstimatorKind(
    "bandpower", _bandpower, importance=_eeg_importance,
    importance_method=BANDPOWER_IMPORTANCE,
    text="band powers per channel + logistic regression")
STIMULUS_PRIOR = EstimatorKind(
    "stimulus-prior", _stimulus_prior, inputs="units", validation="train", uses_signal=False,
    text="no signal: other training subjects' labels of the same stimulus",
    shared="predicts each subject from the other subjects' labels")
DE_LR = EstimatorKind(
    "de-lr", _de_classifier("lr"), validation="ignore", window_ids=True,
    importance=_eeg_importance, importance_method=BANDPOWER_IMPORTANCE,
    text="differential entropy (5 bands) per channel + logistic regression")
DE_SVM = EstimatorKind(
    "de-svm", _de_classifier("svm"), validation="fit", window_ids=True,
    text="differential entropy (5 bands) per channel + RBF SVM, C and gamma chosen on "
         "the validation windows")
EEGNET = BraindecodeKind(
    "eegnet", "eegnet", text="braindecode EEGNetv4, trained from scratch")
SHALLOW_FBCSP = BraindecodeKind(
    "shallow-fbcsp", "shallow", text="braindecode ShallowFBCSPNet, trained from scratch")
DEEP4 = BraindecodeKind(
    "deep4", "deep4", text="braindecode Deep4Net, trained from scratch")


def _load(spec) -> PipelineKind:
    """The :class:`PipelineKind` that *spec*'s ``implementation`` names."""
    module, _, attribute = spec.implementation.partition(":")
    try:
        kind = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as err:
        raise PhysioSyncError(f"pipeline kind {spec.name!r}: cannot load its implementation "
                              f"{spec.implementation!r} ({err}).") from None
    if not isinstance(kind, PipelineKind) or kind.name != spec.name:
        raise PhysioSyncError(f"pipeline kind {spec.name!r}: {spec.implementation} is "
                              f"{kind!r}, not a PipelineKind named {spec.name!r}.")
    return kind


class _Registry(MutableMapping):
    """Kind name -> :class:`PipelineKind`, each loaded from its declaration when first read."""

    def __init__(self):
        self._kinds = {}

    def __getitem__(self, kind: str) -> PipelineKind:
        if kind not in self._kinds:
            self._kinds[kind] = _load(PIPELINE_KIND_SPECS[kind])  # KeyError if undeclared
        return self._kinds[kind]

    def __setitem__(self, kind: str, value: PipelineKind) -> None:
        self._kinds[kind] = value

    def __delitem__(self, kind: str) -> None:
        del self._kinds[kind]

    def __iter__(self):
        return iter(dict.fromkeys([*PIPELINE_KIND_SPECS, *self._kinds]))

    def __len__(self) -> int:
        return len(dict.fromkeys([*PIPELINE_KIND_SPECS, *self._kinds]))

    def __repr__(self) -> str:
        return f"<pipeline kinds: {', '.join(self)}>"


#: Kind name -> :class:`PipelineKind`: every kind declared in
#: :data:`physiosync.pipeline_specs.PIPELINE_KIND_SPECS`, its implementation imported
#: when first read.
PIPELINE_KINDS: MutableMapping = _Registry()


def get_pipeline_kind(kind: str) -> PipelineKind:
    """The :class:`PipelineKind` called *kind*, with a clear error if there is none."""
    try:
        return PIPELINE_KINDS[kind]
    except KeyError:
        raise PhysioSyncError(f"no runner for pipeline kind {kind!r}; known kinds: "
                              f"{', '.join(PIPELINE_KINDS)}. Declare one in "
                              "physiosync.pipeline_specs.PIPELINE_KIND_SPECS.") from None


@dataclass(frozen=True, eq=False)
class PipelinePlan:
    """One pipeline of a run, resolved once: what the layers below the orchestrator take.

    Attributes
    ----------
    name : str
        The pipeline's name (its folder under ``folds/``, its row in the report).
    kind_name : str
        Its kind, as declared.
    config : RunConfig
        The run's configuration with the pipeline's overrides
        (:func:`physiosync.config.pipeline_config`).
    kind : PipelineKind
        Its implementation.
    folds : tuple of Fold
        The study's folds.
    """

    name: str
    kind_name: str
    config: object
    kind: PipelineKind
    folds: tuple

    @property
    def fold_batch(self) -> int:
        """Pending folds prepared together (:meth:`PipelineKind.fold_batch`)."""
        return self.kind.fold_batch(self.config)

    def fold_kwargs(self, data, *, pretrain_cache: dict | None = None) -> dict:
        """:meth:`PipelineKind.fold_kwargs` of this pipeline."""
        return self.kind.fold_kwargs(self.config, data, pretrain_cache=pretrain_cache)


def plan_pipeline(cfg, spec: dict, folds=()) -> PipelinePlan:
    """Resolve one pipeline of *cfg* (``{"name", "kind", "set"}``) into its plan.

    Parameters
    ----------
    cfg : RunConfig
        The run's configuration.
    spec : dict
        One of ``cfg.pipelines``.
    folds : sequence of Fold
        The study's folds.

    Returns
    -------
    plan : PipelinePlan
    """
    from ..config import pipeline_config

    return PipelinePlan(spec["name"], spec["kind"], pipeline_config(cfg, spec),
                        get_pipeline_kind(spec["kind"]), tuple(folds))
