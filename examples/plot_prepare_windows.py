"""
Prepare windows and read them
=============================

:func:`~physiosync.preprocessing.cache.prepare` removes the pre-stimulus baseline,
normalises and crops every subject into a verified on-disk cache;
:func:`~physiosync.preprocessing.windows.make_windows` cuts the 5 s and 1 s windows that
PhysioSync uses, as views over that cache (no copy).
"""

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from physiosync.datasets import DEAP
from physiosync.preprocessing.cache import prepare
from physiosync.preprocessing.windows import make_windows
from physiosync.synthetic import make_deap

work = Path(tempfile.mkdtemp())
make_deap(work / "deap", n_subjects=3, n_trials=6, seconds=20, seed=1, verbose=False)

prepared = prepare(DEAP(work / "deap"), cache_dir=work / "cache", verbose=False)
windows = make_windows(prepared, lengths=(1.0, 5.0))
print("subjects", windows.subjects, "- 5 s windows of subject 1:", windows.n_windows(5.0, 1))

# %%
# A subject's 5 s EEG windows: (trials, windows per trial, channels, samples), a view.
x = windows.windows(1, "eeg", 5.0)
print(x.shape, x.dtype, x.base is not None)
# the 1 s windows inside the first 5 s window (LS-TCL's short scale)
print(windows.sub_windows(5.0, 1.0)[0])
# every window's label: its video's rating, binarised at the scale's midpoint
labels = windows.labels(5.0, "valence")
print(labels.shape, np.bincount(labels))

# %%
# The same windows as scikit-learn arrays, with the ids that group them.
X, y, ids = windows.to_sklearn(5.0, target="valence")
print(X.shape, y.shape, list(ids.columns))

fig, ax = plt.subplots(figsize=(6, 2.5))
ax.plot(x[0, 0, :4].T + np.arange(4) * 4)  # four channels, offset
ax.set(xlabel="sample", ylabel="z-scored EEG (offset)", title="subject 1, video 1, 5 s")
fig.tight_layout()
