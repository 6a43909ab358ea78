"""
PhysioSync inside scikit-learn's cross_val_score
================================================

:class:`physiosync.PhysioSyncClassifier` is a scikit-learn classifier: it pre-trains its
encoders on the training windows of each fold (inter-subject synchrony needs to know which
windows are which subject's, trial's and window's), then fine-tunes the fusion head. With
scikit-learn's metadata routing, :func:`~sklearn.model_selection.cross_val_score` hands each
fold's model the ids of its own training windows, and ``groups`` keeps every video's windows
on one side of the split (held-out videos, never held-out windows of a seen video).
"""

# %%
import tempfile
from pathlib import Path

import numpy as np
import sklearn
from sklearn.model_selection import GroupKFold, cross_val_score

from physiosync import PhysioSyncClassifier
from physiosync.datasets import DEAP
from physiosync.preprocessing.cache import prepare
from physiosync.preprocessing.windows import make_windows
from physiosync.synthetic import make_deap

work = Path(tempfile.mkdtemp())
make_deap(work / "deap", n_subjects=3, n_trials=12, seconds=15, effect=3.0, seed=2,
          verbose=False)
windows = make_windows(prepare(DEAP(work / "deap"), cache_dir=work / "cache", verbose=False),
                       lengths=(1.0, 5.0))
X, y, ids = windows.to_sklearn(5.0, target="valence")  # EEG (32 channels) then GSR
print(X.shape, np.bincount(y))

# %%
# A tiny model (the spectral embedding learns the synthetic effect at this size; the
# authors' multi-view embedding needs far more data).
sklearn.set_config(enable_metadata_routing=True)
clf = PhysioSyncClassifier(n_eeg_channels=32, embedding="spectral", embed_dim=16, depth=1,
                           n_heads=2, n_prompts=1, projector_dims=(32, 32), batch_slots=4,
                           pretrain_steps=100, epochs=15, batch_size=8, random_state=0,
                           verbose=False)
clf.set_fit_request(subject=True, trial=True, window=True, session=True)
params = {name: ids[name].to_numpy() for name in ("subject", "trial", "window", "session")}
scores = cross_val_score(clf, X, y, cv=GroupKFold(n_splits=3), scoring="balanced_accuracy",
                         params={**params, "groups": ids["trial"].to_numpy()})
print("balanced accuracy per fold:", np.round(scores, 2), "chance 0.5")
sklearn.set_config(enable_metadata_routing=False)
