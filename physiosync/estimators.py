"""A scikit-learn classifier that pre-trains PhysioSync and fine-tunes it.

:class:`PhysioSyncClassifier` is what a BCI experiment imports: ``fit`` takes long
windows (e.g. 5 s) plus, optionally, the subject, trial and window position of each
one; it pre-trains the long and short encoders with inter-subject synchrony and
CM-CA when those ids are given, then fine-tunes the hierarchical fusion head. It is
``clone``-able and works in scikit-learn pipelines and model selection.
"""

from __future__ import annotations

import copy
import numbers

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin, _fit_context
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._logging import logger, verbose
from .exceptions import InputShapeError, PhysioSyncError
from .evaluation.protocols import split_validation
from . import _utils, params
from .params import FinetuneConfig
from .models.physiosync import default_embed_dim
from .evaluation.fit import fit_physiosync
from .params import PretrainConfig
from .training.sampling import SlotData
from ._utils import derive_seed
from ._utils.device import resolve_device
from ._utils.docs import fill_doc

__all__ = ["PhysioSyncClassifier", "InputShapeError"]


def _check_sessions(subject, trial, session) -> None:
    """Refuse session ids under which one ``(subject, trial)`` spans two sessions."""
    if session is None or subject is None or trial is None:
        return
    import pandas as pd

    ids = pd.DataFrame({"subject": np.asarray(subject), "trial": np.asarray(trial),
                        "session": np.asarray(session)})
    per_unit = ids.groupby(["subject", "trial"])["session"].nunique()
    if (per_unit > 1).any():
        subject, trial = per_unit.index[np.argmax(per_unit.to_numpy() > 1)]
        raise PhysioSyncError(
            f"subject {subject} trial {trial} has windows of several sessions; number the "
            "trials across a subject's sessions (as the readers do) so that a (subject, "
            "trial) pair names one trial.")


def _sklearn_rule(constraint) -> list:
    """A rule of :mod:`physiosync.params` in scikit-learn's ``_parameter_constraints`` form.

    The estimator's parameters keep the bounds and choices declared once for the
    configuration files; scikit-learn's ``_validate_params`` then checks them.
    """
    if isinstance(constraint, _utils.checks.Options):
        values = set(constraint.values)
        rule = (StrOptions(values) if all(isinstance(v, str) for v in values)
                else Options(object, values))
    elif isinstance(constraint, _utils.checks.Interval):
        rule = Interval(numbers.Integral if constraint.type is int else numbers.Real,
                        constraint.low, constraint.high, closed=constraint.closed)
    else:  # a list rule: its elements are checked where the configuration is built
        rule = "array-like"
    return [rule, None] if constraint.allow_none else [rule]


def _rules(cls, **names) -> dict:
    """``{estimator parameter: rule}`` from the fields *names* map to in *cls*."""
    return {param: _sklearn_rule(cls._parameter_constraints[field])
            for param, field in names.items()}


@fill_doc
class PhysioSyncClassifier(ClassifierMixin, TransformerMixin, BaseEstimator):
    """PhysioSync as a scikit-learn classifier.

    Parameters
    ----------
    n_eeg_channels : int | None
        For array input ``(n_windows, n_channels, n_times)``: the first
        *n_eeg_channels* channels are EEG, the rest one peripheral signal at the same
        rate. ``None``: all channels are EEG. Dict input ``{"eeg": ..., "gsr": ...}``
        (modalities at their own rates, EEG first) ignores it. 2-D input
        ``(n_windows, n_times)`` is one EEG channel.
    %(n_sub)s
    pretrain : {"auto", True, False}
        Contrastive pre-training before fine-tuning. It needs ``subject`` and ``trial``
        in ``fit``; ``"auto"`` pre-trains exactly when they are given.
    pretrain_steps : int
        Steps of each of the two pre-training runs (long and short windows).
    batch_slots, group_size : int
        Stimulus slots per pre-training batch and subjects per group.
    embed_dim : int | None
        Token size of the long encoders (default: the EEG window length in samples,
        as in the reference); the short encoders use ``embed_dim // n_sub``. Sizes are
        rounded down to a multiple of *n_heads*.
    depth, n_heads, n_prompts : int
        Transformer depth, heads and EEG prompt tokens.
    embedding : {"multiview", "factorised", "spectral"}
        Encoder embedding (``"factorised"`` is far smaller at 5 s).
    projector_dims : tuple of int
        Contrastive projector sizes.
    cmca_variant : {"cross-subject", "same-subject", "none"}
        CM-CA form.
    pretrain_lr, weight_decay : float
        Pre-training optimiser settings.
    epochs, batch_size, lr : int, int, float
        Fine-tuning settings.
    gate, use_long, use_short, freeze_encoders : bool
        Fusion-head ablation toggles.
    val_size : float
        Fraction of the training *trials* (or windows, without trial ids) held out
        to select the fine-tuning epoch; 0 keeps the last epoch.
    device : str | torch.device | None
        Where ``fit`` trains and ``predict``, ``predict_proba`` and ``transform``
        compute; ``None`` picks CUDA, then MPS, then the CPU.
    random_state : int | numpy.random.RandomState | numpy.random.Generator | None
        Seed of a fit: an int is the seed itself (the same int gives the same model);
        a ``RandomState`` or ``Generator`` draws one (so successive fits differ);
        ``None`` draws one from fresh entropy.
    %(verbose)s
        It applies to ``fit``. At ``"info"``, ``fit`` logs a line as each stage
        starts, ten lines per pre-training run (mean loss, seconds per step, time
        left) and one per fine-tuning epoch (losses, validation balanced accuracy,
        time left); on a terminal, progress bars too.

    Attributes
    ----------
    classes_ : ndarray
        Class labels seen in ``fit``.
    model_ : PhysioSyncNet
        The fine-tuned network (on *device*, in eval mode).
    pretrain_models_ : dict
        ``{"long": PretrainModel, "short": PretrainModel}`` when pre-training ran.
    history_ : dict
        ``{"pretrain_long": [...], "pretrain_short": [...], "finetune": [...]}``.

    See Also
    --------
    physiosync.preprocessing.windows.WindowSet.to_sklearn : the windows, labels and
        ids that ``fit`` takes, from prepared data.

    Notes
    -----
    The defaults are the authors' model (multi-view embedding, 640-token long encoders
    at 5 s and 128 Hz, a 1024-2048-4096 projector); the README gives the cost of a fit
    on a 2-core CPU, and a small configuration (``embedding="spectral"``,
    ``embed_dim=32``, ``depth=1``, ...) that costs a fraction of it.

    Examples
    --------
    >>> from sklearn.model_selection import GroupShuffleSplit
    >>> from physiosync import PhysioSyncClassifier
    >>> X, y, ids = windows.to_sklearn(5.0, target="valence")  # doctest: +SKIP
    >>> train, test = next(GroupShuffleSplit(test_size=0.25).split(
    ...     X, y, groups=ids["trial"]))  # held-out videos  # doctest: +SKIP
    >>> clf = PhysioSyncClassifier(n_eeg_channels=32, verbose="info")
    >>> clf.fit(X[train], y[train], **ids.iloc[train])  # doctest: +SKIP
    >>> clf.score(X[test], y[test])  # doctest: +SKIP
    """

    def __init__(self, n_eeg_channels=None, n_sub=5, pretrain="auto", pretrain_steps=200,
                 batch_slots=8, group_size=2, embed_dim=None, depth=3, n_heads=4, n_prompts=2,
                 embedding="multiview", projector_dims=(1024, 2048, 4096),
                 cmca_variant="cross-subject", pretrain_lr=7e-4, weight_decay=1e-3, epochs=6,
                 batch_size=256, lr=1e-3, gate=True, use_long=True, use_short=True,
                 freeze_encoders=False, val_size=0.2, device=None, random_state=None,
                 verbose=None):
        self.n_eeg_channels = n_eeg_channels
        self.n_sub = n_sub
        self.pretrain = pretrain
        self.pretrain_steps = pretrain_steps
        self.batch_slots = batch_slots
        self.group_size = group_size
        self.embed_dim = embed_dim
        self.depth = depth
        self.n_heads = n_heads
        self.n_prompts = n_prompts
        self.embedding = embedding
        self.projector_dims = projector_dims
        self.cmca_variant = cmca_variant
        self.pretrain_lr = pretrain_lr
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.gate = gate
        self.use_long = use_long
        self.use_short = use_short
        self.freeze_encoders = freeze_encoders
        self.val_size = val_size
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    _parameter_constraints: dict = {
        "n_eeg_channels": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "pretrain": [StrOptions({"auto"}), "boolean"],
        "pretrain_steps": [Interval(numbers.Integral, 1, None, closed="left")],
        **_rules(params.DataConfig, n_sub="n_sub"),
        **_rules(params.PretrainConfig, batch_slots="batch_slots", group_size="group_size",
                 embed_dim="embed_dim", depth="depth", n_heads="n_heads",
                 n_prompts="n_prompts", embedding="embedding",
                 projector_dims="projector_dims", cmca_variant="cmca_variant",
                 pretrain_lr="lr", weight_decay="weight_decay"),
        **_rules(params.FinetuneConfig, epochs="epochs", batch_size="batch_size", lr="lr"),
        "gate": ["boolean"],
        "use_long": ["boolean"],
        "use_short": ["boolean"],
        "freeze_encoders": ["boolean"],
        "val_size": [Interval(numbers.Real, 0, 1, closed="left")],
        "device": [str, torch.device, None],
        "random_state": ["random_state", np.random.Generator],
        "verbose": ["boolean", str, Interval(numbers.Integral, 0, None, closed="left"), None],
    }
    _parameter_constraints["pretrain_steps"] = [
        Interval(numbers.Integral, 1, params.PretrainConfig._parameter_constraints["steps"].high,
                 closed="both")]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.three_d_array = True
        tags.non_deterministic = False
        if tags.transformer_tags is not None:
            tags.transformer_tags.preserves_dtype = ["float32"]
        return tags

    # ------------------------------------------------------------------ input
    def _split_input(self, X, y=None, *, fitting: bool):
        """Turn X into ``{modality: float32 array (n, C, T)}``, checking shapes.

        Array input goes through scikit-learn's ``validate_data`` (standard messages for
        sparse, complex, empty or mis-shaped input, and ``n_features_in_``). Returns
        ``(arrays, y)``.
        """
        from scipy import sparse
        from sklearn.utils.validation import column_or_1d, validate_data

        if not fitting:
            check_is_fitted(self)
        if isinstance(X, dict) and not sparse.issparse(X):
            if not X:
                raise InputShapeError("X is an empty dict; expected {modality: windows}.")
            arrays = {str(m): np.asarray(v, dtype=np.float32) for m, v in X.items()}
            for m, v in arrays.items():
                if v.ndim != 3:
                    raise InputShapeError(f"X[{m!r}] has shape {v.shape}; expected (n_windows, "
                                          "n_channels, n_times).")
                if len(v) == 0:
                    raise ValueError(f"Found array with 0 sample(s) in X[{m!r}]; at least one "
                                     "window is required.")
            if fitting:
                if y is None:
                    raise ValueError(f"{type(self).__name__} requires y to be passed, but the "
                                     "target y is None.")
                y = column_or_1d(y, warn=True)
        elif fitting:
            X, y = validate_data(self, X, y, allow_nd=True, dtype=np.float32, reset=True)
        else:
            try:
                X = validate_data(self, X, allow_nd=True, dtype=np.float32, reset=False)
            except ValueError as err:
                if not str(err).startswith("X has"):
                    raise
                raise InputShapeError(f"{str(err).rstrip('.')}; expected "
                                      f"{self._expected_shapes()}.") from None
        if not isinstance(X, dict):
            X = X[:, None, :] if X.ndim == 2 else X
            if X.ndim != 3:
                raise InputShapeError(f"X has shape {X.shape}; expected (n_windows, n_channels, "
                                      "n_times), (n_windows, n_times) or a dict of modalities.")
            n_eeg = X.shape[1] if self.n_eeg_channels is None else int(self.n_eeg_channels)
            if not 1 <= n_eeg <= X.shape[1]:
                raise InputShapeError(
                    f"X has shape {X.shape}: {X.shape[1]} channels, but n_eeg_channels="
                    f"{self.n_eeg_channels}; expected (n_windows, n_channels >= "
                    f"{self.n_eeg_channels}, n_times).")
            arrays = {"eeg": X[:, :n_eeg]}
            if n_eeg < X.shape[1]:
                arrays["pps"] = X[:, n_eeg:]
        n = {len(v) for v in arrays.values()}
        if len(n) != 1:
            raise InputShapeError(f"modalities have different numbers of windows: {n}.")
        for m, v in arrays.items():
            if not np.isfinite(v).all():
                raise ValueError(f"Input X contains NaN or infinity (modality {m!r}).")
        if fitting:
            self.input_shapes_ = {m: tuple(v.shape[1:]) for m, v in arrays.items()}
        else:
            want = self.input_shapes_
            got = {m: tuple(v.shape[1:]) for m, v in arrays.items()}
            if got != want:
                raise InputShapeError(
                    f"X does not match the windows seen in fit: expected "
                    f"{self._expected_shapes()}; got "
                    + ", ".join(f"{m} (n_windows, {s[0]}, {s[1]})" for m, s in got.items()) + ".")
        return arrays, y

    def _expected_shapes(self) -> str:
        return ", ".join(f"{m} (n_windows, {s[0]}, {s[1]})" for m, s in self.input_shapes_.items())

    # ------------------------------------------------------------------- fit
    # scikit-learn's checks of _parameter_constraints run first, before verbose sets
    # the log level (a bad verbose is refused as any other parameter is)
    @_fit_context(prefer_skip_nested_validation=True)
    @verbose
    def fit(self, X, y, subject=None, trial=None, window=None, session=None):
        """Pre-train (when subject and trial ids are given) and fine-tune.

        Parameters
        ----------
        X : ndarray (n_windows, n_channels, n_times) | ndarray (n_windows, n_times) | dict
            Long windows; see *n_eeg_channels*.
        y : array-like, shape (n_windows,)
            Class of each window.
        subject, trial : array-like, shape (n_windows,) | None
            Subject and trial (stimulus) of each window. Windows of different subjects
            with the same trial and window index are the same stimulus slot, which
            pre-training contrasts.
        window : array-like of int, shape (n_windows,) | None
            Position of each window within its trial (default: order of appearance).
        session : array-like, shape (n_windows,) | None
            Session of each window (``ids["session"]`` of
            :meth:`~physiosync.preprocessing.windows.WindowSet.to_sklearn`). Trials are
            numbered across a subject's sessions, so it adds nothing to the slots; it is
            checked to be one per ``(subject, trial)``, which refuses trial ids that
            restart in every session (they would merge two sessions' windows).

        Returns
        -------
        self : PhysioSyncClassifier
        """
        _check_sessions(subject, trial, session)
        arrays, y = self._split_input(X, y, fitting=True)
        n = len(next(iter(arrays.values())))
        if len(y) != n:
            raise ValueError(f"y has {len(y)} entries for {n} windows.")
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y holds one class only ({self.classes_[0]!r}); PhysioSync needs "
                             "at least two classes.")
        seed = self._seed()
        data, cells = SlotData.from_arrays(arrays, subject, trial, window)
        eeg_t = arrays["eeg"].shape[-1]
        if self.use_short and eeg_t % self.n_sub:
            raise InputShapeError(f"windows of {eeg_t} samples do not split into n_sub="
                                  f"{self.n_sub} equal short windows; use another n_sub.")
        long_cfg, short_cfg = self._encoder_configs(seed)
        do_pretrain = self.pretrain
        if do_pretrain == "auto":
            do_pretrain = subject is not None and len(data.subjects) >= 2 * self.group_size
        if do_pretrain and subject is None:
            raise PhysioSyncError("pretrain=True needs subject and trial ids in fit().")
        if do_pretrain and len(arrays) > 2:
            raise PhysioSyncError("pre-training takes EEG plus at most one peripheral signal.")
        train_cells, val_cells = self._validation_split(cells, y_enc, subject is not None, seed)
        lookup = {tuple(c): i for i, c in enumerate(cells)}
        label_of = lambda cs: y_enc[[lookup[tuple(c)] for c in cs]]  # noqa: E731
        ft_cfg = FinetuneConfig(use_long=self.use_long, use_short=self.use_short, gate=self.gate,
                                freeze_encoders=self.freeze_encoders, epochs=self.epochs,
                                batch_size=self.batch_size, lr=self.lr, seed=seed)

        def announce(name):
            logger.info("pre-training the %s encoders: %d steps on %s of %d subjects",
                        name, self.pretrain_steps, "the windows" if name == "long" else
                        f"the {self.n_sub} sub-windows of each window", len(data.subjects))

        pretrain = (dict(on_start=announce, log_every=max(1, int(self.pretrain_steps) // 10))
                    if do_pretrain else None)
        fit = fit_physiosync(
            data, train_cells, val_cells, train_labels=label_of(train_cells),
            val_labels=label_of(val_cells), n_sub=self.n_sub if self.use_short else 1,
            n_classes=len(self.classes_), finetune_config=ft_cfg, long_config=long_cfg,
            short_config=short_cfg, pretrain=pretrain, device=self.device, log_every=1)
        self.history_ = {f"pretrain_{k}": h for k, h in fit.pretrain_history.items()}
        self.history_["finetune"] = fit.history
        self.pretrain_models_ = {k: v.cpu() for k, v in fit.pretrained.items()}
        self.model_ = fit.model.eval()
        return self

    def _seed(self) -> int:
        """The seed of a fit, from *random_state* (an int is the seed itself)."""
        state = self.random_state
        if state is None:
            return int(np.random.default_rng().integers(2**31))
        if isinstance(state, numbers.Integral):
            return int(state)
        if isinstance(state, np.random.Generator):
            return int(state.integers(2**31))
        return int(check_random_state(state).randint(2**31))

    def _encoder_configs(self, seed: int):
        """Long and short encoder configs; token sizes rounded to a multiple of n_heads."""
        n_sub = self.n_sub if self.use_short else 1
        # Without embed_dim, the encoders take the window length (build_encoders, with
        # the same rounding): a resolved length is not checked as if it had been typed.
        dims = (None, None) if self.embed_dim is None else (
            default_embed_dim(self.embed_dim, self.n_heads),
            default_embed_dim(self.embed_dim // n_sub, self.n_heads))
        common = dict(depth=self.depth, n_heads=self.n_heads, n_prompts=self.n_prompts,
                      embedding=self.embedding, projector_dims=tuple(self.projector_dims),
                      cmca_variant=self.cmca_variant, lr=self.pretrain_lr,
                      weight_decay=self.weight_decay, batch_slots=self.batch_slots,
                      group_size=self.group_size, steps=self.pretrain_steps, seed=seed)
        return tuple(PretrainConfig(embed_dim=dim, **common) for dim in dims)

    def _validation_split(self, cells, y, grouped: bool, seed: int):
        """Hold out whole training trials (or windows without ids) for epoch selection."""
        if not self.val_size:
            return cells, cells[:0]
        groups = cells[:, 0] * (cells[:, 1].max() + 1) + cells[:, 1] if grouped else None
        n_groups = len(np.unique(groups)) if grouped else len(cells)
        if n_groups < 5:
            logger.info("too few training trials for a validation split; keeping the last epoch")
            return cells, cells[:0]
        # Never fine-tune without a class: no validation rather than a split that loses one.
        return split_validation(cells, groups, y, self.val_size,
                                derive_seed(seed, "val") % 2**31, min_groups=5, n_tries=10,
                                fallback="none")

    # --------------------------------------------------------------- predict
    def _batches(self, X, size: int = 256):
        """*X* in batches of *size* windows, ``{modality: tensor}`` on the estimator's device.

        The fitted network moves there first if *device* was changed after ``fit``.
        """
        arrays, _ = self._split_input(X, fitting=False)
        dev = resolve_device(self.device)
        if next(self.model_.parameters()).device != dev:
            self.model_.to(dev)
        self.model_.eval()
        n = len(next(iter(arrays.values())))
        for i in range(0, n, size):
            yield {m: torch.from_numpy(np.ascontiguousarray(v[i:i + size])).to(dev)
                   for m, v in arrays.items()}

    def predict_proba(self, X):
        """Class probabilities, shape ``(n_windows, n_classes)``, columns in ``classes_`` order.

        They are computed on *device*, 256 windows at a time.
        """
        with torch.no_grad():
            out = [torch.softmax(self.model_(x).float(), dim=1).cpu().numpy()
                   for x in self._batches(X)]
        return np.concatenate(out)[:, :len(self.classes_)]

    def predict(self, X):
        """Predicted class of each window."""
        proba = self.predict_proba(X)  # checks fitted-ness before classes_ is read
        return self.classes_[np.argmax(proba, axis=1)]

    def score(self, X, y, sample_weight=None):
        """Accuracy over the windows of *X* (scikit-learn's classifier score).

        Parameters
        ----------
        X : ndarray | dict
            Long windows, as in :meth:`fit`.
        y : array-like, shape (n_windows,)
            True class of each window.
        sample_weight : array-like, shape (n_windows,) | None
            Weight of each window.

        Returns
        -------
        score : float
            The share of windows predicted right.

        Notes
        -----
        This is *window* accuracy, pooled over whatever subjects *X* holds. The reports
        of ``physiosync cv`` lead with another number: balanced accuracy per held-out
        subject, then its mean over subjects, with its chance level, so that neither a
        majority class nor the subjects with the most windows drive it. For that
        number, compute :func:`sklearn.metrics.balanced_accuracy_score` per subject on
        the predictions of :meth:`predict`.
        """
        return super().score(X, y, sample_weight=sample_weight)

    def transform(self, X):
        """Encoder features of each window (no gating), ``(n_windows, n_features)``.

        Usable as features for any other pipeline; computed on *device*.
        """
        with torch.no_grad():
            return np.concatenate([self.model_.embed(x).cpu().numpy()
                                   for x in self._batches(X)])

    def export_encoders(self, which: str = "finetuned") -> dict:
        """The encoders as independent :class:`torch.nn.Module` copies.

        Parameters
        ----------
        which : {"finetuned", "pretrained"}
            The fine-tuned encoders, or those right after pre-training.

        Returns
        -------
        encoders : dict
            ``{"long": {modality: module}, "short": {modality: module}}``.
        """
        check_is_fitted(self)
        if which == "finetuned":
            return copy.deepcopy(self.model_.encoders())
        if which == "pretrained":
            if not self.pretrain_models_:
                raise PhysioSyncError("no pre-training ran in fit() (no subject/trial ids).")
            return {k: copy.deepcopy(dict(v.encoders.items()))
                    for k, v in self.pretrain_models_.items()}
        raise ValueError(f"which must be 'finetuned' or 'pretrained', got {which!r}.")
