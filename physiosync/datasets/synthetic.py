"""Format-faithful synthetic DEAP and DREAMER datasets.

The files written here are the real formats, with their quirks, so that every reader
(physiosync's, Python's own latin1 unpickling, ``mne.io.read_raw_bdf``,
``scipy.io.loadmat``) reads them exactly as it reads the licensed data:

* :func:`make_deap` -- ``data_preprocessed_python/sXX.dat``: Python-2 protocol-2 pickles
  of ``{"labels": (n_trials, 4) float64, "data": (n_trials, 40, n_samples) float64}``.
* :func:`make_deap_bdf` -- ``data_original/sXX.bdf``: BioSemi BDF with 48 or 49
  channels, Status-channel quirks, presentation order, plus ``participant_ratings.csv``.
* :func:`make_dreamer` -- ``DREAMER.mat``: a MATLAB v5 struct with the real layout.

Signals carry a tunable emotion effect (see :class:`SubjectSimulator`); ``effect=0``
makes the labels independent of the signals. Defaults are small, so tests run in
seconds; pass the real sizes (``n_subjects=32, n_trials=40, seconds=60`` for DEAP)
for a full-size set.

Every writer also takes two options of the simulation:

* ``synchrony`` (default 1.0): strength of each video's stimulus-locked affective time
  course, shared by all its viewers (subject-specific gain, lag under 0.35 s, private
  noise) and expressed at the same seconds in the EEG (band-power envelopes and a slow
  cortical component) and the peripheral signals (skin-conductance responses, heart
  rate, respiration). This is the inter-subject and cross-modal synchrony that
  PhysioSync's pre-training learns from, so it is on by default. At 1 the shared
  fluctuation has SD 0.5 on the latent emotion scale on which the per-video levels
  span [-1, 1] (before ``effect`` scales them): strong enough that pre-training with
  the multi-view embedding on 5 s windows beats a collapsed encoder, mild enough that
  the emotion effect stays decodable from single windows (stronger values add
  within-trial variance that small deep models pay for). The course has mean zero and does not
  depend on the ratings, so ``effect=0`` still gives signals independent of the
  labels. ``synchrony=0`` writes stationary trials, in which nothing but the ratings
  is shared across subjects.
* ``rating_bias`` (default 0): SD of a per-subject offset of the ratings, as a
  fraction of the rating range (0.25 = 2 points on DEAP's 1-9 scales), so that some
  subjects rate most videos high and others most low, as in DEAP. It changes the
  reported ratings only (a response style), not the signals. ``0`` keeps the ratings
  of earlier versions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._logging import logger, progress
from ..exceptions import PhysioSyncError
from ._channels import DEAP_DAT_SLICES, DEAP_EEG_GENEVA, DEAP_SFREQ_DAT
from ._pickle import write_py2_pickle
from ._simulate import (StimulusCourses, SubjectSimulator, check_simulation_options, latent,
                        simulate_ratings)

__all__ = ["make_deap", "make_deap_bdf", "make_dreamer", "SubjectSimulator"]


def _check_sizes(n_subjects, n_trials, seconds, max_subjects, max_trials):
    for name, value, hi in (("n_subjects", n_subjects, max_subjects),
                            ("n_trials", n_trials, max_trials)):
        if not isinstance(value, (int, np.integer)) or not 1 <= value <= hi:
            raise PhysioSyncError(f"{name} must be an integer in [1, {hi}], got {value!r}.")
    if not seconds > 0:
        raise PhysioSyncError(f"seconds must be positive, got {seconds!r}.")


def subject_rng(seed: int, subject: int) -> np.random.Generator:
    """The random generator of one synthetic subject (independent of the others)."""
    return np.random.default_rng([int(seed), int(subject)])


def make_deap(out, n_subjects: int = 4, n_trials: int = 8, seconds: float = 10.0,
              effect: float = 2.0, seed: int = 0, *, baseline_seconds: float = 3.0,
              synchrony: float = 1.0, rating_bias: float = 0.0) -> Path:
    """Write a synthetic ``data_preprocessed_python`` folder.

    Parameters
    ----------
    out : str | Path
        Folder to create (or fill); ``sXX.dat`` files are written into it.
    n_subjects : int
        Number of participants, at most 32 (the real release has 32).
    n_trials : int
        Trials (videos) per participant, at most 40 (the real release has 40).
    seconds : float
        Stimulus length in seconds (60 in the real release).
    effect : float
        Strength of the emotion effect in the signals; 0 means none.
    seed : int
        Seed; the same seed writes the same files.
    baseline_seconds : float
        Pre-trial baseline length (3 s in the real release).
    synchrony : float
        Strength of the stimulus-locked time course shared by the subjects who watch
        a video (see the module docstring); 0 turns it off.
    rating_bias : float
        SD of the per-subject rating offset, as a fraction of the rating range; 0
        turns it off.

    Returns
    -------
    out : Path
        The folder written.
    """
    _check_sizes(n_subjects, n_trials, seconds, 32, 40)
    synchrony, rating_bias = check_simulation_options(synchrony, rating_bias)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sfreq = DEAP_SFREQ_DAT
    n_base = int(round(baseline_seconds * sfreq))
    n_stim = int(round(seconds * sfreq))
    ratings = simulate_ratings(seed, n_subjects, n_trials, low=1.0, high=9.0, integer=False,
                               n_scales=4, rating_bias=rating_bias)
    courses = StimulusCourses(seed, synchrony)
    for s in progress(range(1, n_subjects + 1), desc="synthetic DEAP"):
        rng = subject_rng(seed, s)
        sim = SubjectSimulator(rng, effect, courses)
        data = np.empty((n_trials, 40, n_base + n_stim))
        for t in range(n_trials):
            v, a = (latent(r, 1.0, 9.0) for r in ratings.felt[s - 1, t, :2])
            course = sim.trial_course(t, n_stim / sfreq)
            for modality, (lo, hi) in DEAP_DAT_SLICES.items():
                names = DEAP_EEG_GENEVA if modality == "eeg" else [modality] * (hi - lo)
                data[t, lo:hi, :n_base] = sim.signal(modality, names, sfreq, n_base, 0.0, 0.0)
                data[t, lo:hi, n_base:] = sim.signal(modality, names, sfreq, n_stim, v, a,
                                                     course=course)
        write_py2_pickle({"labels": ratings.reported[s - 1], "data": data},
                         out / f"s{s:02d}.dat")
    logger.info("wrote %d synthetic DEAP subjects to %s", n_subjects, out)
    return out


def make_deap_bdf(out, n_subjects: int = 3, n_trials: int = 4, seconds: float = 10.0,
                  effect: float = 2.0, seed: int = 0, *, synchrony: float = 1.0,
                  rating_bias: float = 0.0, **kwargs) -> Path:
    """Write a synthetic ``data_original`` folder (BDF files + ``participant_ratings.csv``).

    See :func:`physiosync.datasets._bdf.make_deap_bdf` for the quirks it emits, and
    :func:`make_deap` for *synchrony* and *rating_bias*.
    """
    from ._bdf import make_deap_bdf as _make

    _check_sizes(n_subjects, n_trials, seconds, 32, 40)
    return _make(out, n_subjects=n_subjects, n_trials=n_trials, seconds=seconds,
                 effect=effect, seed=seed, synchrony=synchrony, rating_bias=rating_bias,
                 **kwargs)


def make_dreamer(out, n_subjects: int = 3, n_trials: int = 4, seconds: float = 10.0,
                 effect: float = 2.0, seed: int = 0, *, synchrony: float = 1.0,
                 rating_bias: float = 0.0, **kwargs) -> Path:
    """Write a synthetic ``DREAMER.mat`` (MATLAB v5, the real struct layout).

    See :func:`physiosync.datasets.dreamer.make_dreamer_mat` for details, and
    :func:`make_deap` for *synchrony* and *rating_bias*.
    """
    from .dreamer import make_dreamer_mat

    _check_sizes(n_subjects, n_trials, seconds, 23, 18)
    return make_dreamer_mat(out, n_subjects=n_subjects, n_trials=n_trials, seconds=seconds,
                            effect=effect, seed=seed, synchrony=synchrony,
                            rating_bias=rating_bias, **kwargs)
