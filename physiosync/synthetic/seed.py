"""Synthetic SEED and SEED-IV: date-named MATLAB v5 session files of film clips.

:func:`make_seed` writes ``Preprocessed_EEG/<subject>_<YYYYMMDD>.mat`` and ``label.mat``
as the SEED release holds them; :func:`make_seed_iv` writes
``eeg_raw_data/<session>/<subject>_<YYYYMMDD>.mat``, ``eeg_feature_smooth/`` and
``ReadMe.txt`` as SEED-IV holds them. The signals come from
:class:`~physiosync.synthetic.SubjectSimulator`: each clip's emotion class sets the
simulator's valence and arousal (:data:`EMOTION_AFFECT`), and each clip has a
stimulus-locked time course shared by every subject who watches it; SEED shows the same
15 clips in each session, so a clip's course is the same in all three.

The releases' quirks are kept: the release's file names and dates, variables
``<initials>_eeg<k>`` written in numeric order (as the real files, on which loaders
that take ``keys()[3:]`` depend), clips of unequal length, SEED's ``200 d + 1`` samples
per clip, and on request missing sessions.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from .._logging import logger, progress, verbose
from .._utils import atomic_open
from ..datasets._seed import SEED_EEG, SEED_SFREQ
from ..datasets.seed import FOLDER, LABEL_FILE, SEED_CLIP_SECONDS, SEED_DATES, SEED_LABELS
from ..datasets.seed_iv import (CANDIDATE_RATES, FEATURE_WINDOW_S, FEATURES, RAW, README,
                                SEED_IV_LABELS)
from ..dataset_specs import DATASET_SPECS
from ..exceptions import PhysioSyncError
from ._generators import StimulusCourses
from ._guard import check_folder, recording_synth
from ._matwrite import write_mat
from ._simulate import SubjectSimulator, check_simulation_options, check_sizes, subject_rng

__all__ = ["make_seed", "make_seed_iv", "EMOTION_AFFECT", "seed_clip_seconds",
           "seed_iv_clip_seconds"]

#: (valence, arousal) of each emotion class on the simulator's latent scale [-1, 1]:
#: the valence follows the class's hedonic sign, the arousal its intensity (fear and the
#: positive/happy clips arouse, neutral and sad clips calm).
EMOTION_AFFECT = {
    "negative": (-0.8, 0.4), "neutral": (0.0, -0.4), "positive": (0.8, 0.4),
    "sad": (-0.7, -0.4), "fear": (-0.7, 0.8), "happy": (0.8, 0.5),
}
#: SD of the per-subject, per-trial deviation from the class's (valence, arousal).
_FELT_SD = 0.15
#: Window counts of the 24 clips of SEED-IV's session 1 (4 s windows of
#: ``eeg_feature_smooth``): the clips last about 4 W seconds.
_SEED_IV_WINDOWS_S1 = (42, 23, 49, 32, 22, 40, 38, 52, 36, 42, 12, 27, 54, 42, 64, 35, 17,
                       44, 35, 12, 28, 28, 43, 34)
#: The release's file dates of SEED-IV's sessions 1, 2, 3 per subject.
SEED_IV_DATES = {
    1: ("20160518", "20161125", "20161126"), 2: ("20150915", "20150920", "20151012"),
    3: ("20150919", "20151018", "20151101"), 4: ("20151111", "20151118", "20151123"),
    5: ("20160406", "20160413", "20160420"), 6: ("20150507", "20150511", "20150512"),
    7: ("20150715", "20150717", "20150721"), 8: ("20151103", "20151110", "20151117"),
    9: ("20151028", "20151119", "20151209"), 10: ("20151014", "20151021", "20151023"),
    11: ("20150916", "20150921", "20151011"), 12: ("20150725", "20150804", "20150807"),
    13: ("20151115", "20151125", "20161130"), 14: ("20151205", "20151208", "20151215"),
    15: ("20150508", "20150514", "20150527"),
}
_SEED_FILES = re.compile(r"^(\d+_\d{8}\.mat|label\.mat)$", re.IGNORECASE)
_SEED_IV_FILES = re.compile(r"^(\d+_\d{8}\.mat|readme\.txt)$", re.IGNORECASE)
N_SUBJECTS = 15


def seed_clip_seconds(seconds: float) -> np.ndarray:
    """Lengths (whole seconds, at least 1) of SEED's 15 clips scaled to a mean of
    *seconds*, in the release's proportions (185-265 s, mean 226 s)."""
    real = np.asarray(SEED_CLIP_SECONDS, dtype=float)
    return np.maximum(np.rint(real * float(seconds) / real.mean()), 1).astype(int)


def seed_iv_clip_seconds(seconds: float, seed: int) -> dict:
    """``{session: lengths}`` of SEED-IV's 24 clips per session, whole seconds, at least
    one feature window (4 s), scaled to a mean of *seconds*: session 1 in the release's
    proportions, sessions 2 and 3 (whose lengths the sources do not give) a seeded
    permutation of them."""
    base = FEATURE_WINDOW_S * np.asarray(_SEED_IV_WINDOWS_S1, dtype=float)
    rng = np.random.default_rng([int(seed), 2018, 4])
    out = {}
    for session in DATASET_SPECS["seed-iv"].sessions:
        real = base if session == "1" else rng.permutation(base)
        out[session] = np.maximum(np.rint(real * float(seconds) / base.mean()),
                                  FEATURE_WINDOW_S).astype(int)
    return out


def _initials(subject: int) -> str:
    """The variable prefix of *subject* (the release uses each subject's initials)."""
    known = {1: "djc", 2: "jl"}
    return known.get(subject) or "".join(chr(97 + (7 * subject + 5 * i) % 26) for i in range(3))


def _check_options(n_subjects, subjects, missing_sessions, rating_bias, affect, synchrony,
                   affect_share, control, sessions):
    """The subject ids and the validated simulation options of a SEED writer."""
    if rating_bias:
        raise PhysioSyncError(f"rating_bias must be 0 for SEED and SEED-IV, which have no "
                              f"ratings (the clips' classes are fixed); got {rating_bias!r}.")
    options = check_simulation_options(synchrony, 0.0, affect=affect,
                                       affect_share=affect_share, control=control)
    if options.affect != "static":
        raise PhysioSyncError("affect='dynamics' needs rated trials; SEED and SEED-IV have "
                              "emotion classes only: use affect='static'.")
    if subjects is None:
        ids = list(range(1, n_subjects + 1))
    else:
        ids = sorted({int(s) for s in subjects})
        if not ids or ids[0] < 1 or ids[-1] > N_SUBJECTS:
            raise PhysioSyncError(f"subjects must be ids in 1..{N_SUBJECTS}, got {subjects!r}.")
    missing = {int(s): {str(k) for k in v} for s, v in dict(missing_sessions or {}).items()}
    for s, gone in missing.items():
        if s not in ids or not gone <= set(sessions) or gone >= set(sessions):
            raise PhysioSyncError(
                f"missing_sessions: subject {s} must be written and keep one of the sessions "
                f"{', '.join(sessions)}; got {sorted(gone)}.")
    return ids, missing, options


class _ClassSubject:
    """One synthetic subject: the simulator, driven by the emotion classes."""

    def __init__(self, seed: int, subject: int, effect: float, courses: StimulusCourses,
                 rate: float):
        self.seed, self.subject, self.rate = int(seed), int(subject), float(rate)
        self.sim = SubjectSimulator(subject_rng(seed, subject), effect, courses)

    def clip(self, video: int, trial: int, emotion: str, seconds: float, n: int) -> np.ndarray:
        """EEG ``(62, n)`` in µV of one clip; *video* keys the shared course."""
        jitter = np.random.default_rng([self.seed, 7301, self.subject, int(trial)])
        v, a = (float(np.clip(x + _FELT_SD * jitter.standard_normal(), -1.0, 1.0))
                for x in EMOTION_AFFECT[emotion])
        course = self.sim.trial_course(video, float(seconds))
        return self.sim.signal("eeg", SEED_EEG, self.rate, n, v, a, course=course)


def _write_mat(path: Path, variables: dict, compress: bool = True) -> None:
    """One MATLAB v5 file (zlib-compressed, as MATLAB's default ``-v7`` save, unless
    *compress* is False), written atomically and listed as synth's in its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with recording_synth(path.parent), atomic_open(path, "wb") as f:
        write_mat(f, variables, compress=compress, oned_as="row")


def _simulate_sessions(ids, missing, sessions, n_trials, clip_s, labels, classes, rate,
                       effect, seed, options, *, shared_clips, extra_sample, desc):
    """Yield ``(subject, session, {variable: array})`` for every file to write."""
    courses = StimulusCourses(seed, options.synchrony)
    for s in progress(ids, desc=desc):
        subject = _ClassSubject(seed, s, effect, courses, rate)
        for index, session in enumerate(sessions):
            if session in missing.get(s, ()):
                continue
            variables = {}
            for k in range(1, n_trials + 1):  # dict order = file order, numeric as the release
                seconds = float(clip_s[session][k - 1])
                n = int(round(seconds * rate)) + (1 if extra_sample else 0)
                video = k - 1 if shared_clips else index * len(labels[session]) + k - 1
                trial = index * len(labels[session]) + k - 1
                emotion = classes[labels[session][k - 1]]
                variables[f"{_initials(s)}_eeg{k}"] = subject.clip(video, trial, emotion,
                                                                   seconds, n)
            yield s, session, variables


@verbose
def make_seed(out, n_subjects: int = 3, n_trials: int = 15, seconds: float = 4.0,
              effect: float = 2.0, seed: int = 0, *, synchrony: float = 1.0,
              rating_bias: float = 0.0, affect: str = "static",
              affect_share: float | None = None, control: str = "none", subjects=None,
              missing_sessions=None, compress: bool = True,
              verbose: bool | str | int | None = None) -> Path:
    """Write a synthetic SEED ``Preprocessed_EEG`` folder with the release's layout.

    Parameters
    ----------
    out : str | Path
        The folder that gets ``Preprocessed_EEG/`` (as ``SEED_EEG/`` in the release).
    n_subjects : int
        Subjects 1..n_subjects, at most 15 (ignored with *subjects*).
    n_trials : int
        Clips per session, 1..15 (15 in the release; fewer writes clips 1..n only).
    seconds : float
        Mean clip length; the clips keep the release's proportions in whole seconds
        (``seed_clip_seconds()``), each ``200 d + 1`` samples as in the release.
    %(effect)s
    seed : int
        Seed; the same seed writes the same data.
    synchrony : float
        Strength of each clip's stimulus-locked course, shared by its viewers and by
        the three sessions; 0 turns it off.
    rating_bias : float
        Must be 0: SEED has no ratings.
    affect, affect_share, control
        ``affect="static"`` only (the classes set constant per-clip levels).
    subjects : sequence of int | None
        Subject ids to write instead of ``1..n_subjects`` (e.g. ``[1, 2, 10]``).
    missing_sessions : dict of int -> sequence of str | None
        Sessions not to write per subject (``{2: ["3"]}``), a subject with a missing
        session file.
    compress : bool
        Compress the variables (MATLAB's default for ``-v7`` files; the readers take
        both). False writes faster.
    %(verbose)s

    Returns
    -------
    path : Path
        The ``Preprocessed_EEG`` folder. Each file is written to a temporary name and
        renamed, so it is either complete or absent.
    """
    spec = DATASET_SPECS["seed"]
    check_sizes(n_subjects, n_trials, seconds, N_SUBJECTS, len(SEED_LABELS))
    ids, missing, options = _check_options(n_subjects, subjects, missing_sessions, rating_bias,
                                           affect, synchrony, affect_share, control,
                                           spec.sessions)
    folder = Path(out).expanduser() / FOLDER
    check_folder(folder, [LABEL_FILE], _SEED_FILES)
    clip_s = {k: seed_clip_seconds(seconds) for k in spec.sessions}
    labels = {k: [c + 1 for c in SEED_LABELS] for k in spec.sessions}
    files = _simulate_sessions(ids, missing, spec.sessions, n_trials, clip_s, labels,
                               spec.classes["emotion"], SEED_SFREQ, effect, seed, options,
                               shared_clips=True, extra_sample=True, desc="synthetic SEED")
    for s, session, variables in files:
        date = SEED_DATES[s][spec.sessions.index(session)]
        _write_mat(folder / f"{s}_{date}.mat", variables, compress)
    _write_mat(folder / LABEL_FILE, {"label": np.array([SEED_LABELS], dtype=np.int16)})
    logger.info("wrote synthetic SEED (%d subjects x %d clips) to %s", len(ids), n_trials,
                folder)
    return folder


@verbose
def make_seed_iv(out, n_subjects: int = 3, n_trials: int = 24, seconds: float = 8.0,
                 effect: float = 2.0, seed: int = 0, *, synchrony: float = 1.0,
                 rating_bias: float = 0.0, affect: str = "static",
                 affect_share: float | None = None, control: str = "none", subjects=None,
                 missing_sessions=None, sfreq: float = 200.0, features: bool = True,
                 readme: bool = True, compress: bool = True,
                 verbose: bool | str | int | None = None) -> Path:
    """Write a synthetic SEED-IV release folder (``eeg_raw_data`` and what goes with it).

    Parameters
    ----------
    out : str | Path
        The release folder (``SEED_IV/``); created if needed.
    n_subjects : int
        Subjects 1..n_subjects, at most 15 (ignored with *subjects*).
    n_trials : int
        Clips per session, 1..24 (24 in the release).
    seconds : float
        Mean clip length; the clips of session 1 keep the release's proportions, in
        whole seconds and at least 4 s (``seed_iv_clip_seconds()``).
    %(effect)s
    seed : int
        Seed; the same seed writes the same data.
    synchrony : float
        Strength of each clip's stimulus-locked course, shared by its viewers; 0 turns
        it off.
    rating_bias : float
        Must be 0: SEED-IV has no ratings.
    affect, affect_share, control
        ``affect="static"`` only.
    subjects : sequence of int | None
        Subject ids to write instead of ``1..n_subjects``.
    missing_sessions : dict of int -> sequence of str | None
        Sessions not to write per subject.
    sfreq : {200.0, 1000.0}
        Sampling rate of the trials: 200 Hz as the release (most sources); 1000 Hz
        writes the variant one source assumes.
    features : bool
        Also write ``eeg_feature_smooth/<session>/<file>.mat`` with the release's four
        features per clip (``de_movingAve``, ``de_LDS``, ``psd_movingAve``, ``psd_LDS``,
        ``(62, W_k, 5)``, one window per 4 s; values drawn to the release's ranges, not
        computed from the EEG), which the reader's rate check uses.
    readme : bool
        Also write ``ReadMe.txt`` with the three ``session{n}_label`` lines.
    compress : bool
        Compress the variables (MATLAB's default for ``-v7`` files). False writes faster.
    %(verbose)s

    Returns
    -------
    path : Path
        The release folder.
    """
    spec = DATASET_SPECS["seed-iv"]
    check_sizes(n_subjects, n_trials, seconds, N_SUBJECTS, 24)
    ids, missing, options = _check_options(n_subjects, subjects, missing_sessions, rating_bias,
                                           affect, synchrony, affect_share, control,
                                           spec.sessions)
    if sfreq not in CANDIDATE_RATES:
        rates = ", ".join(f"{r:g}" for r in CANDIDATE_RATES)
        raise PhysioSyncError(f"sfreq must be one of {rates} Hz, got {sfreq!r}.")
    root = Path(out).expanduser()
    for session in spec.sessions:
        check_folder(root / RAW / session, (), _SEED_IV_FILES)
        check_folder(root / FEATURES / session, (), _SEED_IV_FILES)
    check_folder(root, [README], None)
    clip_s = seed_iv_clip_seconds(seconds, seed)
    files = _simulate_sessions(ids, missing, spec.sessions, n_trials, clip_s, SEED_IV_LABELS,
                               spec.classes["emotion"], float(sfreq), effect, seed, options,
                               shared_clips=False, extra_sample=False,
                               desc="synthetic SEED-IV")
    for s, session, variables in files:
        name = f"{s}_{SEED_IV_DATES[s][spec.sessions.index(session)]}.mat"
        _write_mat(root / RAW / session / name, variables, compress)
        if features:
            rng = np.random.default_rng([int(seed), 5303, s, int(session)])
            feats = {}
            for k in range(1, n_trials + 1):
                windows = int(clip_s[session][k - 1] // FEATURE_WINDOW_S)
                for f in ("de_movingAve", "de_LDS", "psd_movingAve", "psd_LDS"):
                    feats[f"{f}{k}"] = rng.uniform(10.0, 30.0, (len(SEED_EEG), windows, 5))
            _write_mat(root / FEATURES / session / name, feats, compress)
    if readme:
        lines = ["SEED-IV (synthetic copy written by physiosync.synthetic.make_seed_iv; not the "
                 "recordings).", "", "The labels of the three sessions for the same subjects "
                 "are as follows,"]
        lines += [f"session{k}_label = [{','.join(str(c) for c in SEED_IV_LABELS[k])}];"
                  for k in spec.sessions]
        lines += ["", "The labels with 0, 1, 2, and 3 denote the ground truth, neutral, sad, "
                  "fear, and happy emotions, respectively."]
        with recording_synth(root), atomic_open(root / README, "w") as f:
            f.write("\n".join(lines) + "\n")
    logger.info("wrote synthetic SEED-IV (%d subjects x %d clips, %g Hz) to %s", len(ids),
                n_trials, sfreq, root)
    return root
