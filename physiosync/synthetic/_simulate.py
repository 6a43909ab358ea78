"""The static-affect subject: signals with a tunable emotion effect and stimulus-locked dynamics.

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
from ._generators import (_ALPHA_MOD, _BLINK, _COURSE_RATE, _COURSE_SD, _ERP_LATENCY_SD, _ERP_UV,
                          _FAA_MOD, _FAST_MOD, _LEFT_FRONTAL, _POSTERIOR, _PRIVATE_SD,
                          _RIGHT_FRONTAL, _SCR_US, _SLOW_UV, StimulusCourses, TrialCourse,
                          _smooth_noise, blink_train, colored_noise, ecg_leads, electrode_pop,
                          slow_drift, topography)


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


def _fluctuation(course, sfreq: float, n: int):
    """``(fv, fa)``: arrays from *course*, or the scalars 0 without one."""
    if course is None:
        return 0.0, 0.0
    fv, fa = course.at(sfreq, n)
    return fv, fa


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
