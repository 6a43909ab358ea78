"""A scikit-learn classifier that pre-trains PhysioSync and fine-tunes it.

:class:`PhysioSyncClassifier` is what a BCI experiment imports: ``fit`` takes long
windows (e.g. 5 s) plus, optionally, the subject, trial and window position of each
one; it pre-trains the long and short encoders with inter-subject synchrony and
CM-CA when those ids are given, then fine-tunes the hierarchical fusion head. It is
``clone``-able and works in scikit-learn pipelines and model selection.
"""

from __future__ import annotations

import copy

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, TransformerMixin
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._logging import logger, verbose
from .exceptions import InputShapeError, PhysioSyncError
from .evaluation.protocols import split_validation
from .params import FinetuneConfig
from .models.physiosync import default_embed_dim
from .evaluation.fit import fit_physiosync
from .params import PretrainConfig
from .training.sampling import SlotData
from ._utils import derive_seed
from ._utils.docs import fill_doc

__all__ = ["PhysioSyncClassifier", "InputShapeError"]



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
    n_sub : int
        Short windows per long window (5 for 5 s / 1 s).
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
    device : str | None
        ``None`` picks CUDA, then MPS, then the CPU.
    random_state : int | None
        Seed; ``None`` draws one at ``fit``.
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
        The fine-tuned network (on the CPU, in eval mode).
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
    @verbose
    def fit(self, X, y, subject=None, trial=None, window=None):
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

        Returns
        -------
        self : PhysioSyncClassifier
        """
        arrays, y = self._split_input(X, y, fitting=True)
        n = len(next(iter(arrays.values())))
        if len(y) != n:
            raise ValueError(f"y has {len(y)} entries for {n} windows.")
        check_classification_targets(y)
        self.classes_, y_enc = np.unique(y, return_inverse=True)
        if len(self.classes_) < 2:
            raise ValueError(f"y holds one class only ({self.classes_[0]!r}); PhysioSync needs "
                             "at least two classes.")
        seed = (int(self.random_state) if self.random_state is not None
                else int(np.random.default_rng().integers(2**31)))
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
        self.model_ = fit.model.cpu().eval()
        return self

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
    def _tensor_input(self, X):
        import torch

        arrays, _ = self._split_input(X, fitting=False)
        return {m: torch.from_numpy(np.ascontiguousarray(v)) for m, v in arrays.items()}

    def predict_proba(self, X):
        """Class probabilities, shape ``(n_windows, n_classes)``, columns in ``classes_`` order."""
        import torch

        x = self._tensor_input(X)
        n = len(next(iter(x.values())))
        out = []
        self.model_.eval()
        with torch.no_grad():
            for i in range(0, n, 256):
                logits = self.model_({m: v[i:i + 256] for m, v in x.items()})
                out.append(torch.softmax(logits.float(), dim=1).numpy())
        return np.concatenate(out)[:, :len(self.classes_)]

    def predict(self, X):
        """Predicted class of each window."""
        proba = self.predict_proba(X)  # checks fitted-ness before classes_ is read
        return self.classes_[np.argmax(proba, axis=1)]

    def transform(self, X):
        """Encoder features of each window (no gating), ``(n_windows, n_features)``.

        Usable as features for any other pipeline.
        """
        import torch

        x = self._tensor_input(X)
        n = len(next(iter(x.values())))
        with torch.no_grad():
            return np.concatenate([
                self.model_.embed({m: v[i:i + 256] for m, v in x.items()}).numpy()
                for i in range(0, n, 256)])

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
