"""The fold store: fold keys, resume, and the atomic, versioned, checksummed fold files.

:func:`~physiosync.evaluation.runner.cross_validate` keeps each finished fold in
``out_dir/fold_XX.json`` (:func:`fold_path`), a
:class:`~physiosync.evaluation.schema.FoldRecord` of schema version
:data:`~physiosync.evaluation.schema.FOLD_VERSION`. :func:`fold_key` says what a file
must hold to be reused (the settings, the fold's hyper-parameters and units),
:func:`reusable_fold` whether a file on disk may be reused (key, data key, checksum,
schema migration, metrics that follow from its predictions), :func:`pending_folds`
which folds a run would compute, and :func:`write_fold` writes a record with its
:func:`fold_checksum` atomically.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from .._utils import atomic_write, fingerprint
from .fold_loop import FoldRunner, fold_metrics
from .protocols import Fold
from .schema import FOLD_VERSION, migrate_fold

__all__ = ["EXECUTION_ARGUMENTS", "fold_path", "fold_key", "fold_checksum", "reusable_fold",
           "pending_folds", "write_fold"]


def _json_default(obj):
    if hasattr(obj, "item"):  # numpy scalars
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


#: Arguments of a fold function that say how a fold runs, not what it computes: they
#: are left out of the fold keys (results agree to rounding whatever their value).
EXECUTION_ARGUMENTS = ("device", "pretrain_cache", "compile")


def fold_path(out_dir, fold: Fold) -> Path:
    """Where the file of *fold* lies in *out_dir*: ``fold_XX.json``."""
    return Path(out_dir) / f"fold_{fold.fold:02d}.json"


def fold_key(fold: Fold, settings: dict | None, run_kwargs: dict) -> str:
    """The key a fold file must hold to be reused: the settings, the fold's hyper-parameters
    (all of *run_kwargs* but :data:`EXECUTION_ARGUMENTS`) and its manifest."""
    hp = {k: (v.hyperparameters() if isinstance(v, FoldRunner)
              else asdict(v) if hasattr(v, "__dataclass_fields__") else v)
          for k, v in run_kwargs.items() if k not in EXECUTION_ARGUMENTS}
    return fingerprint(json.dumps({"settings": settings or {}, "hp": hp}, sort_keys=True,
                                  default=str), fold.manifest())


def fold_checksum(record: dict) -> str:
    """SHA-256 of a fold record but its ``checksum`` key (canonical JSON: sorted keys).

    *record* must be as read back from its file (JSON types only).
    """
    body = {k: v for k, v in record.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _same(a, b) -> bool:
    """Whether two JSON values agree, numbers to rounding (NaN equals NaN)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return a is b or a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return bool(np.isclose(a, b, rtol=1e-6, atol=1e-9, equal_nan=True))
    return a == b


def _metrics_problem(done: dict) -> str | None:
    """Why a fold record's metrics do not follow from its predictions, or None."""
    if done.get("train_labels") is None:  # not recorded: its metrics are redone from the data
        return None
    try:
        pred = pd.DataFrame(done["predictions"])
        n_classes = sum(1 for c in pred.columns if str(c)[:1] == "p" and str(c)[1:].isdigit())
        expected = fold_metrics(pred, n_classes, done["train_labels"])
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return "holds predictions or training labels of the wrong shape"
    if not _same(json.loads(json.dumps(expected, default=_json_default)), done.get("metrics")):
        return "holds metrics that do not follow from its predictions"
    return None


def reusable_fold(path: Path, key: str, data_key: str | None) -> tuple:
    """``(record, None)`` if the fold file at *path* may be reused, ``(None, None)`` if
    there is none, else ``(None, why)``: why it must be recomputed.

    A fold file is reused only if it is a JSON object holding *key* (settings,
    hyper-parameters and the fold's units), the content key *data_key* of the data
    (when given), a checksum that matches its body (files of older versions have
    none), a schema version this version reads (:func:`~.schema.migrate_fold`), and
    metrics that follow from its predictions. The record returned is migrated to
    :data:`~.schema.FOLD_VERSION`; a file of a later version raises
    :class:`~physiosync.exceptions.DataFormatError`.
    """
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as err:
        return None, f"cannot be read ({getattr(err, 'strerror', None) or err})"
    try:
        done = json.loads(text)
    except ValueError:
        return None, "is not valid JSON (damaged or cut short)"
    if not isinstance(done, dict):
        return None, f"holds a JSON {type(done).__name__}, not a fold record"
    if "checksum" in done and done["checksum"] != fold_checksum(done):
        return None, "does not match its checksum (edited or damaged)"
    # a newer physiosync's file is refused (DataFormatError), never overwritten
    done = migrate_fold(done, source=f"fold file {path}")
    if done.get("key") != key:
        return None, "was computed with other settings or on other units"
    if data_key is not None and done.get("data_key") != data_key:
        return None, ("was computed on other data (its data content key differs)"
                      if "data_key" in done else "records no data content key")
    problem = _metrics_problem(done)
    if problem:
        return None, problem
    return done, None


def pending_folds(folds: list, out_dir, *, settings: dict | None = None, resume: bool = True,
                  data_key: str | None = None, **run_kwargs) -> list:
    """The folds :func:`~.runner.cross_validate` would compute rather than reuse.

    Parameters are those of :func:`~.runner.cross_validate`: a fold is pending unless
    *resume* and its fold file may be reused (it holds the key of these settings and
    *data_key*, and passes its checks).
    """
    pending = []
    for fold in folds:
        path = fold_path(out_dir, fold)
        done = resume and reusable_fold(path, fold_key(fold, settings, run_kwargs),
                                        data_key)[0] is not None
        if not done:
            pending.append(fold)
    return pending


def write_fold(path: Path, record: dict) -> dict:
    """Write a fold *record* to *path* atomically, stamped with its version and checksum.

    Parameters
    ----------
    path : Path
        The fold file (:func:`fold_path`).
    record : dict
        The fold's ``key``, ``data_key`` (optional), manifest, ``metrics``,
        ``train_labels``, ``predictions`` and details (see
        :func:`~physiosync.evaluation.runner.cross_validate`).

    Returns
    -------
    record : dict
        A new dict: ``schema_version`` (:data:`~.schema.FOLD_VERSION`) first, then
        *record*, then ``checksum`` (:func:`fold_checksum` of the record as it reads
        back: JSON types only).
    """
    record = {"schema_version": FOLD_VERSION, **record}
    record["checksum"] = fold_checksum(json.loads(json.dumps(record,
                                                             default=_json_default)))
    atomic_write(path, json.dumps(record, default=_json_default))
    return record
