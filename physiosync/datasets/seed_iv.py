"""Reader of the SEED-IV dataset (Zheng et al., IEEE Trans. Cybernetics 2018), its EEG.

The release (``SEED_IV/``) holds ``ReadMe.txt`` and, among others:

* ``eeg_raw_data/<session>/<subject>_<YYYYMMDD>.mat`` for sessions 1, 2, 3 and subjects
  1..15: 24 variables ``<initials>_eeg1 .. <initials>_eeg24``, one per film clip in the
  order shown, each a ``(62, n_k)`` array, channels x samples, of EEG in µV
  (down-sampled to 200 Hz by the release, see below). Each session shows 24 other clips,
  the same for every subject;
* ``eeg_feature_smooth/<session>/<same name>.mat``: differential entropy and PSD
  features over 4 s windows, ``de_LDS<k>`` of shape ``(62, W_k, 5)``;
* ``ReadMe.txt`` with one line per session ``session1_label = [1,2,3,0,...];`` giving
  each clip's emotion: 0 neutral, 1 sad, 2 fear, 3 happy, in an order that differs
  between sessions.

The sampling rate of ``eeg_raw_data`` is checked, not assumed: peer libraries read it
at 200 Hz and one at 1000 Hz. :class:`SEEDIV` compares a file's trial lengths with the
window counts of its feature file (``n_k / (4 s * rate)`` must round down to ``W_k``)
when the features are there, and otherwise with the clip durations (at most 5 min per
clip); the log says which check decided. :func:`physiosync.synthetic.make_seed_iv`
writes a synthetic copy with the same layout.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .._logging import logger, verbose
from .._utils.docs import fill_doc
from ..dataset_specs import DATASET_SPECS
from ..exceptions import DataFormatError, DataNotFoundError, InvalidParameterError
from ._matfile import mat_variables
from ._seed import SessionDataset, clip_lengths, ranges, session_files

__all__ = ["SEEDIV", "SEED_IV_LABELS"]

_SPEC = DATASET_SPECS["seed-iv"]
RAW = "eeg_raw_data"
FEATURES = "eeg_feature_smooth"
README = "ReadMe.txt"
N_CLIPS = 24
#: The ``session{n}_label`` lines of the release's ``ReadMe.txt``: the emotion code of
#: clips 1..24 of each session (0 neutral, 1 sad, 2 fear, 3 happy).
SEED_IV_LABELS = {
    "1": (1, 2, 3, 0, 2, 0, 0, 1, 0, 1, 2, 1, 1, 1, 2, 3, 2, 2, 3, 3, 0, 3, 0, 3),
    "2": (2, 1, 3, 0, 0, 2, 0, 2, 3, 3, 2, 3, 2, 0, 1, 1, 2, 1, 0, 3, 0, 1, 3, 1),
    "3": (1, 2, 2, 1, 3, 3, 3, 1, 1, 2, 1, 0, 2, 3, 3, 0, 2, 3, 0, 0, 2, 0, 1, 0),
}
#: The two rates the sources give for ``eeg_raw_data`` (Hz), the likelier first.
CANDIDATE_RATES = (200.0, 1000.0)
#: Feature windows of ``eeg_feature_smooth``, in seconds.
FEATURE_WINDOW_S = 4.0
#: A clip longer than this at a candidate rate rules the rate out (the clips last 1-4.5 min).
MAX_CLIP_S = 300.0
_SESSION_DIR = re.compile(r"^(?:session_?)?([123])$", re.IGNORECASE)
_LABEL_LINE = re.compile(r"session\s*([123])\s*_label\s*=\s*\[([^\]]*)\]", re.IGNORECASE)
_MAX_README_BYTES = 1 << 20
_RELEASE = "the SEED-IV release (eeg_raw_data)"


def find_root(root: Path) -> Path:
    """The release folder (the one holding ``eeg_raw_data``) at, above or below *root*."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataNotFoundError(f"SEED-IV folder {root} does not exist or is not a folder; "
                                f"expected {_SPEC.layout}.")
    for candidate in (root, root / "SEED_IV", root / "SEED-IV"):
        if (candidate / RAW).is_dir():
            return candidate
    if root.name.lower() == RAW.lower():
        return root.parent
    raise DataNotFoundError(f"{root}: no {RAW} folder; expected {_SPEC.layout}.")


def parse_readme(path: Path) -> dict:
    """``{session: codes}`` from the ``session{n}_label = [...]`` lines of ``ReadMe.txt``
    (parsed as integers, never evaluated); ``{}`` if it has none."""
    with open(path, "rb") as f:
        text = f.read(_MAX_README_BYTES).decode("utf-8", errors="replace")
    out = {}
    for m in _LABEL_LINE.finditer(text):
        try:
            codes = tuple(int(v) for v in m.group(2).replace(";", ",").split(",") if v.strip())
        except ValueError:
            raise DataFormatError(
                f"{path}: the session{m.group(1)}_label line holds {m.group(2)[:60]!r}; "
                f"expected {N_CLIPS} integers 0-3.") from None
        if len(codes) != N_CLIPS or not all(0 <= c <= 3 for c in codes):
            raise DataFormatError(f"{path}: session{m.group(1)}_label holds {len(codes)} "
                                  f"value(s) {list(codes)[:6]}...; expected {N_CLIPS} "
                                  "integers 0-3 (neutral, sad, fear, happy).")
        out[m.group(1)] = codes
    return out


def _feature_windows(path: Path) -> dict:
    """``{k: W_k}`` from the ``de_LDS<k>`` (or ``de_movingAve<k>``) shapes of a feature
    file."""
    out = {}
    variables = mat_variables(path, release="the SEED-IV release (eeg_feature_smooth)",
                              resave=f"save('{path.name}', '-v7')")
    for name, shape, _ in variables:
        m = re.match(r"^de_(?:LDS|movingAve)(\d{1,3})$", name)
        if m and len(shape) == 3:
            out.setdefault(int(m.group(1)), int(shape[1]))
    return out


def detect_rate(raw: Path, features: Path | None) -> tuple[float, str]:
    """The sampling rate of *raw*'s trials and the check that decided it."""
    lengths = clip_lengths(raw, N_CLIPS, _RELEASE)
    if features is not None and features.is_file():
        windows = _feature_windows(features)
        common = sorted(set(windows) & set(lengths))
        fits = [r for r in CANDIDATE_RATES
                if common and all(0 <= lengths[k] / (FEATURE_WINDOW_S * r) - windows[k] < 1
                                  for k in common)]
        if len(fits) == 1:
            return fits[0], (f"the window counts of {features.name} in {FEATURES} "
                             f"({len(common)} clips)")
        logger.warning("%s: the window counts of %s fit %s; checking the clip durations "
                       "instead.", raw, features,
                       "both 200 and 1000 Hz" if fits else "neither 200 nor 1000 Hz")
    longest = max(lengths.values())
    for r in CANDIDATE_RATES:
        if longest / r <= MAX_CLIP_S:
            return r, (f"the clip durations (longest {longest} samples = {longest / r:g} s; "
                       f"no feature file)")
    raise DataFormatError(f"{raw}: a clip of {longest} samples lasts over {MAX_CLIP_S:g} s "
                          "even at 1000 Hz; expected SEED-IV clips of 1-4.5 min.")


@fill_doc
class SEEDIV(SessionDataset):
    """The SEED-IV dataset (``eeg_raw_data``), one :class:`~physiosync.datasets.Recording`
    per subject holding its three sessions.

    Parameters
    ----------
    root : str | Path
        The release folder holding ``eeg_raw_data/`` (``SEED_IV/``), a folder holding
        that one, or ``eeg_raw_data/`` itself.
    sfreq : float | None
        The sampling rate of the trials; ``None`` (default) checks it against the
        feature files or the clip durations (see the module docstring).
    %(verbose)s

    Attributes
    ----------
    root : Path
        The release folder.
    subjects : list of int
        Subjects with at least one session file.
    sessions : tuple of str
        ``("1", "2", "3")``, from the session folders.
    classes : tuple of str
        ``("neutral", "sad", "fear", "happy")``: the ``emotion`` codes 0..3.
    labels : dict of str -> tuple of int
        Each session's clip codes (``ReadMe.txt``, else ``SEED_IV_LABELS``).
    sfreq : float
        The sampling rate used (200 Hz in the release).
    rate_check : str
        How the rate was decided.

    Raises
    ------
    DataNotFoundError
        If there is no ``eeg_raw_data`` folder or no session file.
    DataFormatError
        If ``ReadMe.txt``'s label lines are malformed, or a session file damaged.

    Notes
    -----
    Trials are numbered session-major: trial ``24 (i - 1) + k - 1`` is clip ``k`` of
    session ``i``. The sessions show different clips, so the trial id names the clip
    and the ratings have no ``stimulus`` column. There is no baseline: prepare with
    ``baseline="none"``. Session folders may also be named ``session1`` etc.
    """

    name = _SPEC.display_name
    root_description = _SPEC.root_description
    n_clips = N_CLIPS
    shared_clips = False
    trim_extra_sample = False
    release = _RELEASE

    @verbose
    def __init__(self, root, *, sfreq: float | None = None,
                 verbose: bool | str | int | None = None):
        self.root = find_root(root)
        raw = self.root / RAW
        files: dict = {}
        self._session_dirs = {}
        for folder in sorted(p for p in raw.iterdir() if p.is_dir()):
            m = _SESSION_DIR.match(folder.name)
            if not m:
                continue
            session = m.group(1)
            if session in self._session_dirs:
                raise DataFormatError(f"{raw}: folders {self._session_dirs[session].name} and "
                                      f"{folder.name} both hold session {session}.")
            self._session_dirs[session] = folder
            for s, dated in session_files(folder).items():
                if len(dated) > 1:
                    raise DataFormatError(
                        f"{folder}: subject {s} has {len(dated)} files "
                        f"({', '.join(p.name for _, p in dated)}); expected one per session.")
                files.setdefault(s, {})[session] = dated[0][1]
        readme = next((p for p in self.root.iterdir()
                       if p.name.lower() == README.lower() and p.is_file()), None)
        found = parse_readme(readme) if readme is not None else {}
        self.labels = {k: found.get(k, SEED_IV_LABELS[k]) for k in _SPEC.sessions}
        self._label_files = (readme,) if found else ()
        if found:
            logger.info("%s: clip labels of session(s) %s from %s.", self.root,
                        ", ".join(sorted(found)), readme.name)
        absent = [k for k in _SPEC.sessions if k not in found]
        if absent:
            logger.warning("%s: no session%s_label line in %s; using the release's labels "
                           "for session(s) %s.", self.root, absent[0],
                           README if readme is None else readme.name, ", ".join(absent))
        for k, codes in found.items():
            if codes != SEED_IV_LABELS[k]:
                logger.warning("%s: session %s's labels differ from the release's; using "
                               "the file's.", readme, k)
        self._init_files(files, {k: np.asarray(v) for k, v in self.labels.items()})
        first = next(iter(self._files.values()))
        session, path = next(iter(first.items()))
        if sfreq is None:
            feature = self.root / FEATURES / self._session_dirs[session].name / path.name
            self.sfreq, self.rate_check = detect_rate(path, feature)
            logger.info("SEED-IV: %g Hz, from %s.", self.sfreq, self.rate_check)
        else:
            if not (isinstance(sfreq, (int, float)) and float(sfreq) > 0):
                raise InvalidParameterError(f"sfreq must be a positive number of Hz (200 in "
                                            f"the release) or None, got {sfreq!r}.")
            self.sfreq, self.rate_check = float(sfreq), "given"
        self.signal = {"processing": f"SEED-IV eeg_raw_data: the film clips at {self.sfreq:g} "
                                    f"Hz (rate from {self.rate_check})"}
        logger.info("SEED-IV at %s: %d subjects (%s), %d session files", self.root,
                    len(self._files), ranges(self._files),
                    sum(len(v) for v in self._files.values()))

    def cache_identity(self) -> dict:
        """The dataset, the format and the sampling rate read."""
        return {"dataset": self.name, "format": self.format, "sfreq": self.sfreq}
