"""Writing BioSemi BDF files as the recorders did: the DEAP and MAHNOB-HCI writers' part.

:func:`bdf_stream` opens a BDF file (24-bit EDF variant, through :mod:`pyedflib`) with
BioSemi's header conventions (``µV`` for the electrodes, ``Ohm`` for ``GSR1``/``GSR2``,
``degC`` for ``Temp``, a ``Boolean`` Status channel last whose integers are written as
they are) and yields a :class:`RecordStream` that takes the signals block by block and
writes them as whole 1-s data records. The file is written to a temporary name and
renamed when complete.
"""

from __future__ import annotations

import contextlib
from datetime import datetime

import numpy as np

from .._utils import atomic_path
from ..exceptions import PhysioSyncError

__all__ = ["bdf_stream", "signal_headers", "RecordStream"]

_VOLT = dict(dimension="uV", physical_min=-262144, physical_max=262143,
             digital_min=-8388608, digital_max=8388607, prefilter="HP: DC; LP: 104 Hz")


def signal_headers(labels, sfreq: int) -> list[dict]:
    """pyedflib signal headers of a BioSemi file with these *labels* (Status last)."""
    headers = []
    for i, label in enumerate(labels):
        h = dict(_VOLT, label=label, sample_frequency=int(sfreq),
                 transducer="Active Electrode")
        if label in ("GSR1", "GSR2"):
            h.update(dimension="Ohm", physical_min=0, physical_max=10000000,
                     transducer="Skin resistance")
        elif label == "Temp":
            h.update(dimension="degC", physical_min=-50, physical_max=100,
                     transducer="Thermistor")
        elif label in ("Resp", "Plet", "Erg1", "Erg2"):
            h.update(transducer="Analog input")
        if i == len(labels) - 1:  # the Status channel: integers written as they are
            h.update(dimension="Boolean", physical_min=-8388608, physical_max=8388607,
                     transducer="Triggers and Status", prefilter="No filtering")
        headers.append(h)
    return headers


class RecordStream:
    """Feeds ``(n_channels, n)`` blocks to an EdfWriter as whole 1-s data records.

    Attributes
    ----------
    n_written : int
        Samples per channel written so far (whole records).
    position : int
        Samples per channel taken so far (written and pending).
    """

    def __init__(self, writer, headers, record: int):
        self.writer, self.record = writer, record
        self.lo = np.array([h["physical_min"] for h in headers], float)[:, None]
        self.hi = np.array([h["physical_max"] for h in headers], float)[:, None]
        self.pending = np.empty((len(headers), 0))
        self.n_written = 0

    @property
    def position(self) -> int:
        return self.n_written + self.pending.shape[1]

    def add(self, block: np.ndarray) -> None:
        data = np.concatenate([self.pending, np.clip(block, self.lo, self.hi)], axis=1)
        n_full = data.shape[1] // self.record
        for k in range(n_full):
            chunk = np.ascontiguousarray(data[:, k * self.record:(k + 1) * self.record])
            if self.writer.blockWritePhysicalSamples(chunk.ravel()) < 0:
                raise PhysioSyncError("pyedflib failed to write a BDF data record")
        self.n_written += n_full * self.record
        self.pending = data[:, n_full * self.record:]

    def close(self) -> None:
        if self.pending.shape[1]:  # hold the last values up to the end of the record
            self.add(np.repeat(self.pending[:, -1:], self.record - self.pending.shape[1], axis=1))


@contextlib.contextmanager
def bdf_stream(path, labels, sfreq: int, *, patient: str, start: datetime):
    """Write the BDF file *path* with these channel *labels* (Status last) at *sfreq*.

    Parameters
    ----------
    path : str | Path
        The file; written to a temporary name, renamed into place when the block ends
        without an error.
    labels : sequence of str
        Channel labels, the Status channel last.
    sfreq : int
        Sampling rate of every channel (one data record = 1 s).
    patient : str
        The header's patient code.
    start : datetime
        The header's start date and time (fixed by the writers: same seed, same bytes).

    Yields
    ------
    stream : RecordStream
        Takes ``(len(labels), n)`` blocks in physical units; the last record is padded
        by holding the last values.
    """
    import pyedflib

    with atomic_path(path) as tmp:
        writer = pyedflib.EdfWriter(str(tmp), len(labels), file_type=pyedflib.FILETYPE_BDF)
        try:
            headers = signal_headers(labels, sfreq)
            writer.setSignalHeaders(headers)
            writer.setStartdatetime(start)
            writer.setEquipment("BioSemi_ActiveTwo")
            writer.setPatientCode(patient)
            stream = RecordStream(writer, headers, int(sfreq))
            yield stream
            stream.close()
        finally:
            writer.close()
