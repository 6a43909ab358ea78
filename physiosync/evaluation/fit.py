"""The one PhysioSync fit path: pre-train, fine-tune with epoch selection, predict.

:class:`~physiosync.estimators.PhysioSyncClassifier`, the fold runner
(:class:`~physiosync.evaluation.runner.PhysioSyncRunner`) and the ``pretrain`` and
``finetune`` commands all train PhysioSync through these functions, so that the three
differ only in the data and the validation split they pass in:

- the estimator holds out whole training trials with
  :func:`~physiosync.evaluation.protocols.split_validation` (:func:`fit_physiosync`
  with ``pretrain=``: pre-training and fine-tuning in one call);
- the fold runner takes the protocol's validation units, pre-trains once per fold
  (:func:`pretrain_physiosync`) and fine-tunes each model of the fold from those
  encoders (:func:`fit_physiosync` with ``pretrained=``);
- the commands split held-out trials and validation units with :func:`holdout_split`
  and start from checkpoints (:func:`load_pretrained`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._logging import logger, verbose
from ..exceptions import ConfigError, PhysioSyncError
from ..params import FinetuneConfig, PretrainConfig
from ..training.finetune import finetune, predict_proba
from ..training.pretrain import pretrain_encoders
from ..training.sampling import SlotData
from .._utils.docs import fill_doc
from .protocols import split_validation

__all__ = ["PhysioSyncFit", "encoders_used", "pretrain_physiosync", "fit_physiosync",
           "holdout_split", "load_pretrained", "HeldOutScores", "held_out_scores"]

#: The checkpoint file of each pre-trained encoder length in a ``pretrain`` folder.
PRETRAIN_FILES = {"long": "pretrain_long.pt", "short": "pretrain_short.pt"}


def encoders_used(config: FinetuneConfig) -> tuple:
    """The encoder lengths fine-tuning uses, ``"long"`` then ``"short"`` (ablations drop one)."""
    return tuple(name for name, used in (("long", config.use_long), ("short", config.use_short))
                 if used)


@fill_doc
def pretrain_physiosync(data: SlotData, long_config: PretrainConfig,
                        short_config: PretrainConfig, *, n_sub: int, which=("long", "short"),
                        held_out: dict | None = None, on_start=None, on_end=None,
                        **options) -> dict:
    """Pre-train PhysioSync's encoders, one length at a time.

    Each run is one :func:`~physiosync.training.pretrain.pretrain_encoders` call, so a
    run's held-out cells fill its own batches and a caller can report each run as it
    ends.

    Parameters
    ----------
    data : SlotData
        Long windows of every subject.
    %(long_short_config)s
    %(n_sub)s
    which : sequence of {"long", "short"}
        The encoders to pre-train, in this order (:func:`encoders_used` for those that
        fine-tuning uses).
    held_out : dict | None
        ``{"long": mask, "short": mask}``: the cells of each run's held-out diagnostic
        (a run not named has none).
    on_start, on_end : callable | None
        ``on_start(name)`` before a run and ``on_end(name, model, history)`` after it.
    **options
        Passed to :func:`~physiosync.training.pretrain.pretrain_encoders` (``allowed``,
        ``modalities``, ``device``, ``checkpoint_dir``, ``cache``, ``objective``,
        ``compile``, ``log_every``, ``verbose``, ...).

    Returns
    -------
    encoders : dict
        ``{name: (model, history)}`` for each name in *which*.
    """
    out = {}
    for name in which:
        if on_start is not None:
            on_start(name)
        run = pretrain_encoders(data, long_config, short_config, n_sub=n_sub, which=(name,),
                                held_out=(held_out or {}).get(name), **options)[name]
        if on_end is not None:
            on_end(name, *run)
        out[name] = run
    return out


@dataclass
class PhysioSyncFit:
    """What :func:`fit_physiosync` trained.

    Attributes
    ----------
    model : PhysioSyncNet
        The fine-tuned network with the selected epoch's weights, in eval mode.
    history : list of dict
        Fine-tuning's per-epoch history (see :func:`~physiosync.training.finetune.finetune`).
    pretrained : dict
        ``{name: PretrainModel}``, the encoders fine-tuning started from (empty: none).
    pretrain_history : dict
        ``{name: history}`` of the runs this call pre-trained (empty when it ran none).
    proba : ndarray, shape (n_test, n_classes) | None
        Class probabilities of the *test* cells, when given.
    """

    model: object
    history: list
    pretrained: dict = field(default_factory=dict)
    pretrain_history: dict = field(default_factory=dict)
    proba: np.ndarray | None = None

    @property
    def selected_epoch(self) -> int | None:
        """The epoch whose weights were kept on the validation cells (None without them)."""
        chosen = [r["epoch"] for r in self.history if r.get("selected")]
        return chosen[-1] if chosen else None


@verbose
def fit_physiosync(data: SlotData, train, val=None, test=None, *, n_sub: int,
                   n_classes: int, finetune_config: FinetuneConfig,
                   long_config: PretrainConfig, short_config: PretrainConfig,
                   pretrained: dict | None = None, pretrain: dict | None = None,
                   train_labels=None, val_labels=None, device=None,
                   init_cache: dict | None = None, checkpoint=None, resume: bool = True,
                   log_every: int | None = None,
                   verbose: bool | str | int | None = None) -> PhysioSyncFit:
    """Pre-train (optionally), fine-tune with epoch selection, and predict: PhysioSync's fit.

    Parameters
    ----------
    data : SlotData
        Long windows on the ``(subject, trial, window)`` grid.
    train : ndarray of int, shape (K, 3)
        The cells fine-tuning learns from.
    val : ndarray of int, shape (K_val, 3) | None
        The cells that select the fine-tuning epoch, split by the caller (protocol
        units, or :func:`~physiosync.evaluation.protocols.split_validation`); empty or
        ``None`` keeps the last epoch.
    test : ndarray of int, shape (K_test, 3) | None
        Cells to predict once the model is fitted (:attr:`PhysioSyncFit.proba`).
    %(n_sub)s
    n_classes : int
        Classes of the head.
    finetune_config : FinetuneConfig
        Fine-tuning hyper-parameters; its ``use_long`` and ``use_short`` say which
        encoders are pre-trained and used.
    %(long_short_config)s
    pretrained : dict | None
        ``{name: PretrainModel}`` to start from (pre-trained earlier: once per fold, or
        read from checkpoints). ``None`` with no *pretrain*: from scratch.
    pretrain : dict | None
        Pre-train first, with these options of :func:`pretrain_physiosync` (``{}`` for
        its defaults), the encoders of :func:`encoders_used`; not with *pretrained*.
    train_labels, val_labels : ndarray of int | None
        Class of each train and val cell (default: the per-trial ``data.labels``).
    device : str | torch.device | None
        Where the network trains and predicts.
    init_cache : dict | None
        Initial networks shared by the models of one fold
        (see :func:`~physiosync.training.finetune.finetune`).
    checkpoint, resume
        Fine-tuning's checkpoint file and whether to resume from it.
    log_every : int | None
        Fine-tuning's progress lines (every *log_every* epochs), with a line as it
        starts and one naming the epoch kept; ``None``: none of them.
    %(verbose)s

    Returns
    -------
    fit : PhysioSyncFit
        The model, the histories, the encoders it started from and the test
        probabilities.
    """
    if pretrain is not None and pretrained is not None:
        raise PhysioSyncError("pass pretrained= (encoders trained earlier) or pretrain= "
                              "(pre-train now), not both.")
    pretrain_history = {}
    if pretrain is not None:
        runs = pretrain_physiosync(data, long_config, short_config, n_sub=n_sub,
                                   which=encoders_used(finetune_config),
                                   **{"device": device, **pretrain})
        pretrained = {name: model for name, (model, _) in runs.items()}
        pretrain_history = {name: hist for name, (_, hist) in runs.items()}
    pretrained = pretrained or {}
    has_val = val is not None and len(val)
    if log_every is not None:
        logger.info("fine-tuning: %d epochs on %d windows%s", finetune_config.epochs, len(train),
                    f" ({len(val)} more select the epoch)" if has_val else "")
    model, history = finetune(
        data, train, train_labels=train_labels, val_cells=val if has_val else None,
        val_labels=val_labels if has_val else None, config=finetune_config,
        pretrained=pretrained, n_sub=n_sub, n_classes=n_classes, long_config=long_config,
        short_config=short_config, device=device, checkpoint=checkpoint, resume=resume,
        init_cache=init_cache, log_every=log_every)
    fit = PhysioSyncFit(model, history, pretrained, pretrain_history)
    if log_every is not None and fit.selected_epoch is not None:
        logger.info("fine-tuning: kept epoch %d (best on the validation windows)",
                    fit.selected_epoch + 1)
    if test is not None:
        fit.proba = predict_proba(model, data, test)
    return fit


@dataclass
class HoldoutSplit:
    """Cells of a fit on all trials but some held-out ones (:func:`holdout_split`).

    Attributes
    ----------
    train, val, test : ndarray of int, shape (n, 3)
        Fine-tuning, epoch-selection and held-out cells.
    fit_units : ndarray of int, shape (n, 2)
        The ``(subject, trial)`` units fine-tuning learns from.
    test_trials : list of int
        The held-out trial ids, sorted.
    """

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    fit_units: np.ndarray
    test_trials: list


@dataclass
class HeldOutScores:
    """Scores of a fit on its held-out windows, each with its chance level.

    Attributes
    ----------
    metrics : dict
        :func:`~physiosync.evaluation.metrics.classification_metrics` of the predictions.
    chance : dict
        :func:`~physiosync.evaluation.metrics.chance_levels` of each metric, from the
        test and training labels.
    classes : ndarray of int
        The classes present in the held-out labels.
    n_windows : int
        Held-out windows scored.
    """

    metrics: dict
    chance: dict
    classes: np.ndarray
    n_windows: int

    @property
    def one_class(self) -> bool:
        """Whether the held-out windows hold fewer than two classes.

        Accuracy then only says how often that class was predicted, and balanced
        accuracy is undefined.
        """
        return len(self.classes) < 2


@fill_doc
def held_out_scores(y_test, y_pred, y_train, *, n_classes: int) -> HeldOutScores:
    """Score predictions of held-out windows against the chance level of each metric.

    Parameters
    ----------
    y_test : array of int, shape (n_windows,)
        Labels of the held-out windows.
    y_pred : array of int, shape (n_windows,)
        Their predicted classes (e.g. ``PhysioSyncFit.proba.argmax(1)``).
    y_train : array of int
        Labels of the training windows (the chance level of accuracy predicts their
        majority class).
    %(n_classes)s

    Returns
    -------
    scores : HeldOutScores
        The metrics, their chance levels and the classes present.
    """
    from .metrics import chance_levels, classification_metrics

    y_test = np.asarray(y_test)
    return HeldOutScores(classification_metrics(y_test, y_pred, n_classes=n_classes),
                         chance_levels(y_test, y_train, n_classes=n_classes),
                         np.unique(y_test), len(y_test))


@fill_doc
def holdout_split(data: SlotData, units, labels, *, test_trials=(), val_size: float,
                  seed: int) -> HoldoutSplit:
    """Hold out the windows of some trials, and split validation units from the rest.

    Parameters
    ----------
    %(labelled_slots)s
    units : ndarray of int, shape (n, 2)
        ``(subject id, trial id)`` of every unit with data.
    labels : ndarray of int, shape (n,)
        Class of each unit.
    test_trials : iterable of int
        Trial ids whose units are held out for testing (none: everything trains).
    val_size : float
        Share of the remaining units set aside for epoch selection
        (:func:`~physiosync.evaluation.protocols.split_validation`, grouped by trial).
    seed : int
        Seed of the validation split.

    Returns
    -------
    split : HoldoutSplit

    Raises
    ------
    PhysioSyncError
        If a test trial is not a trial of the data.
    """
    units = np.asarray(units)
    held = {int(t) for t in test_trials}
    unknown = held - {int(t) for t in units[:, 1]}
    if unknown:
        raise PhysioSyncError(f"--test-trials {sorted(unknown)} are not trials of the data "
                              f"(0..{int(units[:, 1].max())}).")
    is_test = np.isin(units[:, 1], list(held))
    fit_units, val_units = split_validation(units[~is_test], units[~is_test][:, 1],
                                            labels[~is_test], val_size, seed)
    train, val, test = (data.cells(part) for part in (fit_units, val_units, units[is_test]))
    return HoldoutSplit(train, val, test, fit_units, sorted(held))


@fill_doc
def load_pretrained(folder, data: SlotData, *, n_sub: int, finetune_config: FinetuneConfig,
                    long_config: PretrainConfig, short_config: PretrainConfig) -> dict:
    """Read the encoders of a ``physiosync pretrain`` folder, checked against this fit.

    Parameters
    ----------
    folder : str | Path
        Holds ``pretrain_long.pt`` and/or ``pretrain_short.pt``.
    data : SlotData
        The windows fine-tuning will read (their channels and lengths).
    %(n_sub)s
    finetune_config : FinetuneConfig
        The fine-tuning's settings (its modalities).
    %(long_short_config)s

    Returns
    -------
    pretrained : dict
        ``{name: PretrainModel}`` for each file present.

    Raises
    ------
    PhysioSyncError
        If the folder holds neither file.
    ConfigError
        If an encoder was pre-trained with another configuration, naming its file and
        the keys that differ.
    """
    from ..training.checkpoints import load_checkpoint

    pre = {}
    for name, file in PRETRAIN_FILES.items():
        path = Path(folder) / file
        if path.exists():
            pre[name] = load_checkpoint(path)[0]["pretrain"]
            _check_pretrained_fits(data, name, pre[name], path, n_sub=n_sub,
                                   finetune_config=finetune_config, long_config=long_config,
                                   short_config=short_config)
    if not pre:
        raise PhysioSyncError(f"no pretrain_long.pt or pretrain_short.pt in "
                              f"{folder}; run `physiosync pretrain` first.")
    return pre


def _check_pretrained_fits(data: SlotData, name: str, model, path, *, n_sub: int,
                           finetune_config, long_config, short_config) -> None:
    """Refuse pre-trained encoders built with another configuration than this fit's,
    naming the checkpoint and the keys that differ."""
    import torch

    from ..models.physiosync import PhysioSyncNet, describe_mismatch

    mods = tuple(finetune_config.modalities or data.modalities)
    with torch.device("meta"):  # shapes only, no memory
        net = PhysioSyncNet({m: data.n_chans(m) for m in mods},
                            {m: data.n_times(m) for m in mods}, n_sub, 2,
                            finetune_config, long_config, short_config)
    diff = net.pretrained_mismatch(name, model)
    if diff:
        raise ConfigError(
            f"{path}: its {name} encoders were pre-trained with another configuration than "
            f"this run's pretrain.{name}: {describe_mismatch(diff)}; give finetune the "
            "--config and --set that pretrain was given, or pre-train again.")
