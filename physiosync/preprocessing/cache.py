"""Prepare subjects for learning: baseline, normalise, crop, and cache on disk.

:func:`prepare` turns dataset recordings into :class:`PreparedSubject` objects: one
float32 array ``(n_trials, n_channels, n_samples)`` per modality at its native rate
(original DEAP ``.bdf`` recordings: 128 Hz, as the ``.dat`` release, unless
``PrepareParams.bdf_preprocessing="none"``), with every modality cropped to the same
duration so that windows line up in time.

Prepared arrays are cached per subject. The cache key hashes the identity of the
source files (resolved path, size, modification time and a hash of their content:
whole for files up to 8 MiB, else the first and last 64 KiB and 16 strided blocks),
the :class:`PrepareParams` and the package version, so a cached entry is never
reused for other inputs. Each entry is written to a temporary folder and renamed
into place only when complete: an interrupted run leaves no entry that a later run
could pick up.

Each entry records the shape, dtype and SHA-256 of its arrays, and ``meta.json``
(which holds the ratings, hence the labels) records a SHA-256 of its own content.
Opening an entry checks ``meta.json``'s checksum and the shape, dtype and finiteness
of every array; ``prepare(..., verify=True)`` also checks the arrays' checksums. A
damaged entry (``meta.json`` edited, unreadable or not a JSON object included) is
deleted and recomputed, with a warning that names it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .._version import __version__
from .._logging import logger, progress, verbose
from .._utils import atomic_open, atomic_write, fsync_dir
from .._utils.io import TMP_PREFIX, is_stale_temp, temp_name
from ..exceptions import CacheError, DataFormatError, PhysioSyncError
from ..dataset_specs import SINGLE_SESSION
from ..datasets.base import RatedTrials, session_column
from ..params import default_modalities
from .transforms import (RELEASE_BAND, RELEASE_SFREQ, THRESHOLDS, PrepareParams, make_labels, normalize,
                            release_preprocess, remove_baseline)

__all__ = ["PreparedSubject", "prepare", "prepare_recording", "default_cache_dir",
           "content_hash", "data_content_key"]

#: Bumped whenever the layout or meaning of cache entries changes.
CACHE_FORMAT = 3  # 3: meta.json records its own checksum


@dataclass
class PreparedSubject(RatedTrials):
    """One subject's prepared stimulus data.

    Attributes
    ----------
    subject : int
        Subject id.
    dataset : str
        The reader's name (``"DEAP"``, ``"DREAMER"``; see
        :func:`~physiosync.dataset_specs.dataset_spec`).
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
    warnings : tuple of str
        What the reader warned about while the subject was prepared (for example a
        BDF file cut short that lost trials); kept with a cache entry and said again
        whenever it is served.
    sessions : ndarray of str
        The session of each trial, in trial order (``Recording.sessions``); empty when built: ``"0"`` for every
        trial.
    """

    subject: int
    dataset: str
    data: dict
    sfreq: dict
    ch_names: dict
    ratings: pd.DataFrame
    seconds: float
    warnings: tuple = ()
    sessions: np.ndarray = ()

    def __post_init__(self):
        self.sessions = session_column(self.sessions, len(self.ratings),
                                       f"{self.dataset} subject {self.subject}")

    @property
    def modalities(self) -> tuple[str, ...]:
        """Names of the prepared modalities."""
        return tuple(self.data)

    def labels(self, target: str, threshold: float | None = None) -> np.ndarray:
        """Per-trial labels, see :func:`physiosync.preprocessing.transforms.make_labels`.

        *threshold* defaults to the dataset's (:data:`~physiosync.params.THRESHOLDS`:
        DEAP 5, DREAMER 3).
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
    if params.bdf_preprocessing == "release" and rec.source.suffix.lower() == ".bdf":
        rec = _release_recording(rec, params.modalities)
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
        bases = [rec.baseline(m, t) for t in rec.trials]
        n_base = min(b.shape[-1] for b in bases)
        base = rec.baseline_array(m) if len({b.shape[-1] for b in bases}) == 1 else np.stack(
            [b[:, b.shape[-1] - n_base:] for b in bases])
        # Values beyond the float32 range become inf here; they are reported below.
        with np.errstate(over="ignore", invalid="ignore"):
            if len(set(rec.stimulus_lengths(m))) == 1:
                full = rec.stimulus_array(m)
                stim = full[..., :n] if sl else full[..., full.shape[-1] - n:]
                out = np.empty(stim.shape, dtype=params.dtype)
                out[...] = stim
            else:
                # clips of unequal length (SEED): each is cropped straight into the
                # output, never stacked at its source precision (a GB per SEED subject)
                stim = [s[:, :n] if sl else s[:, s.shape[-1] - n:]
                        for s in (rec.stimulus(m, t) for t in rec.trials)]
                out = np.empty((len(stim),) + stim[0].shape, dtype=params.dtype)
                for i, s in enumerate(stim):
                    out[i] = s
            # remove_baseline casts to out's dtype first, then works on out alone: the
            # same bits whether it copies the stimulus itself or finds it copied
            remove_baseline(out, base, sf, params.baseline, out=out)
            normalize(out, params.norm_for(m), base)
        _check_finite_after_cast(out, stim, base, rec, m)
        out.flags.writeable = False
        data[m] = out
    return PreparedSubject(rec.subject, rec.dataset, data, rates,
                           {m: rec.ch_names(m) for m in params.modalities},
                           rec.ratings.copy(), float(seconds), sessions=rec.sessions.copy())


def _release_recording(rec, modalities):
    """*rec*'s *modalities* as DEAP's preprocessed release holds them (128 Hz, see
    :func:`~physiosync.preprocessing.transforms.release_preprocess`)."""
    from dataclasses import replace

    from ..datasets.base import Recording

    infos, baseline, stimulus = {}, {}, {}
    for m in modalities:
        sf = rec.sfreq(m)
        info = rec.info(m)
        low = min(info.lowpass or RELEASE_SFREQ / 2, RELEASE_SFREQ / 2)  # resampling's edge
        what = (f"BDF recording with the release's preprocessing: resampled to "
                f"{RELEASE_SFREQ:g} Hz")
        signal = ({"highpass": max(info.highpass, RELEASE_BAND[0]),
                   "lowpass": min(low, RELEASE_BAND[1]), "average_reference": True,
                   "processing": f"{what}, band-passed {RELEASE_BAND[0]:g}-"
                                 f"{RELEASE_BAND[1]:g} Hz, common average reference (EOG "
                                 "artefacts not removed)"} if m == "eeg"
                  else {"lowpass": low, "processing": what})
        infos[m] = replace(info, sfreq=RELEASE_SFREQ, **signal)
        baseline[m], stimulus[m] = [], []
        for t in rec.trials:
            # baseline and stimulus are contiguous in the file: filter them together
            base, stim = rec.baseline(m, t), rec.stimulus(m, t)
            y = release_preprocess(np.concatenate([base, stim], axis=-1), sf, eeg=m == "eeg")
            n_base = int(round(base.shape[-1] * RELEASE_SFREQ / sf))
            baseline[m].append(y[:, :n_base])
            stimulus[m].append(y[:, n_base:])
        for arrays in (baseline, stimulus):
            if len({a.shape for a in arrays[m]}) == 1:
                arrays[m] = np.stack(arrays[m])
    return Recording(rec.subject, dataset=rec.dataset, source=rec.source, modalities=infos,
                     baseline=baseline, stimulus=stimulus, ratings=rec.ratings,
                     sessions=rec.sessions)


def _check_finite_after_cast(out: np.ndarray, stim, base: np.ndarray, rec,
                             modality: str) -> None:
    """Raise :class:`DataFormatError` if the prepared (float32) *out* holds NaN or inf.

    The readers check the source for NaN and inf, but a finite float64 value beyond the
    float32 range (about 3.4e38) only overflows in the conversion, and would otherwise
    reach the cache and surface much later as a NaN loss.
    """
    with np.errstate(all="ignore"):
        total = np.add.reduce(out, axis=None, dtype=np.float64)
    if np.isfinite(total) or np.isfinite(out).all():
        return
    # Name the first source value out of range (normalisation may have spread the inf
    # over the trial); failing that, the first channel that is not finite.
    limit = float(np.finfo(out.dtype).max)
    with np.errstate(all="ignore"):
        too_big = (np.array([(np.abs(s) > limit).any(axis=-1) for s in stim])
                   | (np.abs(base) > limit).any(axis=-1))
    if too_big.any():
        trial_i, chan_i = (int(i) for i in np.argwhere(too_big)[0])
        largest = max(float(np.max(np.abs(stim[trial_i][chan_i]))),
                      float(np.max(np.abs(base[trial_i, chan_i]))))
        cause = f"it holds {largest:.3g}, beyond the {out.dtype} range (+-{limit:.3g})"
    else:
        trial_i, chan_i = (int(i) for i in np.argwhere(~np.isfinite(out).all(axis=-1))[0])
        cause = "the baseline removal or normalisation overflowed"
    raise DataFormatError(
        f"{rec.source}: {modality} channel {rec.ch_names(modality)[chan_i]!r} of trial "
        f"{int(rec.trials[trial_i])} (0-based) is not finite after conversion to "
        f"{out.dtype}: {cause}. Check the units of this recording.")


def default_cache_dir() -> Path:
    """``$PHYSIOSYNC_CACHE``, else ``$XDG_CACHE_HOME/physiosync``, else ``~/.cache/physiosync``."""
    env = os.environ.get("PHYSIOSYNC_CACHE")
    if env:
        return Path(env).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "physiosync"


#: Source files up to this size are hashed whole; larger ones are sampled.
_FULL_HASH_LIMIT = 8 << 20
#: Size of each sampled block, and how many strided blocks lie between the first and last.
_SAMPLE_BLOCK = 64 << 10
_SAMPLE_STRIDED = 16


def _content_sample_hash(path: Path, size: int) -> str:
    """SHA-256 of a file's bytes: all of them for small files, else a fixed sample.

    The sample is the first and last 64 KiB and 16 evenly strided 64 KiB blocks, so
    a header or data change is seen even when the size and modification time are
    unchanged, at a cost of about 1 MiB read per file.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        if size <= _FULL_HASH_LIMIT:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
            return h.hexdigest()
        last = size - _SAMPLE_BLOCK
        offsets = [0, *(round(last * (i + 1) / (_SAMPLE_STRIDED + 1))
                        for i in range(_SAMPLE_STRIDED)), last]
        for off in offsets:
            f.seek(off)
            h.update(f.read(_SAMPLE_BLOCK))
    return h.hexdigest()


#: Content hashes already taken in this process: ``{(device, inode, path): (stat
#: signature, when hashed in ns, digest)}``, so that the run fingerprint and the cache key
#: of one command read each source file once (see :func:`content_hash`).
_HASH_MEMO: dict = {}
#: A memoised hash is reused only for a file whose status last changed this long before
#: the hash was taken (file system clocks are coarse; as git's "racy clean" check).
_MEMO_SETTLED_NS = 3_000_000_000


def content_hash(path, st: os.stat_result | None = None) -> str:
    """SHA-256 of a file's content as the cache keys it (``_content_sample_hash()``).

    A hash taken earlier in this process is reused when the file's device, inode,
    size, modification and status-change times are unchanged and its status had
    last changed at least 3 s before that hash was taken; otherwise the file is read
    again. Any write changes the status-change time (which no user call can set
    back), so a reused hash is that of the current content.

    Parameters
    ----------
    path : str | Path
        The file.
    st : os.stat_result | None
        Its status, if already at hand.

    Returns
    -------
    digest : str
        Hex digest: of the whole file up to 8 MiB, else of a fixed sample.
    """
    path = Path(path)
    st = path.stat() if st is None else st
    where = (st.st_dev, st.st_ino, str(path.resolve()))
    sig = (st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    seen = _HASH_MEMO.get(where)
    if seen is not None and seen[0] == sig and st.st_ctime_ns + _MEMO_SETTLED_NS <= seen[1]:
        return seen[2]
    taken = time.time_ns()
    digest = _content_sample_hash(path, st.st_size)
    if len(_HASH_MEMO) > 4096:  # bounded: a long-lived process reads many datasets
        _HASH_MEMO.clear()
    _HASH_MEMO[where] = (sig, taken, digest)
    return digest


def _file_identity(path: Path) -> list:
    # The modification time alone misses a file rewritten with the same size and
    # time stamp (copies with preserved times, coarse clocks): hash its content too.
    st = path.stat()
    try:
        content = content_hash(path, st)
    except OSError as err:
        raise CacheError(f"Cannot read source file {path} to key the cache: {err}") from err
    return [str(path.resolve()), st.st_size, st.st_mtime_ns, content]


def data_content_key(dataset, subjects) -> str:
    """The content key of the data *subjects* of *dataset* are read from.

    SHA-256 of the dataset's ``cache_identity()``
    and, per subject, the size and content hash (:func:`content_hash`, the hash the
    cache keys its entries on, reused when already taken) of every source file. Paths
    and time stamps are left out: the same bytes elsewhere have the same key.

    Parameters
    ----------
    dataset : BaseDataset
        The dataset reader.
    subjects : list of int
        The subjects used.

    Returns
    -------
    key : str
        Hex digest.
    """
    sources = {}
    for s in subjects:
        files = []
        for p in dataset.source_files([s]):
            try:
                files.append([Path(p).name, Path(p).stat().st_size, content_hash(p)])
            except OSError as err:
                raise CacheError(f"Cannot read source file {p} to key the data: {err}") from err
        sources[str(int(s))] = files
    blob = json.dumps({"identity": dataset.cache_identity(), "sources": sources},
                      sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()


def cache_key(dataset, subject: int, params: PrepareParams) -> tuple[str, dict]:
    """The cache key of one subject and the material it hashes."""
    material = {
        "cache_format": CACHE_FORMAT,
        "version": __version__,
        **dataset.cache_identity(),
        "subject": int(subject),
        "sources": [_file_identity(Path(p)) for p in dataset.source_files([subject])],
        "params": params.to_dict(),
    }
    blob = json.dumps(material, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest(), material


def _entry_name(dataset_name: str, subject: int, key: str) -> str:
    return f"{dataset_name}-s{subject:02d}-{key[:24]}"


class _WarningRecorder(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _recorded_warnings():
    """The warnings physiosync logs inside the block (while they are enabled), as text."""
    recorder = _WarningRecorder()
    logger.addHandler(recorder)
    try:
        yield recorder.messages
    finally:
        logger.removeHandler(recorder)


def _write_entry(cache_dir: Path, name: str, key: str, material: dict,
                 prep: PreparedSubject, warnings=()) -> Path:
    """Write one entry atomically: a temporary folder renamed into place when complete.

    *warnings* (what the reader said while the entry was made) are kept in ``meta.json``
    and said again whenever the entry is served.
    """
    final = cache_dir / name
    tmp = temp_name(final)  # .physiosync-tmp-<pid>-<token>-<name>
    try:
        tmp.mkdir(parents=True)
        arrays = {}
        for m, arr in prep.data.items():
            with atomic_open(tmp / f"{m}.npy") as fh:  # flushed to disk before the rename
                np.save(fh, arr, allow_pickle=False)
            arrays[m] = {"shape": list(arr.shape), "dtype": np.dtype(arr.dtype).str,
                         "sha256": _file_sha256(tmp / f"{m}.npy")}
        ratings = prep.ratings
        meta = {
            "key": key, "material": material, "subject": prep.subject, "dataset": prep.dataset,
            "arrays": arrays,
            "sfreq": prep.sfreq, "ch_names": prep.ch_names, "seconds": prep.seconds,
            "ratings": {"index": ratings.index.tolist(),
                        "columns": {c: ratings[c].tolist() for c in ratings.columns}},
            "warnings": list(warnings),
        }
        if set(prep.sessions) != {SINGLE_SESSION}:
            # single-session entries leave it out: their meta.json is as before sessions
            meta["sessions"] = [str(v) for v in prep.sessions]
        meta["checksum"] = _meta_checksum(json.loads(json.dumps(meta)))
        # meta.json is written last: an entry without it is never valid.
        atomic_write(tmp / "meta.json", json.dumps(meta))
        try:
            os.rename(tmp, final)
        except OSError:
            if not final.exists():
                raise
            # Another process finished the same entry first; keep theirs.
        else:
            fsync_dir(cache_dir)
    except OSError as err:
        raise CacheError(f"Could not write cache entry {final}: {err}") from err
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _meta_checksum(meta: dict) -> str:
    """SHA-256 of ``meta.json``'s content but its ``checksum`` (canonical JSON)."""
    body = {k: v for k, v in meta.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _all_finite(arr: np.ndarray, chunk_bytes: int = 16 << 20) -> bool:
    """Whether every value is finite, reading a memory map in bounded chunks."""
    if arr.ndim == 0 or arr.shape[0] == 0:
        return bool(np.isfinite(arr).all())
    step = max(1, chunk_bytes // max(1, arr[:1].nbytes))
    return all(np.isfinite(arr[i:i + step]).all() for i in range(0, arr.shape[0], step))


def _open_array(path: Path, spec: dict, verify: bool) -> np.ndarray:
    """Memory-map one cached array and check it against its recorded *spec*.

    Raises
    ------
    ValueError
        Saying what is wrong with the file (the caller recomputes the entry).
    """
    if verify and _file_sha256(path) != spec["sha256"]:
        raise ValueError(f"{path.name}: checksum mismatch")
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except EOFError:
        raise ValueError(f"{path.name}: empty or truncated file") from None
    if list(arr.shape) != list(spec["shape"]) or arr.dtype.str != spec["dtype"]:
        raise ValueError(f"{path.name}: holds {arr.dtype.str} {list(arr.shape)}, expected "
                         f"{spec['dtype']} {list(spec['shape'])}")
    if not _all_finite(arr):
        raise ValueError(f"{path.name}: holds NaN or infinite values")
    return arr


def _read_entry(path: Path, key: str, verify: bool = False) -> PreparedSubject | None:
    """Load an entry, or return None if it is absent, from other inputs, or damaged.

    Every array's shape, dtype and finiteness are checked against ``meta.json``; with
    *verify*, its SHA-256 too. A damaged entry is deleted with a warning naming it.
    """
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
        if not isinstance(meta, dict):
            raise ValueError(f"meta.json holds a JSON {type(meta).__name__}, not an object")
        # The labels (ratings) live here: an edited or damaged meta.json is never used.
        if meta.get("checksum") != _meta_checksum(meta):
            raise ValueError("meta.json: checksum mismatch")
        if meta.get("key") != key:
            return None
        if set(meta["arrays"]) != set(meta["sfreq"]):
            raise ValueError("meta.json lists other arrays than modalities")
        data = {m: _open_array(path / f"{m}.npy", meta["arrays"][m], verify)
                for m in meta["sfreq"]}
        r = meta["ratings"]
        ratings = pd.DataFrame(r["columns"], index=pd.Index(r["index"], name="trial"))
    except (OSError, ValueError, KeyError, TypeError, EOFError) as err:
        logger.warning("Ignoring damaged cache entry %s (%s); recomputing.", path, err)
        shutil.rmtree(path, ignore_errors=True)
        return None
    return PreparedSubject(meta["subject"], meta["dataset"], data, meta["sfreq"],
                           meta["ch_names"], ratings, meta["seconds"],
                           tuple(str(w) for w in meta.get("warnings", ())),
                           sessions=meta.get("sessions", ()))


def _clean_stale_tmp(cache_dir: Path, max_age_s: float = 24 * 3600) -> None:
    """Remove temporary entry folders left by killed physiosync processes.

    Only names of physiosync's own form (:func:`~physiosync._utils.io.is_stale_temp`:
    ``.physiosync-tmp-<pid>-<token>-...``) whose process is not alive on this host and
    that are older than *max_age_s* (a cache shared by several hosts may hold another
    host's entry being written) are removed; any other name, such as another
    program's ``.tmp-*`` in a shared ``--cache-dir``, is never touched.
    """
    now = time.time()
    for p in cache_dir.glob(TMP_PREFIX + "*"):
        try:
            if is_stale_temp(p.name) and now - p.lstat().st_mtime > max_age_s:
                if p.is_dir() and not p.is_symlink():
                    shutil.rmtree(p, ignore_errors=True)
                else:
                    p.unlink()
        except OSError:
            pass


@verbose
def prepare(dataset, subjects=None, *, params: PrepareParams | None = None,
            cache_dir=None, verify: bool = False,
            verbose: bool | str | int | None = None) -> dict[int, PreparedSubject]:
    """Prepare (or load from the cache) the given subjects of a dataset.

    Parameters
    ----------
    dataset : BaseDataset
        A dataset reader from :mod:`physiosync.datasets` (e.g. ``DEAP``, ``DREAMER``,
        or :func:`~physiosync.datasets.open_dataset`'s result).
    subjects : list of int | None
        Subjects to prepare; all by default.
    params : PrepareParams | None
        Preprocessing parameters; defaults to ``PrepareParams()`` with the dataset's
        default modalities (:func:`~physiosync.params.default_modalities`: EEG and GSR
        for DEAP, EEG and ECG for DREAMER).
    cache_dir : str | Path | None | False
        Cache folder; ``None`` uses :func:`default_cache_dir`, ``False`` disables the
        cache (arrays stay in memory).
    verify : bool
        Also check the SHA-256 checksum of every cached array (this reads each entry
        in full). Without it, opening an entry checks the checksum of its ``meta.json``
        (ratings included) and the shape, dtype and finiteness of its arrays only.
        Damaged entries are recomputed, with a warning naming them.
    %(verbose)s
        It covers the progress bar over subjects.

    Returns
    -------
    prepared : dict of int -> PreparedSubject
        In subject order. Cached arrays are read-only memory maps, so memory stays
        bounded by roughly one subject however large the dataset.
    """
    if params is None:
        params = PrepareParams(modalities=default_modalities(dataset.name))
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
        prep = _read_entry(entry, key, verify=verify)
        if prep is None:
            with _recorded_warnings() as said:
                prep = prepare_recording(dataset.load_subject(s), params)
            _write_entry(cache_dir, entry.name, key, material, prep, warnings=said)
            prep = _read_entry(entry, key) or prep
            logger.info("prepared %s subject %d -> %s", dataset.name, s, entry)
        else:
            logger.info("cache hit for %s subject %d", dataset.name, s)
            # What the reader said when the entry was made (a BDF cut short that lost
            # trials) still holds for the data served from it: say it again.
            for message in prep.warnings:
                logger.warning("%s (said when %s subject %d was prepared; served from the "
                               "cache)", message, dataset.name, s)
        out[s] = prep
    return out
