"""braindecode's EEGNet, ShallowFBCSPNet and Deep4Net as scikit-learn classifiers.

:class:`BraindecodeClassifier` trains one of braindecode's networks, unchanged, on
the same windows, folds, validation windows, epoch-selection rule, seeds and device
as PhysioSync's fine-tuning, so that the pipelines ``eegnet``, ``shallow-fbcsp`` and
``deep4`` compare with PhysioSync on equal terms. braindecode is an optional
dependency (``pip install 'physiosync[deep]'``); it is imported when a network is
built, never by ``import physiosync``.

Input scale: the prepared windows hold z-scores (EEG normalised across channels at
each sample by default, peripheral signals per channel and trial; see
``docs/data.md``), not volts. braindecode's examples standardise their input too
(exponential moving standardisation), and each of these networks normalises after
its first convolution (batch normalisation), so the windows are given as they are.

Batch-normalisation statistics: EEGNetv4 keeps its running statistics with momentum
0.01, so after the few hundred steps that a fold affords they are still far from the
data, and the network scores near chance in eval mode while the same weights with
batch statistics score well. After every epoch, before validation, the running
statistics of every batch-normalisation layer are therefore re-estimated over the
training windows with that epoch's weights (a cumulative average over the batches,
dropout off: "precise BN"). It changes no weight and sees no validation or test
window.

The training loop is a plain torch loop rather than braindecode's ``EEGClassifier``
(skorch): epoch selection must read the protocol's validation windows, which
skorch would take from an internal split or callbacks, and every random draw must
come from the run's seed as in :func:`~physiosync.training.finetune.finetune`.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import balanced_accuracy_score
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, column_or_1d

from .._logging import logger, progress, verbose
from .._utils import check_option, derive_seed, flush_denormals, resolve_device
from .._utils.docs import fill_doc
from ..exceptions import PhysioSyncError, ShapeError, TrainingDivergedError
from ..params import EPOCH_SELECTIONS
from ..pipeline_specs import BRAINDECODE_MODELS
from ..training.engine import DeviceRows, EpochLosses, to_device

__all__ = ["BraindecodeClassifier", "build_network", "check_braindecode", "NETWORKS"]

#: ``model`` of :class:`BraindecodeClassifier` -> braindecode class name.
NETWORKS = {"eegnet": "EEGNetv4", "shallow": "ShallowFBCSPNet", "deep4": "Deep4Net"}

_MISSING = ("the EEGNet/ShallowFBCSPNet baselines need braindecode: "
            "pip install 'physiosync[deep]'")


def check_braindecode():
    """Import ``braindecode.models``, or say in one line how to install it.

    Returns
    -------
    models : module
        ``braindecode.models``.

    Raises
    ------
    PhysioSyncError
        If braindecode is not installed.
    """
    try:
        import braindecode.models as models
    except ImportError:
        raise PhysioSyncError(_MISSING) from None
    return models


def build_network(model: str, n_chans: int, n_times: int, n_outputs: int,
                  sfreq: float = 128.0) -> torch.nn.Module:
    """One of braindecode's networks for windows of a given shape, returning logits.

    Parameters
    ----------
    model : {"eegnet", "shallow", "deep4"}
        EEGNetv4, ShallowFBCSPNet or Deep4Net, with braindecode's defaults except
        where noted below.
    n_chans, n_times : int
        Channels and samples of a window.
    n_outputs : int
        Classes.
    sfreq : float
        Sampling rate in Hz. EEGNet's temporal kernel is half a second long, as in
        the EEGNet paper (braindecode's default of 64 samples assumes 128 Hz).

    Returns
    -------
    network : torch.nn.Module
        Maps ``(batch, n_chans, n_times)`` to ``(batch, n_outputs)`` logits. The
        final convolution of ShallowFBCSPNet and Deep4Net spans the whole remaining
        time axis (``final_conv_length="auto"``), and they end without braindecode's
        log-softmax, so that every network is trained with the same cross-entropy.
    """
    check_option("model", model, BRAINDECODE_MODELS)
    models = check_braindecode()
    name = NETWORKS[model]
    kwargs = dict(n_chans=int(n_chans), n_outputs=int(n_outputs), n_times=int(n_times))
    if model == "eegnet":
        kwargs["kernel_length"] = max(int(round(sfreq / 2)), 1)
    else:
        kwargs.update(final_conv_length="auto", add_log_softmax=False)
    try:
        return getattr(models, name)(**kwargs)
    except (RuntimeError, ValueError, AssertionError):
        # braindecode runs a dummy window through the network to size its last layer;
        # it fails when the kernels and pools need more samples than a window holds.
        raise ShapeError(f"braindecode's {name} cannot be built for windows of {n_times} "
                         f"samples x {n_chans} channels: too few samples for its "
                         "convolutions and pooling. Use longer windows (data.long_seconds) "
                         "or another model.") from None


def _sfreq_of(sfreq, modalities) -> float:
    if not isinstance(sfreq, dict):
        return float(sfreq)
    rates = {float(sfreq[m]) for m in modalities}
    if len(rates) > 1:
        raise PhysioSyncError(f"modalities {', '.join(modalities)} have different sampling "
                              f"rates ({sfreq}); a braindecode network takes one rate. Use "
                              "modalities of one rate (e.g. modalities=('eeg',)).")
    return rates.pop()


@fill_doc
class BraindecodeClassifier(ClassifierMixin, BaseEstimator):
    """A braindecode network trained like PhysioSync's fine-tuning, scikit-learn API.

    Parameters
    ----------
    model : {"eegnet", "shallow", "deep4"}
        braindecode's EEGNetv4, ShallowFBCSPNet or Deep4Net (:func:`build_network`).
    %(sfreq_modalities)s
    n_epochs : int
        Passes over the training windows.
    lr, weight_decay : float
        AdamW's learning rate and weight decay.
    batch_size : int
        Windows per step.
    select : {"val_loss", "val_balanced_accuracy", "last"}
        Which epoch's weights to keep, as in
        :func:`~physiosync.training.finetune.finetune`: the epoch with the lowest loss
        (or highest balanced accuracy) on ``X_val`` given to :meth:`fit`; without
        validation windows, the last epoch.
    seed : int
        Seed of the initial weights, the batch order and dropout
        (:func:`~physiosync._utils.random.derive_seed`).
    device : str | None
        Torch device (:func:`~physiosync._utils.device.resolve_device`; None: CUDA if
        available, else the CPU).
    modalities : tuple of str
        Modalities of dict input fed to the network, their channels stacked (they must
        share a sampling rate and window length).
    %(verbose)s

    Attributes
    ----------
    classes_ : ndarray, shape (n_classes,)
        Class labels seen in training.
    network_ : torch.nn.Module
        The trained network (selected epoch), in eval mode.
    history_ : list of dict
        Per epoch: ``epoch``, ``train_loss``, ``steps`` and, with validation windows,
        ``val_loss``, ``val_balanced_accuracy`` and ``selected``.
    selected_epoch_ : int
        The epoch whose weights are kept.
    """

    def __init__(self, model: str = "eegnet", sfreq=128.0, n_epochs: int = 20,
                 lr: float = 1e-3, batch_size: int = 64, weight_decay: float = 0.0,
                 select: str = "val_loss", seed: int = 0, device=None,
                 modalities: tuple = ("eeg",), verbose=None):
        self.model = model
        self.sfreq = sfreq
        self.n_epochs = n_epochs
        self.lr = lr
        self.batch_size = batch_size
        self.weight_decay = weight_decay
        self.select = select
        self.seed = seed
        self.device = device
        self.modalities = modalities
        self.verbose = verbose

    def _inputs(self, X, *, reset: bool = False) -> np.ndarray:
        """``(n_windows, n_channels, n_times)`` float32: the modalities' channels stacked."""
        if isinstance(X, dict):
            missing = [m for m in self.modalities if m not in X]
            if missing:
                raise PhysioSyncError(f"X lacks modalities {missing}; it holds {sorted(X)}. "
                                      f"Set modalities= to some of those.")
            parts = [np.asarray(X[m], dtype=np.float32) for m in self.modalities]
            lengths = {p.shape[-1] for p in parts}
            if len(lengths) > 1:
                raise ShapeError(f"modalities {', '.join(self.modalities)} have windows of "
                                 f"different lengths {sorted(lengths)}; a braindecode network "
                                 "takes one length. Use modalities of one sampling rate.")
            X = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 3:
            raise ShapeError(f"X must be (n_windows, n_channels, n_times), got shape {X.shape}.")
        if not reset and X.shape[1:] != (self.n_chans_, self.n_times_):
            raise ShapeError(f"X has windows of shape {X.shape[1:]}, the network was trained "
                             f"on {(self.n_chans_, self.n_times_)}.")
        return X

    def _forward(self, X: np.ndarray, dev: torch.device) -> torch.Tensor:
        """Logits of every window, in batches, without gradients (on the CPU).

        The batches go to the device through pinned memory and the logits come back in
        one copy at the end, so the host does not wait for the device batch by batch.
        """
        self.network_.eval()
        out = []
        with torch.no_grad():
            for i in range(0, len(X), self.batch_size):
                x = to_device(torch.from_numpy(X[i:i + self.batch_size]), dev)
                out.append(self.network_(x).float())
        return torch.cat(out).cpu() if out else torch.zeros((0, len(self.classes_)))

    def _recalibrate_batch_norm(self, X: DeviceRows, n: int) -> None:
        """Re-estimate the batch-norm running statistics over the *n* windows of *X*."""
        norms = [m for m in self.network_.modules()
                 if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
        if not norms:
            return
        momenta = [m.momentum for m in norms]
        self.network_.eval()  # dropout off
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the batches below
            m.train()
        with torch.no_grad():
            for i in range(0, n, self.batch_size):
                if min(n - i, self.batch_size) >= 2:
                    self.network_(X.take(slice(i, i + self.batch_size))[0])
        for m, momentum in zip(norms, momenta):
            m.momentum = momentum
        self.network_.eval()

    @verbose
    @flush_denormals()
    def fit(self, X, y, X_val=None, y_val=None):
        """Train the network; keep the epoch that *select* chooses on ``X_val``.

        Parameters
        ----------
        X : dict of str -> ndarray | ndarray, shape (n_windows, n_channels, n_times)
            Training windows (a dict modality -> windows, as the fold loop gives).
        y : array, shape (n_windows,)
            Their classes.
        X_val, y_val : same as *X*, *y* | None
            Validation windows for epoch selection (never test windows). Windows of a
            class absent from *y* are left out.

        Returns
        -------
        self : BraindecodeClassifier
        """
        check_option("select", self.select, EPOCH_SELECTIONS)
        X = self._inputs(X, reset=True)
        y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if len(X) != len(y):
            raise ShapeError(f"X has {len(X)} windows but y has {len(y)} labels.")
        self.classes_, y_idx = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise PhysioSyncError(f"the training windows hold one class only "
                                  f"({self.classes_[0]}); a classifier cannot be fitted.")
        have_val = X_val is not None and y_val is not None and len(y_val) > 0
        if have_val:
            Xv = self._inputs(X_val, reset=True)
            if Xv.shape[1:] != X.shape[1:]:
                raise ShapeError(f"X_val has windows of shape {Xv.shape[1:]}, X of "
                                 f"{X.shape[1:]}.")
            yv = column_or_1d(y_val, warn=True)
            keep = np.isin(yv, self.classes_)
            Xv, yv_idx = Xv[keep], np.searchsorted(self.classes_, yv[keep])
            have_val = len(yv_idx) > 0
        select = self.select if have_val else "last"
        sfreq = _sfreq_of(self.sfreq, self.modalities)
        dev = resolve_device(self.device)
        self.n_chans_, self.n_times_ = X.shape[1:]
        torch.manual_seed(derive_seed(self.seed, "braindecode-init", self.model))
        self.network_ = build_network(self.model, self.n_chans_, self.n_times_,
                                      len(self.classes_), sfreq).to(dev)
        opt = torch.optim.AdamW(self.network_.parameters(), lr=self.lr,
                                weight_decay=self.weight_decay)
        # windows and labels on the device once when they fit, else each batch pinned
        train = DeviceRows([X, y_idx.astype(np.int64)], dev)
        self.history_, best_state, best_score = [], None, math.inf
        self.selected_epoch_ = self.n_epochs - 1
        for epoch in progress(range(self.n_epochs), desc=self.model):
            losses = self._train_epoch(train, len(X), opt, epoch)
            self._recalibrate_batch_norm(train, len(X))
            record = {"epoch": epoch, "train_loss": float(np.mean(losses)) if losses
                      else float("nan"), "steps": len(losses)}
            if have_val:
                logits = self._forward(Xv, dev)
                val_loss = float(F.cross_entropy(logits, torch.from_numpy(yv_idx)))
                with warnings.catch_warnings():  # a validation set may hold one class
                    warnings.simplefilter("ignore", UserWarning)
                    bacc = float(balanced_accuracy_score(yv_idx, logits.argmax(1).numpy()))
                record.update(val_loss=val_loss, val_balanced_accuracy=bacc)
                score = val_loss if select == "val_loss" else -bacc
                if select != "last" and score < best_score:
                    best_score, self.selected_epoch_ = score, epoch
                    best_state = {k: v.detach().clone()
                                  for k, v in self.network_.state_dict().items()}
                    record["selected"] = True
            logger.debug("%s epoch %d: %s", self.model, epoch, record)
            self.history_.append(record)
        if best_state is not None:
            self.network_.load_state_dict(best_state)
        self.network_.eval()
        return self

    def _train_epoch(self, train: DeviceRows, n: int, opt, epoch: int) -> list:
        """One epoch of steps; the losses, read once at its end (a non-finite one raises)."""
        self.network_.train()
        g = torch.Generator().manual_seed(derive_seed(self.seed, "braindecode-epoch", epoch))
        order = torch.randperm(n, generator=g).numpy()
        starts = [i for i in range(0, n, self.batch_size)
                  if len(order[i:i + self.batch_size]) >= 2]  # batch norm needs two windows
        # every batch's rows (sorted), copied where the windows are in one go
        index = train.index(np.concatenate([np.sort(order[i:i + self.batch_size])
                                            for i in starts]) if starts else [])
        losses, at = EpochLosses(), 0
        for i in starts:
            rows = index[at:at + min(self.batch_size, n - i)]
            at += len(rows)
            torch.manual_seed(derive_seed(self.seed, "braindecode-step", epoch, i))
            x, y = train.take(rows)
            loss = F.cross_entropy(self.network_(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.add(loss)
        values = losses.read()
        bad = EpochLosses.first_bad(values)
        if bad is not None:
            raise TrainingDivergedError(
                f"braindecode {NETWORKS[self.model]}: the loss became {bad[1]} in epoch "
                f"{epoch}; try a lower lr.")
        return values

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities (softmax of the logits), columns in ``classes_`` order.

        Parameters
        ----------
        X : dict of str -> ndarray | ndarray, shape (n_windows, n_channels, n_times)
            Windows, as for :meth:`fit`.

        Returns
        -------
        proba : ndarray, shape (n_windows, n_classes)
        """
        check_is_fitted(self, "network_")
        X = self._inputs(X)
        dev = next(self.network_.parameters()).device
        return torch.softmax(self._forward(X, dev), dim=1).numpy().astype(np.float64)

    def predict(self, X) -> np.ndarray:
        """Most probable class of each window."""
        return self.classes_[self.predict_proba(X).argmax(1)]
