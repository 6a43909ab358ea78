"""The band-power baseline learns the synthetic emotion effect on held-out stimuli."""

import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score

from physiosync import PhysioSyncError
from physiosync.evaluation.baselines import BandPowerClassifier, band_powers
from physiosync.datasets import DEAP
from physiosync.synthetic import make_deap
from physiosync.preprocessing.cache import prepare
from physiosync.evaluation.protocols import make_folds
from physiosync.preprocessing.windows import make_windows


def test_band_powers_find_a_sinusoid():
    t = np.arange(640) / 128.0
    x = np.stack([np.sin(2 * np.pi * 10 * t), np.sin(2 * np.pi * 20 * t)])[None]
    f = band_powers(x, 128.0).reshape(2, 4)
    assert f[0].argmax() == 1 and f[1].argmax() == 2  # alpha, beta
    with pytest.raises(PhysioSyncError, match="no frequency bin"):
        band_powers(x, 128.0, bands=((70.0, 80.0),))


@pytest.mark.parametrize("effect,learned", [(3.0, True), (0.0, False)])
def test_strong_effect_is_learned_on_held_out_stimuli_and_null_is_not(tmp_path, effect, learned):
    root = make_deap(tmp_path / "d", n_subjects=4, n_trials=12, seconds=20, effect=effect, seed=5)
    prepared = prepare(DEAP(root), cache_dir=False)
    windows = make_windows(prepared, lengths=(5.0,))
    meta = windows.metadata(5.0)
    y = windows.labels(5.0, "valence")
    units = meta[["subject", "trial"]].drop_duplicates().to_numpy()
    scores = []
    for fold in make_folds(units, "within-trial-kfold", n_splits=3, seed=0):
        def rows(part):
            keys = set(map(tuple, part))
            return np.flatnonzero([k in keys for k in map(tuple, meta[["subject", "trial"]]
                                                          .to_numpy())])

        train, test = rows(np.concatenate([fold.train, fold.val])), rows(fold.test)
        x_train = {"eeg": windows.get("eeg", 5.0, train)}
        x_test = {"eeg": windows.get("eeg", 5.0, test)}
        if len(np.unique(y[train])) < 2 or len(np.unique(y[test])) < 2:
            continue
        clf = BandPowerClassifier(sfreq={"eeg": 128.0}).fit(x_train, y[train])
        scores.append(balanced_accuracy_score(y[test], clf.predict(x_test)))
    assert scores
    if learned:
        assert np.mean(scores) > 0.8
    else:
        assert abs(np.mean(scores) - 0.5) < 0.2
