"""Physiologically plausible signals with a tunable emotion effect and stimulus-locked dynamics.

The simulator draws one subject's idiosyncrasies (gains, offsets, alpha frequency,
resting heart rate, ...) once, then synthesises each trial from two latent scores,
``v`` (valence) and ``a`` (arousal), both scaled to [-1, 1] and constant over the
trial. The signals follow well-known correlates through static per-trial gains, scaled
by ``effect`` (0 makes them independent of the ratings):

* frontal alpha asymmetry follows valence (less left-frontal alpha when positive);
* beta/gamma power follows arousal;
* spontaneous skin-conductance responses (rate and size) follow arousal;
* heart rate (ECG, plethysmograph), respiration rate, trapezius EMG amplitude and the
  slope of skin temperature follow arousal; zygomatic EMG amplitude follows valence.

**Stimulus-locked dynamics** (``synchrony > 0``, see :class:`StimulusCourses`). Each
video ``k`` gets a zero-mean time course ``f_k(t)`` per scale (valence, arousal), smooth
on a time scale of about a second and shared by every subject who watches it. A subject
follows it as ``u(t) = 0.5 synchrony (g f_k(t - lag) + 0.5 n(t))``, with a
subject-specific gain ``g``, a lag under a third of a second and private noise
``n(t)``; at ``synchrony=1`` the shared part has SD 0.5 on the latent scale, whose
per-video levels span [-1, 1]. The level (the rating) and the course act on the
signals through separate terms: the level through the static per-trial gains listed
above, the course through the time-varying terms below, which do not depend on the
rating. The one exception is the course-driven skin-conductance response, whose size
is multiplied by the static arousal gain ``1 + 0.8 effect a``. During the stimulus
``u(t)`` drives, at the same seconds,

* EEG band-power envelopes: posterior alpha falls and anterior beta/gamma rises with
  the arousal course, frontal alpha asymmetry follows the valence course;
* a slow cortical component (a fixed topography times the course, the kind of
  stimulus-locked EEG that correlates across viewers of a film), which a linear read-out
  of the raw EEG sees; it lies below 1 Hz, so DEAP's preprocessed release (4-45 Hz)
  does not keep it;
* evoked responses to the video's salient events (scene cuts, sound onsets): each
  video gets event times and saliences shared by its viewers (one event every 2.5 s
  on average), and each event evokes a damped 6 Hz wave 150 ms later, with the slow
  component's topography and a latency that differs by about 10 ms between subjects.
  This phase-locked part is in the 4-45 Hz band, so inter-subject synchrony of the raw
  EEG survives the preprocessed release; it does not depend on the affect;
* phasic skin-conductance responses, whose timing and size follow the rectified
  arousal course; heart rate and respiration rate and depth; zygomatic and trapezius
  EMG amplitude.

The courses are drawn from the seed and the video alone and have mean zero over the
video, so they carry no information about the ratings: with ``effect=0`` the signals
stay independent of the labels for any ``synchrony``. Baselines (before the stimulus)
have no stimulus-locked part. With ``synchrony=0`` nothing of this is drawn and the
signals are exactly those of a simulator without it. This is ``affect="static"``, the
default; ``affect="dynamics"`` (:mod:`physiosync.synthetic._dynamics`) lets the
emotion itself move within the video instead.

Every trial also gets artefacts: blinks on frontal EEG and vertical EOG, an
occasional electrode pop, and slow drift.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..exceptions import PhysioSyncError
from ..params import SYNTHETIC_AFFECT, SYNTHETIC_CONTROLS
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


AFFECT_MODES, AFFECT_CONTROLS = SYNTHETIC_AFFECT, SYNTHETIC_CONTROLS
#: Share of the stimulus-locked variance that is affect-related when none is given.
DEFAULT_AFFECT_SHARE = 0.5


class SimulationOptions(NamedTuple):
    """The validated options of the synthetic writers (see :func:`check_simulation_options`)."""

    synchrony: float
    rating_bias: float
    affect: str
    affect_share: float | None
    control: str


def _number(name: str, value, hi: float, hint: str) -> float:
    """*value* as a float in ``[0, hi]`` (finite), or one error line naming *name*."""
    try:
        x = float(value)
    except (TypeError, ValueError):
        x = math.nan
    if isinstance(value, bool) or not (0.0 <= x <= hi) or math.isinf(x):
        bound = ">= 0" if math.isinf(hi) else f"in [0, {hi:g}]"
        raise PhysioSyncError(f"{name} must be a finite number {bound} ({hint}); got {value!r}.")
    return x


def check_simulation_options(synchrony: float, rating_bias: float, *, affect: str = "static",
                             affect_share: float | None = None,
                             control: str = "none") -> SimulationOptions:
    """Validate the simulation options of the synthetic writers.

    Parameters
    ----------
    synchrony : float
        Strength of the stimulus-locked fluctuation, finite and >= 0.
    rating_bias : float
        SD of the per-subject rating offset as a fraction of the rating range, in
        [0, 1].
    affect : {"static", "dynamics"}
        The affect model: ``"static"`` (the default, per-trial gains) or
        ``"dynamics"`` (the emotion follows each video's trajectory, see
        :mod:`physiosync.synthetic._dynamics`).
    affect_share : float | None
        Share, in [0, 1], of the stimulus-locked variance that is affect-related;
        ``affect="dynamics"`` only. ``None``: 0.5 there.
    control : {"none", "static-affect", "shuffled"}
        A paired control of ``affect="dynamics"``; ``"none"`` for the model itself.

    Returns
    -------
    SimulationOptions
        The values, numbers as floats and ``affect_share`` filled in for
        ``affect="dynamics"``.

    Raises
    ------
    PhysioSyncError
        If a value is not allowed, or an option of the dynamics mode is given with
        ``affect="static"``.
    """
    synchrony = _number("synchrony", synchrony, math.inf,
                        "0 turns the stimulus-locked fluctuation off, 1 is the default")
    rating_bias = _number("rating_bias", rating_bias, 1.0,
                          "a fraction of the rating range; 0 turns the per-subject rating "
                          "offsets off")
    for name, value, allowed in (("affect", affect, AFFECT_MODES),
                                 ("control", control, AFFECT_CONTROLS)):
        if not isinstance(value, str) or value not in allowed:
            raise PhysioSyncError(f"{name} must be one of {', '.join(allowed)}; got {value!r}.")
    if affect == "static":
        if affect_share is not None or control != "none":
            raise PhysioSyncError(
                "affect_share and control apply to affect='dynamics' only; got affect='static' "
                f"with affect_share={affect_share!r}, control={control!r}.")
        return SimulationOptions(synchrony, rating_bias, affect, None, control)
    share = DEFAULT_AFFECT_SHARE if affect_share is None else _number(
        "affect_share", affect_share, 1.0,
        "the share of the stimulus-locked variance that is affect-related")
    return SimulationOptions(synchrony, rating_bias, affect, share, control)


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


def _fluctuation(course, sfreq: float, n: int):
    """``(fv, fa)``: arrays from *course*, or the scalars 0 without one."""
    if course is None:
        return 0.0, 0.0
    fv, fa = course.at(sfreq, n)
    return fv, fa


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


class SubjectSimulator:
    """Synthesises the signals of one subject.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of randomness; the simulator consumes it, so one generator per subject
        keeps subjects independent of how many trials each has.
    effect : float
        Strength of the emotion effect; ``0`` makes signals independent of ratings,
        ``1`` is a moderate, ``3`` a strong effect.
    courses : StimulusCourses | None
        The stimuli's shared time courses; ``None`` (or ``synchrony=0``) means no
        stimulus-locked fluctuation. See :meth:`trial_course`.
    """

    def __init__(self, rng: np.random.Generator, effect: float = 1.0,
                 courses: StimulusCourses | None = None):
        self.rng = rng
        self.effect = float(effect)
        self.eeg_gain = float(rng.lognormal(0.0, 0.25))
        self.alpha_freq = float(rng.uniform(9.0, 11.5))
        self.alpha_amp = float(rng.uniform(1.5, 3.0))
        self.heart_rate = float(rng.uniform(60.0, 78.0))
        self.resp_rate = float(rng.uniform(0.2, 0.3))
        self.skin_conductance = float(rng.uniform(2.0, 10.0))  # µS, tonic level
        self.scr_rate = float(rng.uniform(2.0, 5.0))  # responses per minute at rest
        self.temperature = float(rng.uniform(29.0, 34.0))
        self.ppg_offset = float(rng.uniform(-3000.0, 3000.0))
        self.resp_offset = float(rng.uniform(-2000.0, 2000.0))
        self.courses = courses if courses is not None and courses.active else None
        if self.courses is not None:  # drawn last: without courses the stream is unchanged
            self.sync_gain = float(rng.lognormal(0.0, 0.25))
            self.sync_lag = float(rng.uniform(0.0, 0.3))  # s, the subject's reaction delay
            self.topo_jitter = int(rng.integers(2 ** 31))  # seed of the topography jitter

    def trial_course(self, video: int, seconds: float) -> TrialCourse | None:
        """The subject's fluctuation while watching *video* (``None`` without courses).

        ``0.5 * synchrony * (gain * f(t - lag) + 0.5 n(t))``: the video's shared course,
        delayed by the subject's lag plus a trial jitter of SD 50 ms, and private
        smooth noise ``n(t)`` of the same time scale. Pass the result to every
        :meth:`signal` call of the trial's stimulus, so that all modalities share it.
        """
        if self.courses is None:
            return None
        times, shared = self.courses.shared(video, seconds)
        lag = self.sync_lag + 0.05 * float(self.rng.standard_normal())
        private = _smooth_noise(self.rng, 2, times.size, self.courses.timescale * _COURSE_RATE)
        private /= np.maximum(private.std(axis=1, keepdims=True), 1e-12)
        lagged = np.vstack([np.interp(times - lag, times, row) for row in shared])
        values = (self.courses.synchrony * _COURSE_SD
                  * (self.sync_gain * lagged + _PRIVATE_SD * private))
        onsets, salience = self.courses.events(video, seconds)
        # A fixed latency offset per subject (from the topography seed, so that the
        # subject's stream of draws stays as it was).
        latency = np.random.default_rng([self.topo_jitter, 15]).normal(0.0, _ERP_LATENCY_SD)
        events = (onsets + latency, self.courses.synchrony * self.sync_gain * salience)
        return TrialCourse(times, values, events)

    # ----------------------------------------------------------------- helpers
    def _colored(self, n_ch: int, n: int, sfreq: float, shape) -> np.ndarray:
        """Gaussian noise whose amplitude spectrum is ``shape(freqs)`` (per channel rows)."""
        return colored_noise(self.rng, n_ch, n, sfreq, shape)

    def _beats(self, n: int, sfreq: float, rate_bpm) -> np.ndarray:
        """Sample indices of heart beats with mild heart-rate variability.

        *rate_bpm* is a number or, for a time-varying rate, an array of *n* samples.
        """
        rate = np.asarray(rate_bpm, dtype=float)
        rate_at = ((lambda t: float(rate)) if rate.ndim == 0  # noqa: E731
                   else (lambda t: float(rate[min(int(t * sfreq), n - 1)])))
        times, t = [], float(self.rng.uniform(0, 60.0 / rate_at(0.0)))
        while t < n / sfreq:
            times.append(t)
            t += 60.0 / rate_at(t) * (1 + 0.04 * self.rng.standard_normal())
        return (np.asarray(times) * sfreq).astype(int)

    def _topography(self, ch_names) -> tuple[np.ndarray, np.ndarray]:
        """Weights of the slow component on *ch_names* (see :func:`topography`)."""
        return topography(ch_names, self.topo_jitter)

    # ------------------------------------------------------------------ EEG
    def eeg(self, ch_names, sfreq: float, n: int, v: float, a: float,
            course: TrialCourse | None = None) -> np.ndarray:
        """EEG in µV, ``(len(ch_names), n)``."""
        e = self.effect
        n_ch = len(ch_names)
        side = np.array([-1.0 if c in _LEFT_FRONTAL else 1.0 if c in _RIGHT_FRONTAL else 0.0
                         for c in ch_names])[:, None]
        posterior = np.array([c in _POSTERIOR for c in ch_names])[:, None]

        def alpha_peak(f):
            return np.exp(-0.5 * ((f - self.alpha_freq) / 1.0) ** 2)

        def fast_band(f):
            return ((f >= 13) & (f <= 45)).astype(float)

        def pink(f):
            return 1.0 / np.sqrt(np.maximum(f, 1.0))

        alpha_gain = np.where(posterior, 0.6, 0.35) * (1 + 0.35 * e * v * side)
        alpha_gain = np.clip(alpha_gain, 0.02, None) * self.alpha_amp
        fast_gain = 0.25 * max(1 + 0.6 * e * a, 0.05)
        if course is None:
            x = self._colored(n_ch, n, sfreq,
                              lambda f: pink(f) + alpha_gain * alpha_peak(f)
                              + fast_gain * fast_band(f))
        else:
            # Time-varying band amplitudes: the same spectra as above, each band scaled
            # by its envelope sample by sample. Arousal lowers posterior alpha and
            # raises beta/gamma (most over anterior sites); valence moves the frontal
            # alpha asymmetry.
            fv, fa = course.at(sfreq, n)
            alpha_env = alpha_gain * np.exp(-_ALPHA_MOD * posterior * fa + _FAA_MOD * side * fv)
            fast_env = fast_gain * np.exp(_FAST_MOD * np.where(posterior, 0.3, 1.0) * fa)
            x = self._colored(n_ch, n, sfreq, pink)
            x += alpha_env * self._colored(n_ch, n, sfreq, alpha_peak)
            x += fast_env * self._colored(n_ch, n, sfreq, fast_band)
        x = x * 4.0 * self.eeg_gain
        if course is not None:
            topo_a, topo_v = self._topography(ch_names)
            x += _SLOW_UV * (topo_a[:, None] * fa + topo_v[:, None] * fv)
            x += _ERP_UV * topo_a[:, None] * course.evoked(sfreq, n)
        x += self._drift(n_ch, n, sfreq, 3.0)
        blink = self._blink_train(n, sfreq)
        x += np.array([_BLINK.get(c, 0.0) for c in ch_names])[:, None] * blink
        electrode_pop(self.rng, x, sfreq)
        return x

    def _drift(self, n_ch: int, n: int, sfreq: float, amp: float) -> np.ndarray:
        return slow_drift(self.rng, n_ch, n, sfreq, amp)

    def _blink_train(self, n: int, sfreq: float) -> np.ndarray:
        return blink_train(self.rng, n, sfreq)

    # ------------------------------------------------------------ peripheral
    def eog(self, n: int, sfreq: float, v: float, a: float,
            course: TrialCourse | None = None) -> np.ndarray:
        """hEOG and vEOG in µV, ``(2, n)``."""
        x = self._colored(2, n, sfreq, lambda f: 1.0 / np.maximum(f, 0.5)) * 10
        steps = np.cumsum(self.rng.standard_normal(n) * (self.rng.random(n) < 2 / sfreq)) * 40
        x[0] += steps
        x[1] += 2.5 * self._blink_train(n, sfreq)
        return x

    def emg(self, n: int, sfreq: float, v: float, a: float,
            course: TrialCourse | None = None) -> np.ndarray:
        """zygomaticus and trapezius EMG in µV, ``(2, n)``."""
        fv, fa = _fluctuation(course, sfreq, n)
        x = self._colored(2, n, sfreq, lambda f: (f > 20).astype(float) + 0.05)
        # The course scales the amplitude (log-linearly, so that it leaves the trial's
        # mean level, set by the rating, in place).
        x[0] *= 3.0 * max(1 + 0.5 * self.effect * v, 0.1) * np.exp(0.15 * fv)
        x[1] *= 3.0 * max(1 + 0.3 * self.effect * a, 0.1) * np.exp(0.15 * fa)
        return x

    def gsr(self, n: int, sfreq: float, v: float, a: float,
            course: TrialCourse | None = None) -> np.ndarray:
        """Skin resistance in Ohm, ``(1, n)`` (the DEAP release's GSR unit)."""
        e = self.effect
        t = np.arange(n) / sfreq
        rate = self.scr_rate * max(1 + 0.8 * e * a, 0.1) / 60.0
        kt = np.arange(int(10 * sfreq)) / sfreq
        kernel = np.exp(-kt / 2.0) - np.exp(-kt / 0.7)
        # Spontaneous SCRs from 10 s (the kernel's length) before the segment on, so
        # that the segment starts in the steady state: otherwise the phasic level
        # would rise over the first seconds of every segment, the same for all
        # subjects, which is a position-locked signal even without stimulus locking.
        warm = kt.size
        impulses = np.zeros(warm + n)
        n_scr = self.rng.poisson(rate * (warm + n) / sfreq)
        amp = 0.3 * max(1 + 0.8 * e * a, 0.1)
        impulses[self.rng.integers(0, warm + n, n_scr)] += amp * self.rng.uniform(0.5, 1.5, n_scr)
        phasic = np.convolve(impulses, kernel / kernel.max())[warm:warm + n]
        if course is not None:
            # Stimulus-locked SCRs: the sudomotor drive follows the rectified arousal
            # course, so responses start where the course rises above its mean, and
            # are larger the higher it goes.
            _, fa = course.at(sfreq, n)
            drive = _SCR_US * max(1 + 0.8 * e * a, 0.1) * np.clip(fa, 0.0, None)
            phasic += np.convolve(drive, kernel / kernel.sum())[:n]
        # Slow tonic fluctuation with a random phase: nothing in it is locked to the
        # stimulus, so it cannot masquerade as inter-subject synchrony.
        drift = np.sin(2 * np.pi * t / 40 + self.rng.uniform(0, 2 * np.pi))
        conductance = self.skin_conductance * (1 + 0.01 * drift) + phasic
        conductance += 0.005 * self.rng.standard_normal(n)
        return (1e6 / np.maximum(conductance, 0.1))[None, :]

    def _heart_rate(self, a: float, course, sfreq: float, n: int):
        _, fa = _fluctuation(course, sfreq, n)
        return self.heart_rate + 10.0 * self.effect * a + 6.0 * fa

    def ecg(self, n: int, sfreq: float, v: float, a: float, n_leads: int = 1,
            course: TrialCourse | None = None) -> np.ndarray:
        """ECG in µV, ``(n_leads, n)``: PQRST complexes at an arousal-dependent rate."""
        beats = self._beats(n, sfreq, self._heart_rate(a, course, sfreq, n))
        return (ecg_leads(beats, sfreq, n, n_leads)
                + self._colored(n_leads, n, sfreq, lambda f: 1 / np.maximum(f, 0.5)) * 20)

    def ppg(self, n: int, sfreq: float, v: float, a: float,
            course: TrialCourse | None = None) -> np.ndarray:
        """Plethysmograph in arbitrary units with a large offset, ``(1, n)``."""
        beats = self._beats(n, sfreq, self._heart_rate(a, course, sfreq, n))
        kt = np.arange(int(0.8 * sfreq)) / sfreq
        pulse = (kt / 0.12) * np.exp(1 - kt / 0.12)
        train = np.zeros(n)
        train[beats] = 1.0
        x = np.convolve(train, pulse)[:n] * 600.0
        return (self.ppg_offset + x + self._drift(1, n, sfreq, 200.0)[0])[None, :]

    def resp(self, n: int, sfreq: float, v: float, a: float,
             course: TrialCourse | None = None) -> np.ndarray:
        """Respiration belt in arbitrary units with a large offset, ``(1, n)``."""
        t = np.arange(n) / sfreq
        rate = self.resp_rate * (1 + 0.15 * self.effect * a)
        if course is None:
            x = 800.0 * np.sin(2 * np.pi * rate * t + self.rng.uniform(0, 2 * np.pi))
        else:  # faster and deeper breathing while the arousal course is high
            _, fa = course.at(sfreq, n)
            phase = 2 * np.pi * np.cumsum(rate * np.clip(1 + 0.15 * fa, 0.5, None)) / sfreq
            depth = 800.0 * np.clip(1 + 0.2 * fa, 0.3, None)
            x = depth * np.sin(phase + self.rng.uniform(0, 2 * np.pi))
        return (self.resp_offset + x + 30 * self.rng.standard_normal(n))[None, :]

    def temp(self, n: int, sfreq: float, v: float, a: float,
             course: TrialCourse | None = None) -> np.ndarray:
        """Skin temperature in °C, ``(1, n)``."""
        t = np.arange(n) / sfreq
        x = self.temperature - 0.002 * t * (0.5 + 0.3 * self.effect * a)
        return (x + 0.005 * self.rng.standard_normal(n))[None, :]

    # ------------------------------------------------------------- dispatch
    def signal(self, modality: str, ch_names, sfreq: float, n: int, v: float, a: float,
               course: TrialCourse | None = None):
        """Signal of *modality* with ``len(ch_names)`` rows and *n* samples, release units.

        *course* (from :meth:`trial_course`) adds the stimulus-locked fluctuation; leave
        it ``None`` outside stimuli (baselines, fixation).
        """
        if modality == "eeg":
            return self.eeg(ch_names, sfreq, n, v, a, course=course)
        if modality == "ecg":
            return self.ecg(n, sfreq, v, a, n_leads=len(ch_names), course=course)
        return getattr(self, modality)(n, sfreq, v, a, course=course)


class RatingDraw(NamedTuple):
    """Ratings of a synthetic dataset, ``(n_subjects, n_trials, n_scales)`` each.

    Attributes
    ----------
    reported : ndarray
        The ratings written to the files (the labels).
    felt : ndarray
        What drives the signals: the reported ratings without the subject's rating
        offset. Identical to *reported* when ``rating_bias=0``.
    """

    reported: np.ndarray
    felt: np.ndarray


@fill_doc
def simulate_ratings(seed, n_subjects: int, n_trials: int, *, low: float, high: float,
                     integer: bool, n_scales: int, exact_mid_fraction: float = 0.05,
                     rating_bias: float = 0.0) -> RatingDraw:
    """Ratings with a per-video consensus, and optional per-subject rating priors.

    Every video (trial) gets a consensus rating on each scale; each subject rates it
    with individual noise, so subjects
    mostly agree, as in the real datasets. A fraction of the continuous ratings is
    set to exactly the scale midpoint, which is where threshold bugs (``<= 5`` versus
    ``< 5``) show.

    Parameters
    ----------
    %(synthetic_seed)s
    n_subjects, n_trials, n_scales : int
        Shape of the result.
    low, high : float
        Rating scale.
    integer : bool
        Round to whole numbers (DREAMER) instead of two decimals (DEAP).
    exact_mid_fraction : float
        Share of continuous ratings set to the midpoint.
    rating_bias : float
        SD of a per-subject, per-scale offset of the reported ratings, as a fraction
        of ``high - low`` (0.25 on DEAP's 1-9 scale: SD 2 points), so that some
        subjects rate most videos high and others most low. It is a response style:
        it shifts the reported ratings only, not the signals. ``0`` (no offsets)
        gives exactly the ratings of earlier versions.

    Returns
    -------
    RatingDraw
        ``reported`` and ``felt`` ratings.
    """
    parts = rating_parts(seed, n_subjects, n_trials, low=low, high=high, integer=integer,
                         n_scales=n_scales, exact_mid_fraction=exact_mid_fraction,
                         rating_bias=rating_bias)
    felt = parts.consensus[None] + parts.noise
    reported = parts.finish(felt + parts.offset)
    return RatingDraw(reported, parts.finish(felt, mid=False) if rating_bias
                      else reported.copy())


class RatingParts(NamedTuple):
    """The random parts of a rating draw (see :func:`rating_parts`).

    Attributes
    ----------
    consensus : ndarray, shape (n_trials, n_scales)
        Each video's consensus rating.
    noise : ndarray, shape (n_subjects, n_trials, n_scales)
        Each subject's individual deviation from it.
    offset : ndarray | float
        The subject's response style, ``(n_subjects, 1, n_scales)``, or 0.
    mid : ndarray of bool | None
        Which continuous ratings are set to the scale midpoint (None for integers).
    low, high : float
        The scale.
    integer : bool
        Whether ratings are whole numbers.
    """

    consensus: np.ndarray
    noise: np.ndarray
    offset: np.ndarray | float
    mid: np.ndarray | None
    low: float
    high: float
    integer: bool

    def finish(self, r: np.ndarray, *, mid: bool = True) -> np.ndarray:
        """Ratings *r* clipped to the scale, rounded, and (with *mid*) the midpoint quirk."""
        r = np.clip(r, self.low, self.high)
        r = np.rint(r) if self.integer else np.round(r, 2)
        if mid and self.mid is not None:
            r[self.mid] = (self.low + self.high) / 2.0
        return r


def rating_parts(seed, n_subjects: int, n_trials: int, *, low: float, high: float,
                 integer: bool, n_scales: int, exact_mid_fraction: float = 0.05,
                 rating_bias: float = 0.0) -> RatingParts:
    """The random draws behind :func:`simulate_ratings`, from their own streams.

    Parameters are those of :func:`simulate_ratings`.

    Returns
    -------
    RatingParts
    """
    rng = np.random.default_rng([int(seed), 7919])
    consensus = rng.uniform(low, high, (n_trials, n_scales))
    noise = rng.normal(0.0, (high - low) / 6.0, (n_subjects, n_trials, n_scales))
    offset = 0.0
    if rating_bias:  # its own stream: the ratings without offsets stay as they were
        offset = np.random.default_rng([int(seed), 7919, 1]).normal(
            0.0, rating_bias * (high - low), (n_subjects, 1, n_scales))
    mid = None if integer else rng.random((n_subjects, n_trials, n_scales)) < exact_mid_fraction
    return RatingParts(consensus, noise, offset, mid, low, high, integer)


def draw_ratings(seed, n_subjects: int, n_trials: int, *, low: float, high: float,
                 integer: bool, n_scales: int, exact_mid_fraction: float = 0.05,
                 rating_bias: float = 0.0):
    """Reported ratings ``(n_subjects, n_trials, n_scales)``; see :func:`simulate_ratings`."""
    return simulate_ratings(seed, n_subjects, n_trials, low=low, high=high, integer=integer,
                            n_scales=n_scales, exact_mid_fraction=exact_mid_fraction,
                            rating_bias=rating_bias).reported


def latent(rating, low: float, high: float) -> float:
    """Map a rating on ``[low, high]`` to ``[-1, 1]``."""
    return float(2.0 * (rating - low) / (high - low) - 1.0)


def check_sizes(n_subjects, n_trials, seconds, max_subjects, max_trials):
    """Refuse sizes a writer cannot honour, naming the parameter and its range."""
    for name, value, hi in (("n_subjects", n_subjects, max_subjects),
                            ("n_trials", n_trials, max_trials)):
        if not isinstance(value, (int, np.integer)) or not 1 <= value <= hi:
            raise PhysioSyncError(f"{name} must be an integer in [1, {hi}], got {value!r}.")
    if not seconds > 0:
        raise PhysioSyncError(f"seconds must be positive, got {seconds!r}.")


def subject_rng(seed: int, subject: int) -> np.random.Generator:
    """The random generator of one synthetic subject (independent of the others)."""
    return np.random.default_rng([int(seed), int(subject)])
