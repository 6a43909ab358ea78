"""Affect as shared dynamics (``affect="dynamics"``), with paired controls.

In this mode the emotion is not a constant of the trial: it moves with the video, and
what viewers share is the emotion itself.

**The felt state.** Each video ``k`` has one latent valence and arousal trajectory
``A_k(t) = L_k + a f_k(t)`` on the [-1, 1] scale: ``L_k`` is the video's consensus
level (the consensus rating of :func:`~physiosync.synthetic._ratings.rating_parts`
mapped to [-1, 1]), ``f_k`` a smooth zero-mean course of SD 1 (the static mode's
course, :class:`~physiosync.synthetic._generators.StimulusCourses`), so the trajectory's
mean over the video is ``L_k``. A viewer ``s`` feels

``felt(t) = g_s A_k(t - lag) + appraisal_{s,k} + p n_{s,k}(t)``

a gain-scaled (``g_s``, log-normal, SD 0.25), lagged (``lag`` under 0.3 s plus 50 ms of
trial jitter) copy of the trajectory, plus an individual appraisal of the video (a
per-subject-per-video offset, the static mode's rating noise) and private smooth noise.

**The ratings** summarise the felt trajectory over the video: ``0.5 mean + 0.25 peak +
0.25 end`` (peak: the highest arousal, the most extreme valence; end: the mean of the
last 2 s; the peak-end rule), mapped to the rating scale, plus the subject's response
style (``rating_bias``), clipped and rounded as in the static mode. Dominance and
liking keep the static mode's draw.

**The physiology** follows the instantaneous state ``x(t) = effect * felt(t) +
unfelt(t)``, with no separate static label gains: ``effect`` scales the coupling of
physiology to the felt state, and ``effect=0`` leaves only the affect-free
``unfelt(t)``. See :class:`DynamicSubject` for each coupling.

**Shared variance.** The stimulus-locked fluctuation has SD ``sigma = 0.5 *
synchrony`` (as in the static mode). ``affect_share`` (``rho``) splits it: the affect
trajectory's course gets SD ``a = sigma sqrt(rho)``, and an affect-free course ``o_k(t)``
of its own (standing for what moves physiology without emotion: luminance, loudness,
cuts) gets SD ``sigma sqrt(1 - rho)`` and enters ``unfelt(t)``, with the same subject
gain and lag. The evoked responses to each video's salient events are affect-free in
their timing (as in the static mode); their size scales with the arousal state at the
event.

**Paired controls** (``control``), each changing one part and nothing else, because
every component is drawn from a stream of its own (``np.random.default_rng([seed,
stream, ...])``, the ids below): the same seed gives the same subject traits, private
felt noise, appraisals, signal noise, artefacts and baselines in every variant.

* ``"static-affect"``: the emotion is constant over the trial, ``felt = g_s L_k +
  appraisal``, and acts through static per-trial gains (frontal alpha asymmetry,
  beta/gamma power, skin-conductance response size, heart rate, respiration, EMG,
  temperature); the same stimulus-locked course and private noise are there but
  unfelt: they move the physiology without entering the ratings or being scaled by
  ``effect``, and posterior alpha and the rate of skin-conductance responses follow
  them only (the static mode's structure).
* ``"shuffled"``: each subject's shared part (level, course, affect-free course and
  events) comes from another video, at a circular time shift, a random permutation of
  the videos per subject: every marginal is kept, but viewers of the same video no
  longer share anything.
* ``synchrony=0`` (no separate control value): no stimulus-locked fluctuation; the
  felt state is the constant ``g_s L_k + appraisal``, and viewers share the level only.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from scipy.signal import lfilter

from ._generators import (_BLINK, _COURSE_PAD_S, _COURSE_RATE, _COURSE_SD, _ERP_LATENCY_SD,
                          _ERP_UV, _LEFT_FRONTAL, _POSTERIOR, _PRIVATE_SD, _RIGHT_FRONTAL,
                          StimulusCourses, _smooth_noise, blink_train, colored_noise, ecg_leads,
                          electrode_pop, evoked_responses, slow_drift, topography)
from ._ratings import latent, rating_parts, simulate_ratings
from ._simulate import SubjectSimulator, subject_rng
from .._utils.docs import fill_doc

# ------------------------------------------------------------------ random streams
#: Stream of each video's affect-free stimulus-locked course ``[seed, id, video]``.
STREAM_FREE_COURSE = 4127
#: Stream of a subject's physiological traits ``[seed, id, subject]``.
STREAM_TRAITS = 5101
#: Stream of a subject's felt-state gain and lag ``[seed, id, subject]``.
STREAM_FELT_TRAITS = 5102
#: Stream of a subject's private felt noise in one video ``[seed, id, subject, video]``.
STREAM_PRIVATE = 5103
#: Stream of the shuffled control's assignment of courses ``[seed, id, subject]``.
STREAM_SHUFFLE = 5107
#: Stream of the artefacts of one segment (blinks, drift, pops) ``[seed, id, subject,
#: segment]``; EEG and EOG share its blinks.
STREAM_ARTEFACTS = 5200
#: Streams of each signal's own noise ``[seed, id, subject, segment]``.
STREAM_SIGNAL = {"eeg": 5211, "eog": 5212, "emg": 5213, "gsr": 5214, "resp": 5215,
                 "heart": 5216, "temp": 5217}

# ------------------------------------------------------------------- felt state
#: Weights of the mean, the peak and the end of the felt trajectory in a rating.
_RATING_WEIGHTS = (0.5, 0.25, 0.25)
#: Seconds at the end of a video whose mean felt state is the "end" of the rating.
_END_S = 2.0
#: SD of a subject's trial-to-trial jitter of the lag (s).
_LAG_JITTER_S = 0.05

# -------------------------------------------------------------------- physiology
#: Skin-conductance responses (SCRs): resting rate (per minute) is a subject trait;
#: the log-rate rises by this much per unit of arousal state.
_SCR_RATE_LOG = 0.8
#: Cap of the SCR rate relative to rest (thinning needs a maximal rate).
_SCR_RATE_CAP = 6.0
#: Mean SCR amplitude at rest (µS) and its log-change per unit of arousal.
_SCR_AMP_US, _SCR_AMP_LOG = 0.3, 0.5
#: Latency (s) from an eliciting moment to the SCR onset: uniform in this range.
_SCR_LATENCY_S = (1.0, 3.0)
#: Rise and decay time constants (s) of the bi-exponential SCR shape.
_SCR_TAU_RISE, _SCR_TAU_DECAY = 0.75, 2.0
#: Share of each SCR's amplitude that the tonic level keeps, and its decay (s).
_SCL_CARRY, _SCL_TAU = 0.3, 30.0
#: Seconds simulated before a segment, so that SCRs and the tonic level start in their
#: steady state (at rest) instead of rising over the first seconds of every segment.
_SCR_WARM_S = 60.0
#: Heart rate change (beats per minute) per unit of arousal state.
_HR_BPM = 8.0
#: SD of the beat-to-beat variability of the heart period (relative).
_HRV_SD = 0.04
#: Relative change of breathing rate and depth per unit of arousal state.
_RESP_RATE, _RESP_DEPTH = 0.15, 0.2
#: Log-amplitude change of posterior alpha per unit of arousal state (it falls).
_ALPHA_LOG = 0.5
#: Log-amplitude change of frontal alpha asymmetry per unit of valence state, and the
#: delay (s) with which it follows the valence state.
_FAA_LOG, _FAA_DELAY_S = 0.3, 1.0
#: Log-amplitude change of anterior beta/gamma per unit of arousal state.
_FAST_LOG = 0.5
#: Zygomatic EMG bursts: resting rate (per minute), log-rate change per unit of valence
#: state, cap relative to rest, and burst length (s).
_ZYG_RATE, _ZYG_RATE_LOG, _ZYG_CAP, _ZYG_BURST_S = 3.0, 1.0, 8.0, 0.6
#: Log-amplitude change of trapezius EMG tone per unit of arousal state.
_TRAP_LOG = 0.3
#: Log-amplitude change of an evoked response per unit of arousal state at its event.
_ERP_LOG = 0.5
#: Skin-temperature slope (°C/s) at rest and its change per unit of arousal state.
_TEMP_SLOPE, _TEMP_SLOPE_AROUSAL = 0.001, 0.0006
#: Amplitude (µV) of the slow cortical component per unit of state (below 1 Hz).
_SLOW_UV = 3.0


class TrialAffect(NamedTuple):
    """One subject's affective state during one video, on the course grid.

    Attributes
    ----------
    times : ndarray, shape (m,)
        Seconds from the stimulus onset (``-2`` to ``seconds + 2``, 32 per second).
    felt : ndarray, shape (2, m)
        The felt valence and arousal on the [-1, 1] scale.
    unfelt : ndarray, shape (2, m)
        The stimulus-locked drive that moves physiology without being felt.
    dynamic : bool
        Whether the physiology follows *felt* moment by moment (``affect="dynamics"``)
        or through static per-trial gains of its mean (``control="static-affect"``).
    events : tuple of ndarray | None
        Onsets (s, with the subject's latency) and sizes of the evoked responses.
    """

    times: np.ndarray
    felt: np.ndarray
    unfelt: np.ndarray
    dynamic: bool
    events: tuple | None

    def state(self, effect: float, sfreq: float, n: int, delay: float = 0.0):
        """The physiological drive at *n* samples: ``(x, static)``.

        ``x`` (``(2, n)``, valence and arousal) is what the physiology follows moment by
        moment, ``static`` (``(2,)``) the static per-trial gains; *delay* (s) shifts
        ``x`` later.
        """
        t = np.arange(n) / float(sfreq) - delay
        if self.dynamic:
            drive, static = effect * self.felt + self.unfelt, np.zeros(2)
        else:
            drive = self.unfelt
            static = effect * self.felt.mean(axis=1)
        return np.vstack([np.interp(t, self.times, row) for row in drive]), static


def _peak(values: np.ndarray, scale: int) -> float:
    """The peak of a felt course: the highest arousal, the most extreme valence."""
    return float(values.max()) if scale == 1 else float(values[np.argmax(np.abs(values))])


@fill_doc
class AffectDynamics:
    """The felt states and ratings of a synthetic dataset in ``affect="dynamics"``.

    Parameters
    ----------
    %(synthetic_seed)s
    n_subjects, n_trials : int
        Sizes; trials are videos, watched in video order.
    seconds : sequence of float
        Length of each video.
    synchrony : float
        Strength of the stimulus-locked fluctuation (SD ``0.5 synchrony``).
    affect_share : float
        Share, in [0, 1], of its variance that is affect-related.
    control : {"none", "static-affect", "shuffled"}
        A paired control (see the module docstring).
    low, high : float
        The rating scale.
    integer : bool
        Whole-number ratings (DREAMER).
    n_scales : int
        Rating scales; the first two are valence and arousal.
    rating_bias : float
        SD of the per-subject response style, as a fraction of the scale's range.
    """

    def __init__(self, seed: int, n_subjects: int, n_trials: int, seconds, *,
                 synchrony: float, affect_share: float, control: str, low: float,
                 high: float, integer: bool, n_scales: int, rating_bias: float = 0.0):
        self.seed = int(seed)
        self.n_subjects, self.n_trials = int(n_subjects), int(n_trials)
        self.seconds = np.broadcast_to(np.asarray(seconds, float), (self.n_trials,)).copy()
        self.synchrony, self.share, self.control = float(synchrony), float(affect_share), control
        self.low, self.high = float(low), float(high)
        self.courses = StimulusCourses(seed, synchrony)
        self.free = StimulusCourses(seed, synchrony, stream=STREAM_FREE_COURSE)
        self.parts = rating_parts(seed, n_subjects, n_trials, low=low, high=high,
                                  integer=integer, n_scales=n_scales, rating_bias=rating_bias)
        half = (self.high - self.low) / 2.0
        #: The videos' consensus levels on [-1, 1], ``(n_trials, 2)``.
        self.levels = (self.parts.consensus[:, :2] - self.low) / half - 1.0
        #: Each subject's appraisal of each video on [-1, 1], ``(n_subjects, n_trials, 2)``.
        self.appraisal = self.parts.noise[..., :2] / half
        traits = [np.random.default_rng([self.seed, STREAM_FELT_TRAITS, s])
                  for s in range(n_subjects)]
        self.gain = np.array([r.lognormal(0.0, 0.25) for r in traits])
        self.lag = np.array([r.uniform(0.0, 0.3) for r in traits])
        self.source = np.tile(np.arange(self.n_trials), (self.n_subjects, 1))
        self.shift = np.zeros((self.n_subjects, self.n_trials))
        if control == "shuffled":
            for s in range(self.n_subjects):
                rng = np.random.default_rng([self.seed, STREAM_SHUFFLE, s])
                self.source[s] = rng.permutation(self.n_trials)
                self.shift[s] = rng.uniform(0.0, 1.0, self.n_trials) * self.seconds
        self.reported = self._ratings()

    # ------------------------------------------------------------------- state
    def _shared(self, courses: StimulusCourses, subject: int, video: int, lag: float):
        """The course of *courses* that *subject* gets in *video*, *lag* s late:
        ``(times, (2, m))``."""
        seconds = self.seconds[video]
        times, values = courses.shared(int(self.source[subject, video]), seconds)
        if self.control != "shuffled":
            return times, np.vstack([np.interp(times - lag, times, row) for row in values])
        inside = (times >= 0) & (times < seconds)
        at = times - lag + self.shift[subject, video]
        return times, np.vstack([np.interp(at, times[inside], row[inside], period=seconds)
                                 for row in values])

    def _private(self, subject: int, video: int, m: int):
        """The trial's lag jitter and private smooth noise (SD 1, *m* samples), from their
        own stream."""
        rng = np.random.default_rng([self.seed, STREAM_PRIVATE, subject, video])
        jitter = _LAG_JITTER_S * float(rng.standard_normal())
        noise = _smooth_noise(rng, 2, m, self.courses.timescale * _COURSE_RATE)
        return jitter, noise / np.maximum(noise.std(axis=1, keepdims=True), 1e-12)

    def trial(self, subject: int, video: int) -> TrialAffect:
        """The affective state of *subject* (0-based) while watching *video* (0-based).

        Returns
        -------
        TrialAffect
        """
        sigma = _COURSE_SD * self.synchrony
        g = self.gain[subject]
        m = int(math.ceil((self.seconds[video] + 2 * _COURSE_PAD_S) * _COURSE_RATE)) + 1
        jitter, private = self._private(subject, video, m)
        lag = self.lag[subject] + jitter
        times, course = self._shared(self.courses, subject, video, lag)
        _, free = self._shared(self.free, subject, video, lag)
        private = _PRIVATE_SD * sigma * private
        level = g * self.levels[self.source[subject, video]] + self.appraisal[subject, video]
        shared = g * sigma * math.sqrt(self.share) * course
        unfelt = g * sigma * math.sqrt(1.0 - self.share) * free
        events = None
        if self.synchrony > 0:
            source, seconds = int(self.source[subject, video]), self.seconds[video]
            onsets, salience = self.courses.events(source, seconds)
            if self.control == "shuffled":
                onsets = np.sort((onsets - self.shift[subject, video]) % seconds)
            latency = np.random.default_rng([self.seed, STREAM_TRAITS, subject, 15]).normal(
                0.0, _ERP_LATENCY_SD)
            events = (onsets + latency, self.synchrony * g * salience)
        if self.control == "static-affect":
            felt = np.repeat(level[:, None], times.size, axis=1)
            return TrialAffect(times, felt, unfelt + shared + private, False, events)
        return TrialAffect(times, level[:, None] + shared + private, unfelt, True, events)

    # ----------------------------------------------------------------- ratings
    def summary(self, affect: TrialAffect, video: int) -> np.ndarray:
        """What a rating says about a felt trajectory, on [-1, 1]: ``(2,)``.

        ``0.5 mean + 0.25 peak + 0.25 end`` over the video (the constant level for
        ``control="static-affect"``).
        """
        seconds = self.seconds[video]
        inside = (affect.times >= 0) & (affect.times <= seconds)
        end = inside & (affect.times >= seconds - _END_S)
        w_mean, w_peak, w_end = _RATING_WEIGHTS
        return np.array([w_mean * row[inside].mean() + w_peak * _peak(row[inside], c)
                         + w_end * row[end].mean() for c, row in enumerate(affect.felt)])

    def _ratings(self) -> np.ndarray:
        parts = self.parts
        felt = parts.consensus[None] + parts.noise  # dominance, liking: the static draw
        half = (self.high - self.low) / 2.0
        for s in range(self.n_subjects):
            for k in range(self.n_trials):
                felt[s, k, :2] = self.low + half * (self.summary(self.trial(s, k), k) + 1.0)
        return parts.finish(felt + parts.offset)


@fill_doc
class DynamicSubject:
    """The signals of one subject whose physiology follows the instantaneous state.

    Every coupling reads ``x(t)`` (valence, arousal) and, for
    ``control="static-affect"``, the static gains ``s`` (see :meth:`TrialAffect.state`);
    ``effect`` scales the felt state's part of both:

    * skin conductance: SCRs are elicited at a rate ``r0 exp(0.8 x_a)`` (capped at 6 r0)
      and start 1-3 s later, of size ``0.3 µS exp(0.5 (x_a + s_a))``, with a
      bi-exponential shape (rise 0.75 s, decay 2 s); the tonic level integrates them
      (each keeps 30 % of its size, decaying over 30 s). Written as skin resistance;
    * heart rate (ECG, plethysmograph) ``+8 bpm`` and breathing rate and depth ``+15 %``
      and ``+20 %`` per unit of ``x_a + s_a``; skin temperature falls faster with it;
    * posterior alpha amplitude falls with ``x_a`` (``exp(-0.5 x_a)``), anterior
      beta/gamma rises with ``x_a + s_a``; frontal alpha asymmetry follows ``x_v + s_v``
      1 s later (less left-frontal alpha when positive);
    * zygomatic EMG bursts (0.6 s) come at a rate ``3/min exp(x_v + s_v)``; trapezius
      tone rises with ``x_a + s_a``;
    * the evoked response to each salient event scales with ``exp(0.5 x_a)`` at the
      event; a slow cortical component (below 1 Hz) follows ``x``.

    Each signal's own noise and the artefacts (blinks shared by EEG and vertical EOG,
    an electrode pop, slow drift) come from streams keyed by ``(subject, segment)``,
    which do not depend on the state.

    Parameters
    ----------
    %(synthetic_seed)s
    subject : int
        The subject's 0-based index.
    effect : float
        Coupling of the physiology to the felt state; ``0`` makes the signals
        independent of it.
    """

    def __init__(self, seed: int, subject: int, effect: float = 1.0):
        self.seed, self.subject, self.effect = int(seed), int(subject), float(effect)
        rng = np.random.default_rng([self.seed, STREAM_TRAITS, self.subject])
        self.eeg_gain = float(rng.lognormal(0.0, 0.25))
        self.alpha_freq = float(rng.uniform(9.0, 11.5))
        self.alpha_amp = float(rng.uniform(1.5, 3.0))
        self.heart_rate = float(rng.uniform(60.0, 78.0))
        self.resp_rate = float(rng.uniform(0.2, 0.3))
        self.skin_conductance = float(rng.uniform(2.0, 10.0))  # µS, tonic level at rest
        self.scr_rate = float(rng.uniform(2.0, 5.0))  # SCRs per minute at rest
        self.temperature = float(rng.uniform(29.0, 34.0))
        self.ppg_offset = float(rng.uniform(-3000.0, 3000.0))
        self.resp_offset = float(rng.uniform(-2000.0, 2000.0))
        self.topo_jitter = int(rng.integers(2 ** 31))

    def _rng(self, kind: str, segment: int) -> np.random.Generator:
        stream = STREAM_ARTEFACTS if kind == "artefacts" else STREAM_SIGNAL[kind]
        return np.random.default_rng([self.seed, stream, self.subject, int(segment)])

    def _state(self, affect, sfreq: float, n: int, delay: float = 0.0):
        if affect is None:  # at rest: no stimulus, no drive
            return np.zeros((2, n)), np.zeros(2)
        return affect.state(self.effect, sfreq, n, delay)

    def signal(self, modality: str, ch_names, sfreq: float, n: int, segment: int,
               affect: TrialAffect | None = None) -> np.ndarray:
        """Signal of *modality* with ``len(ch_names)`` rows and *n* samples, release units.

        Parameters
        ----------
        modality : str
            ``eeg``, ``eog``, ``emg``, ``gsr``, ``resp``, ``ppg``, ``temp`` or ``ecg``.
        ch_names : sequence of str
            Channel names (EEG: the montage; ECG: one per lead).
        sfreq : float
            Sampling rate.
        n : int
            Number of samples.
        segment : int
            Index of the segment within the subject's session: the key of its noise
            and artefact streams, so that every variant draws the same noise.
        affect : TrialAffect | None
            The state during a video; ``None`` at rest (baselines, fixation).
        """
        x, static = self._state(affect, sfreq, n)
        if modality == "eeg":
            x_faa, _ = self._state(affect, sfreq, n, _FAA_DELAY_S)
            return self._eeg(ch_names, sfreq, n, segment, x, x_faa[0], static, affect)
        if modality in ("ecg", "ppg"):
            beats = self._beats(sfreq, n, segment, x[1] + static[1])
            return self._ecg(beats, sfreq, n, len(ch_names), segment) if modality == "ecg" \
                else self._ppg(beats, sfreq, n, segment)
        return getattr(self, "_" + modality)(sfreq, n, segment, x, static)

    # --------------------------------------------------------------------- EEG
    def _eeg(self, ch_names, sfreq, n, segment, x, v_delayed, static, affect):
        rng = self._rng("eeg", segment)
        n_ch = len(ch_names)
        side = np.array([-1.0 if c in _LEFT_FRONTAL else 1.0 if c in _RIGHT_FRONTAL else 0.0
                         for c in ch_names])[:, None]
        posterior = np.array([c in _POSTERIOR for c in ch_names])[:, None]
        alpha_env = (np.where(posterior, 0.6, 0.35) * self.alpha_amp
                     * np.exp(-_ALPHA_LOG * posterior * x[1]
                              + _FAA_LOG * side * (v_delayed + static[0])))
        fast_env = 0.25 * np.exp(_FAST_LOG * np.where(posterior, 0.3, 1.0) * (x[1] + static[1]))
        out = colored_noise(rng, n_ch, n, sfreq, lambda f: 1.0 / np.sqrt(np.maximum(f, 1.0)))
        out += alpha_env * colored_noise(
            rng, n_ch, n, sfreq, lambda f: np.exp(-0.5 * (f - self.alpha_freq) ** 2))
        out += fast_env * colored_noise(rng, n_ch, n, sfreq,
                                        lambda f: ((f >= 13) & (f <= 45)).astype(float))
        out *= 4.0 * self.eeg_gain
        if affect is not None:
            topo_a, topo_v = topography(ch_names, self.topo_jitter)
            out += _SLOW_UV * (topo_a[:, None] * x[1] + topo_v[:, None] * x[0])
            if affect.events is not None:
                onsets, size = affect.events
                at = np.clip(np.rint(onsets * sfreq).astype(int), 0, n - 1)
                events = (onsets, size * np.exp(_ERP_LOG * x[1][at]))
                out += _ERP_UV * topo_a[:, None] * evoked_responses(events, sfreq, n)
        art = self._rng("artefacts", segment)
        blinks = blink_train(art, n, sfreq)
        out += np.array([_BLINK.get(c, 0.0) for c in ch_names])[:, None] * blinks
        out += slow_drift(art, n_ch, n, sfreq, 3.0)
        electrode_pop(art, out, sfreq)
        return out

    # -------------------------------------------------------------- peripheral
    def _eog(self, sfreq, n, segment, x, static):
        rng = self._rng("eog", segment)
        out = colored_noise(rng, 2, n, sfreq, lambda f: 1.0 / np.maximum(f, 0.5)) * 10
        out[0] += np.cumsum(rng.standard_normal(n) * (rng.random(n) < 2 / sfreq)) * 40
        out[1] += 2.5 * blink_train(self._rng("artefacts", segment), n, sfreq)
        return out

    @staticmethod
    def _thinned(rng, n_total: int, sfreq: float, max_rate: float):
        """Candidate event samples of a Poisson process at *max_rate* (per s), and one
        uniform per candidate to thin it with: drawn before the rate is known, so that
        the draws are the same whatever the state."""
        k = rng.poisson(max_rate * n_total / sfreq)
        return rng.integers(0, n_total, k), rng.random(k)

    def _emg(self, sfreq, n, segment, x, static):
        rng = self._rng("emg", segment)
        out = colored_noise(rng, 2, n, sfreq, lambda f: (f > 20).astype(float) + 0.05)
        at, u = self._thinned(rng, n, sfreq, _ZYG_RATE * _ZYG_CAP / 60.0)
        size = rng.uniform(1.0, 3.0, at.size)
        rate = np.minimum(np.exp(_ZYG_RATE_LOG * (x[0][at] + static[0])), _ZYG_CAP)
        keep = u < rate / _ZYG_CAP
        bursts = np.zeros(n)
        np.add.at(bursts, at[keep], size[keep])
        width = max(int(_ZYG_BURST_S * sfreq), 1)
        bursts = np.convolve(bursts, np.hanning(width))[width // 2:width // 2 + n]  # centred
        out[0] *= 3.0 * (1.0 + bursts)
        out[1] *= 3.0 * np.exp(_TRAP_LOG * (x[1] + static[1]))
        return out

    def _gsr(self, sfreq, n, segment, x, static):
        rng = self._rng("gsr", segment)
        warm = int(round(_SCR_WARM_S * sfreq))
        total = warm + n
        rest = self.scr_rate / 60.0
        at, u = self._thinned(rng, total, sfreq, rest * _SCR_RATE_CAP)
        size = rng.uniform(0.5, 1.5, at.size)
        latency = np.rint(rng.uniform(*_SCR_LATENCY_S, at.size) * sfreq).astype(int)
        xa = np.concatenate([np.zeros(warm), x[1]])[at]  # at rest before the segment
        keep = u < np.minimum(np.exp(_SCR_RATE_LOG * xa), _SCR_RATE_CAP) / _SCR_RATE_CAP
        onset = at + latency
        keep &= onset < total
        impulses = np.zeros(total)
        np.add.at(impulses, onset[keep],
                  _SCR_AMP_US * size[keep] * np.exp(_SCR_AMP_LOG * (xa[keep] + static[1])))
        rise, decay = (math.exp(-1.0 / (tau * sfreq)) for tau in (_SCR_TAU_RISE, _SCR_TAU_DECAY))
        t_peak = (math.log(_SCR_TAU_DECAY / _SCR_TAU_RISE) * _SCR_TAU_RISE * _SCR_TAU_DECAY
                  / (_SCR_TAU_DECAY - _SCR_TAU_RISE))
        peak = math.exp(-t_peak / _SCR_TAU_DECAY) - math.exp(-t_peak / _SCR_TAU_RISE)
        phasic = (lfilter([1.0], [1.0, -decay], impulses)
                  - lfilter([1.0], [1.0, -rise], impulses)) / peak
        carry = math.exp(-1.0 / (_SCL_TAU * sfreq))
        tonic = lfilter([_SCL_CARRY * (1.0 - carry) * _SCL_TAU], [1.0, -carry], impulses)
        t = np.arange(n) / sfreq
        drift = np.sin(2 * np.pi * t / 40 + rng.uniform(0, 2 * np.pi))
        conductance = (self.skin_conductance * (1 + 0.01 * drift) + phasic[warm:]
                       + tonic[warm:] + 0.005 * rng.standard_normal(n))
        return (1e6 / np.maximum(conductance, 0.1))[None, :]

    def _beats(self, sfreq, n, segment, arousal) -> np.ndarray:
        """Beat samples: the phase integrates the heart rate, with smooth variability."""
        rng = self._rng("heart", segment)
        hrv = _smooth_noise(rng, 1, n, 0.5 * sfreq)[0]
        hrv *= _HRV_SD / max(float(hrv.std()), 1e-12)
        rate = np.maximum(self.heart_rate + _HR_BPM * arousal, 30.0) / 60.0
        phase = rng.uniform(0.0, 1.0) + np.cumsum(rate * (1.0 + hrv)) / sfreq
        return np.flatnonzero(np.diff(np.floor(phase), prepend=np.floor(phase[0])) > 0)

    def _ecg(self, beats, sfreq, n, n_leads, segment):
        noise = colored_noise(self._rng("heart", segment + (1 << 20)), n_leads, n, sfreq,
                              lambda f: 1 / np.maximum(f, 0.5)) * 20
        return ecg_leads(beats, sfreq, n, n_leads) + noise

    def _ppg(self, beats, sfreq, n, segment):
        kt = np.arange(int(0.8 * sfreq)) / sfreq
        train = np.zeros(n)
        train[beats] = 1.0
        pulse = np.convolve(train, (kt / 0.12) * np.exp(1 - kt / 0.12))[:n] * 600.0
        drift = slow_drift(self._rng("heart", segment + (2 << 20)), 1, n, sfreq, 200.0)[0]
        return (self.ppg_offset + pulse + drift)[None, :]

    def _resp(self, sfreq, n, segment, x, static):
        rng = self._rng("resp", segment)
        arousal = x[1] + static[1]
        phase = 2 * np.pi * np.cumsum(
            self.resp_rate * np.clip(1 + _RESP_RATE * arousal, 0.5, None)) / sfreq
        depth = 800.0 * np.clip(1 + _RESP_DEPTH * arousal, 0.3, None)
        out = depth * np.sin(phase + rng.uniform(0, 2 * np.pi))
        return (self.resp_offset + out + 30 * rng.standard_normal(n))[None, :]

    def _temp(self, sfreq, n, segment, x, static):
        rng = self._rng("temp", segment)
        slope = _TEMP_SLOPE + _TEMP_SLOPE_AROUSAL * (x[1] + static[1])
        out = self.temperature - np.cumsum(slope) / sfreq
        return (out + 0.005 * rng.standard_normal(n))[None, :]


# ------------------------------------------------------------- the writers' view
class _StaticSubject:
    """:class:`SubjectSimulator` behind the writers' interface (the static mode)."""

    def __init__(self, sim: SubjectSimulator, felt: np.ndarray, low: float, high: float):
        self.sim, self.felt, self.low, self.high = sim, felt, low, high

    def trial(self, video: int, seconds: float):
        """The state of *video*: ``(v, a, course)``; draws the course from the subject."""
        v, a = (latent(r, self.low, self.high) for r in self.felt[video, :2])
        return v, a, self.sim.trial_course(video, seconds)

    def signal(self, modality, ch_names, sfreq, n, segment, state=None):
        if state is None:
            return self.sim.signal(modality, ch_names, sfreq, n, 0.0, 0.0)
        v, a, course = state
        return self.sim.signal(modality, ch_names, sfreq, n, v, a, course=course)


class _DynamicWriterSubject:
    """:class:`DynamicSubject` and its states behind the writers' interface."""

    def __init__(self, model: AffectDynamics, subject: int, effect: float):
        self.model, self.index = model, subject
        self.sim = DynamicSubject(model.seed, subject, effect)

    def trial(self, video: int, seconds: float) -> TrialAffect:
        if abs(seconds - self.model.seconds[video]) > 1e-6:
            raise ValueError(f"video {video} lasts {self.model.seconds[video]} s, not {seconds}")
        return self.model.trial(self.index, video)

    def signal(self, modality, ch_names, sfreq, n, segment, state=None):
        return self.sim.signal(modality, ch_names, sfreq, n, segment, state)


@fill_doc
class Simulation:
    """The ratings and the subjects of one synthetic dataset, in either affect mode.

    Parameters
    ----------
    %(synthetic_seed)s
    options : SimulationOptions
        From :func:`~physiosync.synthetic._simulate.check_simulation_options`.
    effect : float
        Strength of the emotion effect.
    n_subjects, n_trials : int
        Sizes (subjects are 1-based in :meth:`subject`).
    seconds : float | sequence of float
        Length of each video.
    low, high, integer, n_scales
        The rating scale, as in :func:`~physiosync.synthetic._ratings.simulate_ratings`.

    Attributes
    ----------
    reported : ndarray, shape (n_subjects, n_trials, n_scales)
        The ratings to write.
    model : AffectDynamics | None
        The felt states (``affect="dynamics"`` only).
    """

    def __init__(self, seed: int, options, effect: float, n_subjects: int, n_trials: int,
                 seconds, *, low: float, high: float, integer: bool, n_scales: int):
        self.seed, self.effect, self.low, self.high = int(seed), float(effect), low, high
        self.model = None
        if options.affect == "dynamics":
            self.model = AffectDynamics(
                seed, n_subjects, n_trials, seconds, synchrony=options.synchrony,
                affect_share=options.affect_share, control=options.control, low=low,
                high=high, integer=integer, n_scales=n_scales, rating_bias=options.rating_bias)
            self.reported = self.model.reported
        else:
            draw = simulate_ratings(seed, n_subjects, n_trials, low=low, high=high,
                                    integer=integer, n_scales=n_scales,
                                    rating_bias=options.rating_bias)
            self.reported, self._felt = draw.reported, draw.felt
            self._courses = StimulusCourses(seed, options.synchrony)

    def subject(self, subject: int, rng: np.random.Generator | None = None):
        """The simulator of *subject* (1-based), with ``trial(video, seconds)`` and
        ``signal(modality, ch_names, sfreq, n, segment, state=None)``.

        *rng* is the subject's generator in the static mode (by default
        :func:`~physiosync.synthetic._simulate.subject_rng`); the dynamics mode draws
        from its own streams and never touches it.
        """
        if self.model is not None:
            return _DynamicWriterSubject(self.model, subject - 1, self.effect)
        rng = subject_rng(self.seed, subject) if rng is None else rng
        return _StaticSubject(SubjectSimulator(rng, self.effect, self._courses),
                              self._felt[subject - 1], self.low, self.high)
