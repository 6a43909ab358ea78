"""Does the synchrony of the synthetic data carry label information? Affect modes compared.

    python benchmarks/simulator_affect.py [--subjects 6 --trials 20 --seconds 30 --seed 0]

For each variant of the simulator (same seed and sizes) the script writes a small
synthetic DEAP, prepares it with GSR normalised per subject (``norm={"gsr": "subject"}``,
which keeps the amplitude of responses), cuts 2 s windows and computes two window
features: posterior alpha log-power (8-13 Hz) and the skin-conductance rise (the sum of
the 1 s rises of conductance, i.e. of falls of the written resistance). Per feature:

* ``isc``: inter-subject correlation of same-video windows, the correlation over
  windows between two subjects' feature courses (each demeaned within the trial),
  averaged over pairs and videos: how much time-locked synchrony there is;
* ``auc_other``: a read-out of each subject's arousal label (rating >= 5) from the
  *other* subjects' windows of the same video (their trial means of the feature,
  standardised within subject, averaged): area under the ROC curve (alpha with its
  sign reversed). 0.5 = the same-video windows of other subjects say nothing about the
  label;
* ``felt_r`` (dynamics variants): correlation, over windows, of the feature with the
  true felt arousal of the subject in that window (from the simulator).

Variants: ``static`` (the default simulator), ``dynamics`` (``affect="dynamics"``), and
its paired controls ``static-affect``, ``shuffled`` and ``sync0`` (``synchrony=0``).

Expectations written before the first run: the couplings are visible in dynamics
(``felt_r`` about +0.3 for the SCR rise, about -0.4 for alpha); synchrony (``isc``
> 0.2) in static, dynamics and static-affect, none (|isc| < 0.1) in shuffled and sync0;
``auc_other`` clearly above 0.5 (about 0.7) in dynamics for both features, about 0.5
for alpha in static and static-affect (the level does not reach posterior alpha there)
and in shuffled; sync0 keeps the shared *level* (``auc_other`` high) without any
time-locked synchrony. Only dynamics has both: synchronised windows whose shared part
carries the label.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.signal import welch
from sklearn.metrics import roc_auc_score

from physiosync.datasets import DEAP
from physiosync.params import PrepareParams
from physiosync.preprocessing.cache import prepare
from physiosync.synthetic import make_deap
from physiosync.synthetic._dynamics import Simulation
from physiosync.synthetic._generators import _POSTERIOR
from physiosync.synthetic._simulate import check_simulation_options

VARIANTS = {"static": {}, "dynamics": {"affect": "dynamics"},
            "static-affect": {"affect": "dynamics", "control": "static-affect"},
            "shuffled": {"affect": "dynamics", "control": "shuffled"},
            "sync0": {"affect": "dynamics", "synchrony": 0.0}}
WINDOW_S = 2.0
SFREQ = 128


def features(prepared) -> dict:
    """``{feature: (n_subjects, n_trials, n_windows)}`` and the arousal ratings."""
    alpha, scr, arousal = [], [], []
    for p in prepared.values():
        names = p.ch_names["eeg"]
        post = [i for i, c in enumerate(names) if c in _POSTERIOR]
        eeg, gsr = p.data["eeg"], p.data["gsr"][:, 0]
        n_win = eeg.shape[-1] // int(WINDOW_S * SFREQ)
        w = int(WINDOW_S * SFREQ)
        x = eeg[:, post, :n_win * w].reshape(eeg.shape[0], len(post), n_win, w)
        f, pw = welch(x, fs=SFREQ, nperseg=w, axis=-1)
        alpha.append(np.log(pw[..., (f >= 8) & (f <= 13)].mean(-1)).mean(1))
        sec = -gsr[:, :n_win * w].reshape(gsr.shape[0], -1, SFREQ).mean(-1)  # conductance dir.
        rises = np.diff(sec, axis=-1, prepend=sec[:, :1]).clip(0)
        scr.append(rises.reshape(gsr.shape[0], n_win, -1).sum(-1))
        arousal.append(p.ratings["arousal"].to_numpy())
    return {"alpha": np.array(alpha), "scr": np.array(scr)}, np.array(arousal)


def isc(x: np.ndarray) -> float:
    d = x - x.mean(-1, keepdims=True)
    n_s = x.shape[0]
    r = [np.corrcoef(d[a, k], d[b, k])[0, 1] for k in range(x.shape[1])
         for a in range(n_s) for b in range(a + 1, n_s)]
    return float(np.nanmean(r))


def auc_other(x: np.ndarray, arousal: np.ndarray, sign: float) -> float:
    m = x.mean(-1)  # (subjects, trials): trial means
    z = (m - m.mean(1, keepdims=True)) / m.std(1, keepdims=True)
    others = (z.sum(0, keepdims=True) - z) / (z.shape[0] - 1)
    y = (arousal >= 5).ravel()
    return float(roc_auc_score(y, sign * others.ravel()))


def felt_r(x: np.ndarray, seed: int, kw: dict, args) -> float:
    options = check_simulation_options(kw.get("synchrony", 1.0), 0.0, affect="dynamics",
                                       control=kw.get("control", "none"))
    model = Simulation(seed, options, args.effect, args.subjects, args.trials, args.seconds,
                       low=1.0, high=9.0, integer=False, n_scales=4).model
    felt = np.empty(x.shape)
    edges = np.arange(x.shape[-1] + 1) * WINDOW_S
    for s in range(args.subjects):
        for k in range(args.trials):
            aff = model.trial(s, k)
            t = np.arange(0, args.seconds, 1 / 32)
            a = np.interp(t, aff.times, aff.felt[1])
            felt[s, k] = [a[(t >= lo) & (t < hi)].mean() for lo, hi in zip(edges, edges[1:])]
    return float(np.corrcoef(x.ravel(), felt.ravel())[0, 1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=6)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--effect", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    params = PrepareParams(modalities=("eeg", "gsr"), norm={"gsr": "subject"})
    print(f"{args.subjects} subjects x {args.trials} videos x {args.seconds:g} s, effect "
          f"{args.effect:g}, seed {args.seed}; {WINDOW_S:g} s windows")
    print("| variant | isc alpha | isc scr | auc_other alpha | auc_other scr | felt_r alpha "
          "| felt_r scr |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name, kw in VARIANTS.items():
            t0 = time.time()
            root = make_deap(Path(tmp) / name, n_subjects=args.subjects, n_trials=args.trials,
                             seconds=args.seconds, effect=args.effect, seed=args.seed,
                             verbose=False, **kw)
            feats, arousal = features(prepare(DEAP(root), params=params, cache_dir=False,
                                              verbose=False))
            row = [isc(feats["alpha"]), isc(feats["scr"]),
                   auc_other(feats["alpha"], arousal, -1.0),
                   auc_other(feats["scr"], arousal, 1.0)]
            if kw.get("affect") == "dynamics":
                row += [felt_r(feats["alpha"], args.seed, kw, args),
                        felt_r(feats["scr"], args.seed, kw, args)]
            cells = " | ".join(f"{v:+.2f}" if i in (0, 1, 4, 5) else f"{v:.2f}"
                               for i, v in enumerate(row))
            print(f"| {name} | {cells}{' | - | -' if len(row) == 4 else ''} |  "
                  f"({time.time() - t0:.0f} s)", flush=True)
            for p in Path(root).glob("*.dat"):
                p.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
