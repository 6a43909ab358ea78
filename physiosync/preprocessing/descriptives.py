"""Quick per-subject summaries of a dataset, as ``physiosync info`` prints them.

Trial counts, stimulus lengths, sampling rates, label balance (high ratings, or the
share of each class of a categorical target), and a check that the EEG carries valence
(frontal alpha asymmetry against the valence ratings).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.signal import welch
from scipy.stats import spearmanr

from ..dataset_specs import dataset_spec

__all__ = ["subject_summary", "frontal_alpha_asymmetry"]


def frontal_alpha_asymmetry(rec, pair=("F3", "F4"), band=(8.0, 13.0)) -> np.ndarray:
    """Per-trial frontal alpha asymmetry ``log(alpha right) - log(alpha left)``.

    Positive values mean relatively more left-frontal activity (less left alpha),
    the classic correlate of positive valence.

    Parameters
    ----------
    rec : Recording
        One subject's recording, with EEG channels named as in *pair*.
    pair : (str, str)
        The left and right frontal channels.
    band : (float, float)
        The alpha band in Hz (Welch periodogram, 2 s segments).

    Returns
    -------
    numpy.ndarray
        ``(n_trials,)``, one value per trial of the stimulus part.
    """
    names = rec.ch_names("eeg")
    left, right = names.index(pair[0]), names.index(pair[1])
    out = []
    for t in rec.trials:
        x = rec.stimulus("eeg", t)[[left, right]]
        f, p = welch(x, fs=rec.sfreq("eeg"), nperseg=min(x.shape[-1], 2 * int(rec.sfreq("eeg"))))
        band_p = p[:, (f >= band[0]) & (f <= band[1])].mean(axis=-1)
        out.append(np.log(band_p[1]) - np.log(band_p[0]))
    return np.asarray(out)


def subject_summary(dataset, subjects=None) -> pd.DataFrame:
    """One row per subject: trials, stimulus length, label balance, and effect checks.

    For a rated dataset (DEAP, DREAMER) the label balance is the share of trials rated
    high on valence and arousal, and the ``faa~valence`` column is the Spearman
    correlation between frontal alpha asymmetry and valence ratings across the
    subject's trials; a visible positive value means the signals carry valence
    information. For a categorical target (SEED's and SEED-IV's ``emotion``) it is the
    share of trials of each class (``<class>_%``). A dataset recorded in several
    sessions gets a ``sessions`` column (those present).

    Parameters
    ----------
    dataset : BaseDataset
        An opened dataset.
    subjects : list of int | None
        Subjects to summarise; all by default. Each one is loaded.

    Returns
    -------
    pandas.DataFrame
        Indexed by subject. ``faa~valence`` is NaN (or absent, if no subject has it)
        for subjects with fewer than three trials, without F3 and F4, or without
        valence ratings.
    """
    rows = []
    spec = dataset_spec(dataset.name)
    for s in subjects or dataset.subjects:
        rec = dataset.load_subject(s)
        lengths = rec.stimulus_lengths("eeg") / rec.sfreq("eeg")
        row = {
            "subject": s,
            "trials": rec.n_trials,
            "stimulus_s": f"{lengths.min():g}" if lengths.min() == lengths.max()
            else f"{lengths.min():g}-{lengths.max():g}",
            "rates_hz": ", ".join(f"{m} {rec.sfreq(m):g}" for m in rec.modalities
                                  if m in ("eeg", "gsr", "ecg")),
        }
        if len(spec.sessions) > 1:
            row["sessions"] = ",".join(dict.fromkeys(rec.sessions))
        for scale in ("valence", "arousal"):
            if spec.threshold is not None and scale in rec.ratings:
                row[f"high_{scale}_%"] = 100.0 * np.mean(rec.ratings[scale] >= spec.threshold)
        for target, names in spec.classes.items():
            for code, name in enumerate(names):
                row[f"{name}_%"] = 100.0 * np.mean(rec.ratings[target] == code)
        if (rec.n_trials >= 3 and {"F3", "F4"} <= set(rec.ch_names("eeg"))
                and "valence" in rec.ratings):
            faa = frontal_alpha_asymmetry(rec)
            row["faa~valence"] = spearmanr(faa, rec.ratings["valence"]).statistic
        rows.append(row)
    return pd.DataFrame(rows).set_index("subject")
