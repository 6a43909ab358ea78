"""
Read a subject as MNE objects
=============================

Write a small synthetic copy of DEAP's preprocessed release, read one participant with
:class:`physiosync.datasets.DEAP`, and look at it with MNE: the EEG of one video as
:class:`mne.EpochsArray` (SI units, ratings as metadata) and its power spectrum.
"""

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt

from physiosync.datasets import DEAP
from physiosync.synthetic import make_deap

folder = Path(tempfile.mkdtemp()) / "data_preprocessed_python"
make_deap(folder, n_subjects=2, n_trials=4, seconds=20, seed=0, verbose=False)

deap = DEAP(folder)
rec = deap.load_subject(1)
print(deap.subjects, rec.modalities, rec.sfreq("eeg"))
print(rec.ratings)

# %%
# One Recording per participant; ``to_epochs`` gives the stimulus part of every trial as
# MNE epochs, with the montage and the ratings as metadata.
epochs = rec.to_epochs("eeg")
print(epochs)
fig = epochs.compute_psd(fmax=45).plot(show=False)

# %%
# The galvanic skin response of the first video, in its own unit.
gsr = rec.stimulus("gsr", trial=0)
fig, ax = plt.subplots(figsize=(6, 2.5))
ax.plot(gsr[0])
ax.set(xlabel="sample (128 Hz)", ylabel=rec.info("gsr").unit, title="GSR, video 1")
fig.tight_layout()
