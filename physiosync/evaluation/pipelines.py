"""Pipeline kinds: how each ``kind`` of :data:`physiosync.config.PIPELINES` runs a fold.

:data:`PIPELINE_KINDS` maps a kind name to a :class:`PipelineKind`, which turns the
pipeline's resolved configuration into the fold function and keyword arguments that
:func:`~physiosync.evaluation.runner.cross_validate` runs on every fold, describes
the pipeline for the report and runs the kind's own pre-flight checks. Every kind
shares the fold loop of :func:`~physiosync.evaluation.runner.run_fold_with`.

A classifier with the scikit-learn API is one :class:`EstimatorKind` line::

    PIPELINE_KINDS["de-svm"] = EstimatorKind(
        "de-svm", lambda cfg, data: make_de_svm(data.sfreq), validation="fit",
        text="differential entropy + SVM")

plus a pipeline name of that kind in :data:`physiosync.config.PIPELINES` (and, in
:data:`physiosync.config.PIPELINE_KIND_READS`, the configuration sections it reads, so that
``config.yaml`` leaves out what a run ignores; a kind not listed there is taken to read
everything). Its estimator is fitted per subject (or pooled) on the fold's training
windows, given as a dict modality -> ``(n_windows, n_channels, n_times)`` array, with
the protocol's validation windows passed to ``fit`` as ``X_val``/``y_val`` when
``validation="fit"``.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..exceptions import PhysioSyncError
from . import runner

__all__ = ["PipelineKind", "PhysioSyncKind", "SimCLRKind", "BandPowerKind", "StimulusPriorKind",
           "EstimatorKind", "BraindecodeKind", "PIPELINE_KINDS", "get_pipeline_kind"]


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
        if ft.freeze_encoders:
            state += ", encoders frozen"
        return {"embedding": emb, "pretrained": bool(cfg.pretrain_enabled),
                "text": f"{self.label}, {what}, {state}"}

    def shared_across_subjects(self, cfg) -> str | None:
        if cfg.pretrain_enabled:
            return "pre-trains one encoder per fold on all subjects' training trials"
        return "starts every subject's model of a fold from the same initial weights"

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


class BandPowerKind(PipelineKind):
    """Band powers + logistic regression (:func:`~physiosync.evaluation.runner.run_fold_bandpower`)."""

    name = "bandpower"
    importance_method = runner.BANDPOWER_IMPORTANCE

    def fold_function(self) -> Callable:
        return runner.run_fold_bandpower

    def fold_kwargs(self, cfg, data, *, pretrain_cache=None) -> dict:
        return dict(sfreq=data.sfreq, C=cfg.baselines["bandpower"]["C"],
                    modalities=cfg.finetune.modalities)

    def fold_runner(self, cfg, data) -> runner.FoldRunner:
        kw = self.fold_kwargs(cfg, data)
        return runner.bandpower_runner(kw["sfreq"], C=kw["C"],
                                       modalities=kw["modalities"] or tuple(data.sfreq))

    def describe(self, cfg) -> dict:
        return {"text": "band powers per channel + logistic regression"}


class StimulusPriorKind(PipelineKind):
    """Other training subjects' labels of the same stimulus, no signal."""

    name = "stimulus-prior"
    uses_signal = False

    def fold_function(self) -> Callable:
        return runner.run_fold_stimulus_prior

    def fold_kwargs(self, cfg, data, *, pretrain_cache=None) -> dict:
        return {}

    def fold_runner(self, cfg, data) -> runner.FoldRunner:
        return runner.stimulus_prior_runner()

    def describe(self, cfg) -> dict:
        return {"text": "no signal: other training subjects' labels of the same stimulus"}

    def shared_across_subjects(self, cfg) -> str | None:
        return "predicts each subject from the other subjects' labels"


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
    """

    def __init__(self, name: str, factory: Callable, *, validation: str = "ignore",
                 inputs: str = "windows", importance: Callable | None = None,
                 importance_method: str | None = None, text: str | None = None,
                 uses_signal: bool = True, window_ids: bool = False):
        self.name = name
        self.factory = factory
        self.validation = validation
        self.inputs = inputs
        self.importance = importance
        self.importance_method = importance_method
        self.text = text or name
        self.uses_signal = uses_signal
        self.window_ids = window_ids

    def fold_kwargs(self, cfg, data, *, pretrain_cache=None) -> dict:
        model = runner.EstimatorRunner(
            lambda: self.factory(cfg, data), modalities=cfg.finetune.modalities,
            inputs=self.inputs, validation=self.validation, importance=self.importance,
            importance_method=self.importance_method, window_ids=self.window_ids)
        return {"model": model}

    def describe(self, cfg) -> dict:
        return {"text": self.text}


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


def _de_importance(clf, data, mods: tuple):
    """EEG channel shares of the logistic regression's weights (None for the SVM)."""
    return clf.channel_importance("eeg") if "eeg" in mods else None


class BraindecodeKind(EstimatorKind):
    """A braindecode network (:class:`~physiosync.evaluation.deep.BraindecodeClassifier`).

    Trained on the fold's windows of ``finetune.modalities`` with the options of
    ``baselines.deep`` (:class:`~physiosync.params.DeepParams`), the run's seed and
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


#: Kind name -> :class:`PipelineKind`. A new kind is one class (or one
#: :class:`EstimatorKind`) and one line here.
PIPELINE_KINDS: dict[str, PipelineKind] = {
    "physiosync": PhysioSyncKind(),
    "simclr": SimCLRKind(),
    "bandpower": BandPowerKind(),
    "stimulus-prior": StimulusPriorKind(),
    "eegnet": BraindecodeKind(
        "eegnet", "eegnet", text="braindecode EEGNetv4, trained from scratch"),
    "shallow-fbcsp": BraindecodeKind(
        "shallow-fbcsp", "shallow", text="braindecode ShallowFBCSPNet, trained from scratch"),
    "deep4": BraindecodeKind(
        "deep4", "deep4", text="braindecode Deep4Net, trained from scratch"),
    "de-lr": EstimatorKind(
        "de-lr", _de_classifier("lr"), validation="ignore", window_ids=True,
        importance=_de_importance, importance_method=runner.BANDPOWER_IMPORTANCE,
        text="differential entropy (5 bands) per channel + logistic regression"),
    "de-svm": EstimatorKind(
        "de-svm", _de_classifier("svm"), validation="fit", window_ids=True,
        text="differential entropy (5 bands) per channel + RBF SVM, C and gamma chosen on "
             "the validation windows"),
}


def get_pipeline_kind(kind: str) -> PipelineKind:
    """The :class:`PipelineKind` called *kind*, with a clear error if there is none."""
    try:
        return PIPELINE_KINDS[kind]
    except KeyError:
        raise PhysioSyncError(f"no runner for pipeline kind {kind!r}; known kinds: "
                              f"{', '.join(PIPELINE_KINDS)}. Register one in "
                              "physiosync.evaluation.pipelines.PIPELINE_KINDS.") from None
