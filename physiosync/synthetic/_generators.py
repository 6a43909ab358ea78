"""Signal generators of the synthetic data: noise, artefacts, heart beats, stimulus courses.

Pure building blocks, each a function of its random generator (or seed) and sizes,
shared by the static-affect subject (:mod:`physiosync.synthetic._simulate`) and the
affect-dynamics subject (:mod:`physiosync.synthetic._dynamics`):

* the electrode groups and the constants of the stimulus-locked model;
* :class:`StimulusCourses` (each video's shared time course and salient events) and
  :class:`TrialCourse` (one subject's course during one trial), with
  :func:`evoked_responses`;
* coloured noise, blinks, slow drift, electrode pops, the slow component's
  topography and ECG complexes.
"""

from __future__ import annotations

import math

import numpy as np

from .._utils.docs import fill_doc

_LEFT_FRONTAL = {"Fp1", "AF3", "F3", "F7", "FC5", "FC1"}
_RIGHT_FRONTAL = {"Fp2", "AF4", "F4", "F8", "FC6", "FC2"}
_POSTERIOR = {"O1", "O2", "Oz", "PO3", "PO4", "P3", "P4", "P7", "P8", "Pz"}
_BLINK = {"Fp1": 1.0, "Fp2": 1.0, "AF3": 0.6, "AF4": 0.6, "F7": 0.3, "F8": 0.3,
          "F3": 0.3, "F4": 0.3, "Fz": 0.3}
_LEFT_TEMPORAL = {"T7", "CP5", "P7"}
_RIGHT_TEMPORAL = {"T8", "CP6", "P8"}

#: Sampling rate (Hz) of the stimulus time courses; signals interpolate them.
_COURSE_RATE = 32.0
#: Seconds of course drawn before and after a stimulus, so that lagged subjects stay inside.
_COURSE_PAD_S = 2.0
#: SD of the shared fluctuation at ``synchrony=1``, in units of the latent scores (whose
#: per-video levels span [-1, 1]): half the level's half-range.
_COURSE_SD = 0.5
#: SD of a subject's private fluctuation, relative to the shared course.
_PRIVATE_SD = 0.5
#: Log-amplitude change of posterior alpha per unit of arousal course.
_ALPHA_MOD = 0.5
#: Log-amplitude change of frontal alpha asymmetry per unit of valence course.
_FAA_MOD = 0.15
#: Log-amplitude change of anterior beta/gamma per unit of arousal course.
_FAST_MOD = 0.5
#: Amplitude (µV) of the slow cortical component per unit of course.
_SLOW_UV = 3.0
#: Skin-conductance level (µS) that a steady unit of rectified arousal course drives.
_SCR_US = 1.5
#: Mean interval (s) between a video's salient events (scene cuts, sound onsets).
_EVENT_INTERVAL_S = 2.5
#: Peak amplitude (µV) of the evoked response to an event of salience 1.
_ERP_UV = 6.0
#: Centre frequency (Hz), latency (s) and envelope SD (s) of the evoked response: a
#: damped theta-band wave, most of whose energy survives DEAP's 4-45 Hz band-pass.
_ERP_FREQ, _ERP_LATENCY, _ERP_WIDTH = 6.0, 0.15, 0.06
#: SD (s) of a subject's evoked-response latency around the common one.
_ERP_LATENCY_SD = 0.010



def _smooth_noise(rng: np.random.Generator, n_rows: int, n: int, sigma: float) -> np.ndarray:
    """Gaussian white noise smoothed by a Gaussian of *sigma* samples, ``(n_rows, n)``."""
    from scipy.ndimage import gaussian_filter1d

    return gaussian_filter1d(rng.standard_normal((n_rows, n)), sigma, axis=1, mode="reflect")


@fill_doc
class StimulusCourses:
    """Affective time courses of the stimuli, shared by every subject who watches them.

    Stimulus ``k`` gets one zero-mean fluctuation per scale (valence, arousal):
    Gaussian white noise smoothed over *timescale* seconds, scaled to mean 0 and SD 1
    over the stimulus. It depends on ``(seed, k)`` and the stimulus length only, never
    on the ratings, and it is the same for every subject.

    Parameters
    ----------
    %(synthetic_seed)s
    synchrony : float
        Strength of the fluctuation in the subjects' latent scores: at 1 the shared
        part has SD 0.5 there (the rating level has strength ``effect``); ``0`` turns
        the courses off.
    timescale : float
        SD, in seconds, of the Gaussian that smooths the courses.
    stream : int
        Identifier of the random stream of the courses (one per kind of course).
    """

    def __init__(self, seed: int, synchrony: float = 1.0, *, timescale: float = 1.0,
                 stream: int = 4099):
        self.seed = int(seed)
        self.stream = int(stream)
        self.synchrony = float(synchrony)
        self.timescale = float(timescale)
        self._cache: dict = {}

    @property
    def active(self) -> bool:
        """Whether the courses are on (``synchrony > 0``)."""
        return self.synchrony > 0

    def shared(self, video: int, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """The course of *video*: times ``(m,)`` in s and values ``(2, m)``.

        The times run from ``-2`` s to ``seconds + 2`` s; the values have mean 0 and
        SD 1 over ``[0, seconds]``.
        """
        key = (int(video), float(seconds))
        if key not in self._cache:
            rng = np.random.default_rng([self.seed, self.stream, int(video)])
            m = int(math.ceil((seconds + 2 * _COURSE_PAD_S) * _COURSE_RATE)) + 1
            times = np.arange(m) / _COURSE_RATE - _COURSE_PAD_S
            values = _smooth_noise(rng, 2, m, self.timescale * _COURSE_RATE)
            inside = (times >= 0) & (times <= seconds)
            values -= values[:, inside].mean(axis=1, keepdims=True)
            values /= np.maximum(values[:, inside].std(axis=1, keepdims=True), 1e-12)
            self._cache[key] = (times, values)
        return self._cache[key]


    def events(self, video: int, seconds: float) -> tuple[np.ndarray, np.ndarray]:
        """Salient events of *video*: onset times ``(k,)`` in s and saliences ``(k,)``.

        A Poisson process of mean interval 2.5 s over ``[0, seconds)``, with saliences
        uniform in [0.5, 1.5]; a pure function of ``(seed, video, seconds)``, drawn from
        a stream of its own so that the courses stay as they were.
        """
        key = ("events", int(video), float(seconds))
        if key not in self._cache:
            rng = np.random.default_rng([self.seed, 4111, int(video)])
            n_max = int(math.ceil(seconds / _EVENT_INTERVAL_S * 3)) + 10
            onsets = np.cumsum(rng.exponential(_EVENT_INTERVAL_S, n_max))
            salience = rng.uniform(0.5, 1.5, n_max)
            keep = onsets < seconds
            self._cache[key] = (onsets[keep], salience[keep])
        return self._cache[key]


class TrialCourse:
    """One subject's stimulus-locked fluctuation during one trial.

    Parameters
    ----------
    times : ndarray, shape (m,)
        Times in seconds from the stimulus onset.
    values : ndarray, shape (2, m)
        Valence and arousal fluctuation (already scaled by the synchrony).
    events : tuple of ndarray | None
        Onset times (s, with the subject's latency) and amplitudes (already scaled by
        the synchrony) of the evoked responses; None for none.
    """

    def __init__(self, times: np.ndarray, values: np.ndarray, events=None):
        self.times, self.values = times, values
        self.events = events

    def evoked(self, sfreq: float, n: int) -> np.ndarray:
        """The evoked responses at the samples of an *n*-sample signal, ``(n,)``."""
        return evoked_responses(self.events, sfreq, n)

    def at(self, sfreq: float, n: int) -> np.ndarray:
        """Valence and arousal fluctuation at the samples of an *n*-sample signal, ``(2, n)``."""
        t = np.arange(n) / float(sfreq)
        return np.vstack([np.interp(t, self.times, row) for row in self.values])


def evoked_responses(events, sfreq: float, n: int) -> np.ndarray:
    """Evoked responses to *events* (onsets in s, amplitudes) at *n* samples, ``(n,)``.

    Each event evokes a damped 6 Hz wave 150 ms after its onset; ``None`` gives zeros.
    """
    out = np.zeros(n)
    if events is None:
        return out
    t = np.arange(n) / float(sfreq)
    for onset, amp in zip(*events):
        lo, hi = np.searchsorted(t, [onset, onset + _ERP_LATENCY + 4 * _ERP_WIDTH])
        u = t[lo:hi] - onset - _ERP_LATENCY
        out[lo:hi] += amp * np.exp(-0.5 * (u / _ERP_WIDTH) ** 2) * np.cos(
            2 * np.pi * _ERP_FREQ * u)
    return out


def colored_noise(rng: np.random.Generator, n_ch: int, n: int, sfreq: float,
                  shape) -> np.ndarray:
    """Gaussian noise from *rng* whose amplitude spectrum is ``shape(freqs)``, ``(n_ch, n)``."""
    freqs = np.fft.rfftfreq(n, 1.0 / sfreq)
    spec = rng.standard_normal((n_ch, freqs.size)) + 1j * rng.standard_normal((n_ch, freqs.size))
    spec *= shape(freqs)
    return np.fft.irfft(spec, n=n, axis=-1) * np.sqrt(n)


def blink_train(rng: np.random.Generator, n: int, sfreq: float) -> np.ndarray:
    """Blinks (80 µV Hann pulses of 0.4 s, one every 4 s on average) at *n* samples."""
    out = np.zeros(n)
    n_blinks = rng.poisson(n / sfreq / 4.0)
    width = max(int(0.2 * sfreq), 1)
    kernel = np.hanning(2 * width + 1) * 80.0
    for at in rng.integers(0, n, n_blinks):
        lo, hi = max(at - width, 0), min(at + width + 1, n)
        out[lo:hi] += kernel[lo - at + width:hi - at + width]
    return out


def slow_drift(rng: np.random.Generator, n_ch: int, n: int, sfreq: float,
               amp: float) -> np.ndarray:
    """A 0.05 Hz sine of amplitude *amp* and random phase per channel, ``(n_ch, n)``."""
    t = np.arange(n) / sfreq
    phase = rng.uniform(0, 2 * np.pi, (n_ch, 1))
    return amp * np.sin(2 * np.pi * 0.05 * t + phase)


def electrode_pop(rng: np.random.Generator, x: np.ndarray, sfreq: float) -> None:
    """With probability 0.3, a 30 µV step decaying over 1 s on one channel of *x* (in place)."""
    n_ch, n = x.shape
    if rng.random() < 0.3:
        ch, at = rng.integers(n_ch), rng.integers(n)
        x[ch, at:] += rng.choice([-1, 1]) * 30 * np.exp(-np.arange(n - at) / sfreq)


def topography(ch_names, jitter_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Weights of the slow component and evoked responses: ``(arousal, valence)`` rows.

    The arousal map is anterior-positive and posterior-negative, the valence map
    left-right antisymmetric; both get a small jitter drawn from *jitter_seed*.
    """
    front = _LEFT_FRONTAL | _RIGHT_FRONTAL | {"Fz", "Cz"}
    arousal = np.array([1.0 if c in front else -1.0 if c in _POSTERIOR else 0.2
                        for c in ch_names])
    valence = np.array([-1.0 if c in _LEFT_FRONTAL | _LEFT_TEMPORAL
                        else 1.0 if c in _RIGHT_FRONTAL | _RIGHT_TEMPORAL else 0.0
                        for c in ch_names])
    jitter = np.random.default_rng([jitter_seed, len(ch_names)]).normal(
        0.0, 0.2, (2, len(ch_names)))
    return arousal + jitter[0], valence + jitter[1]



def ecg_leads(beats, sfreq: float, n: int, n_leads: int) -> np.ndarray:
    """Noise-free ECG in µV, ``(n_leads, n)``: one PQRST complex at each beat sample.

    The complex is a sum of Gaussians (P, Q, R, S, T) with the R peak at the beat; the
    leads are the same trace scaled by 1, 0.8 and 1.2.
    """
    kt = np.arange(-int(0.3 * sfreq), int(0.45 * sfreq)) / sfreq
    wave = (0.15 * np.exp(-0.5 * ((kt + 0.2) / 0.025) ** 2)
            - 0.1 * np.exp(-0.5 * ((kt + 0.03) / 0.01) ** 2)
            + 1.0 * np.exp(-0.5 * (kt / 0.01) ** 2)
            - 0.15 * np.exp(-0.5 * ((kt - 0.03) / 0.01) ** 2)
            + 0.3 * np.exp(-0.5 * ((kt - 0.25) / 0.04) ** 2)) * 1000.0
    train = np.zeros(n)
    train[beats] = 1.0
    zero = int(0.3 * sfreq)  # index of t = 0 (the R peak) in the template
    ecg = np.convolve(train, wave)[zero:zero + n]
    return np.vstack([ecg * g for g in (1.0, 0.8, 1.2)[:n_leads]])
