"""Physiologically plausible signals with a tunable emotion effect.

The simulator draws one subject's idiosyncrasies (gains, offsets, alpha frequency,
resting heart rate, ...) once, then synthesises each trial from two latent scores,
``v`` (valence) and ``a`` (arousal), both scaled to [-1, 1]. The signals follow
well-known correlates, scaled by ``effect`` (0 makes them independent of the ratings):

* frontal alpha asymmetry follows valence (less left-frontal alpha when positive);
* beta/gamma power follows arousal;
* skin-conductance responses (rate and size) follow arousal;
* heart rate (ECG, plethysmograph) follows arousal; zygomatic EMG follows valence.

Every trial also gets artefacts: blinks on frontal EEG and vertical EOG, an
occasional electrode pop, and slow drift.
"""

from __future__ import annotations

import numpy as np

_LEFT_FRONTAL = {"Fp1", "AF3", "F3", "F7", "FC5", "FC1"}
_RIGHT_FRONTAL = {"Fp2", "AF4", "F4", "F8", "FC6", "FC2"}
_POSTERIOR = {"O1", "O2", "Oz", "PO3", "PO4", "P3", "P4", "P7", "P8", "Pz"}
_BLINK = {"Fp1": 1.0, "Fp2": 1.0, "AF3": 0.6, "AF4": 0.6, "F7": 0.3, "F8": 0.3,
          "F3": 0.3, "F4": 0.3, "Fz": 0.3}


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
    """

    def __init__(self, rng: np.random.Generator, effect: float = 1.0):
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

    # ----------------------------------------------------------------- helpers
    def _colored(self, n_ch: int, n: int, sfreq: float, shape) -> np.ndarray:
        """Gaussian noise whose amplitude spectrum is ``shape(freqs)`` (per channel rows)."""
        freqs = np.fft.rfftfreq(n, 1.0 / sfreq)
        spec = self.rng.standard_normal((n_ch, freqs.size)) + 1j * self.rng.standard_normal(
            (n_ch, freqs.size))
        spec *= shape(freqs)
        return np.fft.irfft(spec, n=n, axis=-1) * np.sqrt(n)

    def _beats(self, n: int, sfreq: float, rate_bpm: float) -> np.ndarray:
        """Sample indices of heart beats with mild heart-rate variability."""
        mean_ibi = 60.0 / rate_bpm
        times, t = [], float(self.rng.uniform(0, mean_ibi))
        while t < n / sfreq:
            times.append(t)
            t += mean_ibi * (1 + 0.04 * self.rng.standard_normal())
        return (np.asarray(times) * sfreq).astype(int)

    # ------------------------------------------------------------------ EEG
    def eeg(self, ch_names, sfreq: float, n: int, v: float, a: float) -> np.ndarray:
        """EEG in µV, ``(len(ch_names), n)``."""
        e = self.effect
        n_ch = len(ch_names)
        alpha_gain = np.array([
            (0.6 if c in _POSTERIOR else 0.35) * (
                1 - 0.35 * e * v if c in _LEFT_FRONTAL else 1 + 0.35 * e * v if c in _RIGHT_FRONTAL
                else 1.0)
            for c in ch_names])[:, None]
        alpha_gain = np.clip(alpha_gain, 0.02, None) * self.alpha_amp
        fast_gain = 0.25 * max(1 + 0.6 * e * a, 0.05)

        def shape(f):
            pink = 1.0 / np.sqrt(np.maximum(f, 1.0))
            alpha = np.exp(-0.5 * ((f - self.alpha_freq) / 1.0) ** 2)
            fast = ((f >= 13) & (f <= 45)).astype(float)
            return pink + alpha_gain * alpha + fast_gain * fast

        x = self._colored(n_ch, n, sfreq, shape) * 4.0 * self.eeg_gain
        x += self._drift(n_ch, n, sfreq, 3.0)
        blink = self._blink_train(n, sfreq)
        x += np.array([_BLINK.get(c, 0.0) for c in ch_names])[:, None] * blink
        if self.rng.random() < 0.3:  # an electrode pop on one channel
            ch, at = self.rng.integers(n_ch), self.rng.integers(n)
            x[ch, at:] += self.rng.choice([-1, 1]) * 30 * np.exp(-np.arange(n - at) / sfreq)
        return x

    def _drift(self, n_ch: int, n: int, sfreq: float, amp: float) -> np.ndarray:
        t = np.arange(n) / sfreq
        phase = self.rng.uniform(0, 2 * np.pi, (n_ch, 1))
        return amp * np.sin(2 * np.pi * 0.05 * t + phase)

    def _blink_train(self, n: int, sfreq: float) -> np.ndarray:
        out = np.zeros(n)
        n_blinks = self.rng.poisson(n / sfreq / 4.0)
        width = max(int(0.2 * sfreq), 1)
        kernel = np.hanning(2 * width + 1) * 80.0
        for at in self.rng.integers(0, n, n_blinks):
            lo, hi = max(at - width, 0), min(at + width + 1, n)
            out[lo:hi] += kernel[lo - at + width:hi - at + width]
        return out

    # ------------------------------------------------------------ peripheral
    def eog(self, n: int, sfreq: float, v: float, a: float) -> np.ndarray:
        """hEOG and vEOG in µV, ``(2, n)``."""
        x = self._colored(2, n, sfreq, lambda f: 1.0 / np.maximum(f, 0.5)) * 10
        steps = np.cumsum(self.rng.standard_normal(n) * (self.rng.random(n) < 2 / sfreq)) * 40
        x[0] += steps
        x[1] += 2.5 * self._blink_train(n, sfreq)
        return x

    def emg(self, n: int, sfreq: float, v: float, a: float) -> np.ndarray:
        """zygomaticus and trapezius EMG in µV, ``(2, n)``."""
        x = self._colored(2, n, sfreq, lambda f: (f > 20).astype(float) + 0.05)
        x[0] *= 3.0 * max(1 + 0.5 * self.effect * v, 0.1)
        x[1] *= 3.0 * max(1 + 0.3 * self.effect * a, 0.1)
        return x

    def gsr(self, n: int, sfreq: float, v: float, a: float) -> np.ndarray:
        """Skin resistance in Ohm, ``(1, n)`` (the DEAP release's GSR unit)."""
        e = self.effect
        t = np.arange(n) / sfreq
        rate = self.scr_rate * max(1 + 0.8 * e * a, 0.1) / 60.0
        impulses = np.zeros(n)
        n_scr = self.rng.poisson(rate * n / sfreq)
        amp = 0.3 * max(1 + 0.8 * e * a, 0.1)
        impulses[self.rng.integers(0, n, n_scr)] += amp * self.rng.uniform(0.5, 1.5, n_scr)
        kt = np.arange(int(10 * sfreq)) / sfreq
        kernel = np.exp(-kt / 2.0) - np.exp(-kt / 0.7)
        phasic = np.convolve(impulses, kernel / kernel.max())[:n]
        # Slow tonic fluctuation with a random phase: nothing in it is locked to the
        # stimulus, so it cannot masquerade as inter-subject synchrony.
        drift = np.sin(2 * np.pi * t / 40 + self.rng.uniform(0, 2 * np.pi))
        conductance = self.skin_conductance * (1 + 0.01 * drift) + phasic
        conductance += 0.005 * self.rng.standard_normal(n)
        return (1e6 / np.maximum(conductance, 0.1))[None, :]

    def ecg(self, n: int, sfreq: float, v: float, a: float, n_leads: int = 1) -> np.ndarray:
        """ECG in µV, ``(n_leads, n)``: PQRST complexes at an arousal-dependent rate."""
        rate = self.heart_rate + 10.0 * self.effect * a
        beats = self._beats(n, sfreq, rate)
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
        leads = [ecg * g for g in (1.0, 0.8, 1.2)[:n_leads]]
        out = np.vstack(leads) + self._colored(n_leads, n, sfreq, lambda f: 1 / np.maximum(f, 0.5)) * 20
        return out

    def ppg(self, n: int, sfreq: float, v: float, a: float) -> np.ndarray:
        """Plethysmograph in arbitrary units with a large offset, ``(1, n)``."""
        beats = self._beats(n, sfreq, self.heart_rate + 10.0 * self.effect * a)
        kt = np.arange(int(0.8 * sfreq)) / sfreq
        pulse = (kt / 0.12) * np.exp(1 - kt / 0.12)
        train = np.zeros(n)
        train[beats] = 1.0
        x = np.convolve(train, pulse)[:n] * 600.0
        return (self.ppg_offset + x + self._drift(1, n, sfreq, 200.0)[0])[None, :]

    def resp(self, n: int, sfreq: float, v: float, a: float) -> np.ndarray:
        """Respiration belt in arbitrary units with a large offset, ``(1, n)``."""
        t = np.arange(n) / sfreq
        rate = self.resp_rate * (1 + 0.15 * self.effect * a)
        x = 800.0 * np.sin(2 * np.pi * rate * t + self.rng.uniform(0, 2 * np.pi))
        return (self.resp_offset + x + 30 * self.rng.standard_normal(n))[None, :]

    def temp(self, n: int, sfreq: float, v: float, a: float) -> np.ndarray:
        """Skin temperature in °C, ``(1, n)``."""
        t = np.arange(n) / sfreq
        x = self.temperature - 0.002 * t * (0.5 + 0.3 * self.effect * a)
        return (x + 0.005 * self.rng.standard_normal(n))[None, :]

    # ------------------------------------------------------------- dispatch
    def signal(self, modality: str, ch_names, sfreq: float, n: int, v: float, a: float):
        """Signal of *modality* with ``len(ch_names)`` rows and *n* samples, release units."""
        if modality == "eeg":
            return self.eeg(ch_names, sfreq, n, v, a)
        if modality == "ecg":
            return self.ecg(n, sfreq, v, a, n_leads=len(ch_names))
        return getattr(self, modality)(n, sfreq, v, a)


def draw_ratings(seed, n_subjects: int, n_trials: int, *, low: float, high: float,
                 integer: bool, n_scales: int, exact_mid_fraction: float = 0.05):
    """Ratings ``(n_subjects, n_trials, n_scales)`` with a per-video consensus.

    Every video (trial) gets a consensus rating on each scale; each subject rates it
    with individual noise, so subjects mostly agree, as in the real datasets. A
    fraction of the continuous ratings is set to exactly the scale midpoint, which is
    where threshold bugs (``<= 5`` versus ``< 5``) show.
    """
    rng = np.random.default_rng([int(seed), 7919])
    consensus = rng.uniform(low, high, (n_trials, n_scales))
    noise = rng.normal(0.0, (high - low) / 6.0, (n_subjects, n_trials, n_scales))
    ratings = np.clip(consensus[None] + noise, low, high)
    if integer:
        return np.rint(ratings)
    ratings = np.round(ratings, 2)
    mid = rng.random(ratings.shape) < exact_mid_fraction
    ratings[mid] = (low + high) / 2.0
    return ratings


def latent(rating, low: float, high: float) -> float:
    """Map a rating on ``[low, high]`` to ``[-1, 1]``."""
    return float(2.0 * (rating - low) / (high - low) - 1.0)
