"""Prepare subjects for learning: baseline, normalise, crop, and cache on disk.

:func:`prepare` turns dataset recordings into :class:`PreparedSubject` objects: one
float32 array ``(n_trials, n_channels, n_samples)`` per modality at its native rate,
with every modality cropped to the same duration so that windows line up in time.

Prepared arrays are cached per subject. The cache key hashes the identity of the
source files (resolved path, size, modification time), the :class:`PrepareParams`
and the package version, so a cached entry is never reused for other inputs. Each
entry is written to a temporary folder and renamed into place only when complete: an
interrupted run leaves no entry that a later run could pick up.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from ._logging import logger, progress
from .exceptions import CacheError, PhysioSyncError
from .datasets.base import RatedTrials
from .preprocessing import THRESHOLDS, PrepareParams, make_labels, normalize, remove_baseline

__all__ = ["PreparedSubject", "prepare", "prepare_recording", "default_cache_dir"]

#: Bumped whenever the layout or meaning of cache entries changes.
CACHE_FORMAT = 1


@dataclass
class PreparedSubject(RatedTrials):
    """One subject's prepared stimulus data.

    Attributes
    ----------
    subject : int
        Subject id.
    dataset : str
        ``"DEAP"`` or ``"DREAMER"``.
    data : dict of str -> ndarray
        Per modality, a read-only float32 array ``(n_trials, n_channels, n_samples)``
        (a memory map when it comes from the cache).
    sfreq : dict of str -> float
        Native sampling rate of each modality.
    ch_names : dict of str -> list of str
        Channel names of each modality.
    ratings : DataFrame
        One row per trial, indexed by the 0-based trial (video) index.
    seconds : float
        Stimulus duration kept per trial (identical for every modality).
    """

    subject: int
    dataset: str
    data: dict
    sfreq: dict
    ch_names: dict
    ratings: pd.DataFrame
    seconds: float

    @property
    def modalities(self) -> tuple[str, ...]:
        """Names of the prepared modalities."""
        return tuple(self.data)

    def labels(self, target: str, threshold: float | None = None) -> np.ndarray:
        """Per-trial labels, see :func:`physiosync.preprocessing.make_labels`.

        *threshold* defaults to the dataset's (DEAP 5, DREAMER 3).
        """
        if threshold is None:
            threshold = THRESHOLDS[self.dataset]
        return make_labels(self.ratings, target, threshold)

    def __repr__(self) -> str:
        mods = ", ".join(f"{m} {a.shape[1]}ch@{self.sfreq[m]:g}Hz" for m, a in self.data.items())
        return (f"<PreparedSubject {self.dataset} {self.subject}: {self.n_trials} trials x "
                f"{self.seconds:g} s | {mods}>")


def _common_grid(rates) -> float:
    """Smallest time step on which every rate has a whole number of samples."""
    if all(float(r).is_integer() for r in rates):
        return 1.0 / math.gcd(*(int(r) for r in rates))
    return 1.0 / min(rates)


def prepare_recording(rec, params: PrepareParams) -> PreparedSubject:
    """Baseline-correct, normalise and crop one :class:`~physiosync.datasets.Recording`.

    Parameters
    ----------
    rec : Recording
        The subject's recording.
    params : PrepareParams
        What to do.

    Returns
    -------
    prepared : PreparedSubject
        In-memory arrays (not cached; see :func:`prepare`).
    """
    for m in params.modalities:
        rec.info(m)  # clear error for an unknown modality
    rates = {m: rec.sfreq(m) for m in params.modalities}
    grid = _common_grid(rates.values())
    shortest = min(float(rec.stimulus_lengths(m).min()) / rates[m] for m in params.modalities)
    seconds = params.stimulus_seconds if params.stimulus_seconds is not None else shortest
    if seconds > shortest + 1e-9:
        raise PhysioSyncError(
            f"{rec.source.name}: stimulus_seconds={seconds:g} but subject {rec.subject}'s "
            f"shortest stimulus lasts {shortest:g} s.")
    seconds = math.floor(seconds / grid + 1e-9) * grid
    data = {}
    for m in params.modalities:
        sf = rates[m]
        n = int(round(seconds * sf))
        sl = slice(0, n) if params.stimulus_align == "start" else None
        if len(set(rec.stimulus_lengths(m))) == 1:
            full = rec.stimulus_array(m)
            stim = full[..., :n] if sl else full[..., full.shape[-1] - n:]
        else:
            segs = [rec.stimulus(m, t) for t in rec.trials]
            stim = np.stack([s[:, :n] if sl else s[:, s.shape[-1] - n:] for s in segs])
        bases = [rec.baseline(m, t) for t in rec.trials]
        n_base = min(b.shape[-1] for b in bases)
        base = rec.baseline_array(m) if len({b.shape[-1] for b in bases}) == 1 else np.stack(
            [b[:, b.shape[-1] - n_base:] for b in bases])
        out = remove_baseline(stim, base, sf, params.baseline,
                              out=np.empty(stim.shape, dtype=params.dtype))
        normalize(out, params.norm_for(m))
        out.flags.writeable = False
        data[m] = out
    return PreparedSubject(rec.subject, rec.dataset, data, rates,
                           {m: rec.ch_names(m) for m in params.modalities},
                           rec.ratings.copy(), float(seconds))


def default_cache_dir() -> Path:
    """``$PHYSIOSYNC_CACHE``, else ``$XDG_CACHE_HOME/physiosync``, else ``~/.cache/physiosync``."""
    env = os.environ.get("PHYSIOSYNC_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "physiosync"


def _file_identity(path: Path) -> list:
    st = path.stat()
    return [str(path.resolve()), st.st_size, st.st_mtime_ns]


def cache_key(dataset, subject: int, params: PrepareParams) -> tuple[str, dict]:
    """The cache key of one subject and the material it hashes."""
    material = {
        "cache_format": CACHE_FORMAT,
        "version": __version__,
        "dataset": dataset.name,
        "format": getattr(dataset, "format", None),
        "subject": int(subject),
        "sources": [_file_identity(Path(p)) for p in dataset.source_files([subject])],
        "params": params.to_dict(),
    }
    blob = json.dumps(material, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest(), material


def _entry_name(dataset_name: str, subject: int, key: str) -> str:
    return f"{dataset_name}-s{subject:02d}-{key[:24]}"


def _write_entry(cache_dir: Path, name: str, key: str, material: dict,
                 prep: PreparedSubject) -> Path:
    """Write one entry atomically: a temporary folder renamed into place when complete."""
    final = cache_dir / name
    tmp = cache_dir / f".tmp-{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        tmp.mkdir(parents=True)
        for m, arr in prep.data.items():
            np.save(tmp / f"{m}.npy", arr, allow_pickle=False)
        ratings = prep.ratings
        meta = {
            "key": key, "material": material, "subject": prep.subject, "dataset": prep.dataset,
            "sfreq": prep.sfreq, "ch_names": prep.ch_names, "seconds": prep.seconds,
            "ratings": {"index": ratings.index.tolist(),
                        "columns": {c: ratings[c].tolist() for c in ratings.columns}},
        }
        # meta.json is written last: an entry without it is never valid.
        with open(tmp / "meta.json", "w") as f:
            json.dump(meta, f)
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.exists():
                raise
            # Another process finished the same entry first; keep theirs.
    except OSError as err:
        raise CacheError(f"Could not write cache entry {final}: {err}") from err
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _read_entry(path: Path, key: str) -> PreparedSubject | None:
    """Load an entry, or return None if it is absent, from other inputs, or damaged."""
    meta_path = path / "meta.json"
    if not path.exists():
        return None
    if not meta_path.is_file():
        # Final entries appear only by rename, complete; this one was damaged later.
        logger.warning("Ignoring damaged cache entry %s (no meta.json); recomputing.", path)
        shutil.rmtree(path, ignore_errors=True)
        return None
    try:
        with open(meta_path) as f:
            meta = json.load(f)
        if meta.get("key") != key:
            return None
        data = {m: np.load(path / f"{m}.npy", mmap_mode="r", allow_pickle=False)
                for m in meta["sfreq"]}
        r = meta["ratings"]
        ratings = pd.DataFrame(r["columns"], index=pd.Index(r["index"], name="trial"))
    except (OSError, ValueError, KeyError, TypeError) as err:
        logger.warning("Ignoring damaged cache entry %s (%s); recomputing.", path, err)
        shutil.rmtree(path, ignore_errors=True)
        return None
    return PreparedSubject(meta["subject"], meta["dataset"], data, meta["sfreq"],
                           meta["ch_names"], ratings, meta["seconds"])


def _clean_stale_tmp(cache_dir: Path, max_age_s: float = 24 * 3600) -> None:
    now = time.time()
    for p in cache_dir.glob(".tmp-*"):
        try:
            if now - p.stat().st_mtime > max_age_s:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def prepare(dataset, subjects=None, *, params: PrepareParams | None = None,
            cache_dir=None) -> dict[int, PreparedSubject]:
    """Prepare (or load from the cache) the given subjects of a dataset.

    Parameters
    ----------
    dataset : DEAP | DREAMER
        A dataset reader from :mod:`physiosync.datasets`.
    subjects : list of int | None
        Subjects to prepare; all by default.
    params : PrepareParams | None
        Preprocessing parameters; defaults to ``PrepareParams()`` (EEG and GSR) for
        DEAP and ``PrepareParams(modalities=("eeg", "ecg"))`` for DREAMER.
    cache_dir : str | Path | None | False
        Cache folder; ``None`` uses :func:`default_cache_dir`, ``False`` disables the
        cache (arrays stay in memory).

    Returns
    -------
    prepared : dict of int -> PreparedSubject
        In subject order. Cached arrays are read-only memory maps, so memory stays
        bounded by roughly one subject however large the dataset.
    """
    if params is None:
        params = PrepareParams(modalities=("eeg", "ecg") if dataset.name == "DREAMER"
                               else ("eeg", "gsr"))
    subjects = list(dataset.subjects if subjects is None else subjects)
    for s in subjects:
        dataset.subject_file(s)  # unknown or missing subjects fail before any work
    use_cache = cache_dir is not False
    if use_cache:
        cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        try:
            cache_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CacheError(f"Cannot create cache folder {cache_dir}: {err}") from err
        _clean_stale_tmp(cache_dir)
    out = {}
    for s in progress(subjects, desc=f"prepare {dataset.name}"):
        if not use_cache:
            out[s] = prepare_recording(dataset.load_subject(s), params)
            continue
        key, material = cache_key(dataset, s, params)
        entry = cache_dir / _entry_name(dataset.name, s, key)
        prep = _read_entry(entry, key)
        if prep is None:
            prep = prepare_recording(dataset.load_subject(s), params)
            _write_entry(cache_dir, entry.name, key, material, prep)
            prep = _read_entry(entry, key) or prep
            logger.info("prepared %s subject %d -> %s", dataset.name, s, entry)
        else:
            logger.info("cache hit for %s subject %d", dataset.name, s)
        out[s] = prep
    return out
