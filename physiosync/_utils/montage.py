"""The standard 10-20 EEG montage, shared by the dataset readers and the HTML report."""

from __future__ import annotations

from ..exceptions import PhysioSyncError


def standard_montage():
    """The standard 10-20 montage, under its current MNE name.

    Recent MNE releases call it ``"colin27_1020"``, older ones ``"standard_1020"``;
    the recent name is tried first. MNE is imported on the first call only.

    Returns
    -------
    montage : mne.channels.DigMontage
        The montage.
    """
    import mne

    for name in ("colin27_1020", "standard_1020"):
        try:
            return mne.channels.make_standard_montage(name)
        except ValueError:
            continue
    raise PhysioSyncError("MNE provides no standard 10-20 montage")  # pragma: no cover
