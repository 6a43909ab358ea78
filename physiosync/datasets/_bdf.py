"""Reading BioSemi BDF files through MNE, with the guards every BDF reader needs.

MNE reads a truncated or inconsistent BDF without complaint, or fails deep inside with
an exception of its own; :func:`bdf_header_check` checks the fixed-width header
against the file's size first, and :func:`open_bdf` and :func:`get_data` turn MNE's
failures into one :class:`~physiosync.exceptions.DataFormatError` line naming the
file. Used by the DEAP (``sXX.bdf``) and MAHNOB-HCI (``Part_*_emotion.bdf``) readers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._logging import logger
from ..exceptions import DataFormatError, PhysioSyncError

__all__ = ["MNE_UNIT_SCALE", "bdf_header_check", "header_units", "open_bdf", "get_data",
           "output_scale", "rising_edges"]

#: Scale that MNE applied to a channel of this header unit (it returns SI volts).
MNE_UNIT_SCALE = {"uV": 1e-6, "\u00b5V": 1e-6, "\u03bcV": 1e-6, "\x83\xcaV": 1e-6, "mV": 1e-3}


def bdf_header_check(path: Path) -> int:
    """Check the BDF signature and that the file holds every data record it declares.

    MNE reads a truncated file without complaint (or fails deep inside), so the
    declared size is checked here first, from the fixed-width EDF header fields.
    Returns the declared number of data records (-1: unknown, the recorder did not
    close the file; then the file must at least end on a whole record).
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        head = f.read(256)
        if len(head) < 256 or head[:8] != b"\xffBIOSEMI":
            raise DataFormatError(
                f"{path}: not a BioSemi BDF file (starts with {head[:8]!r}, {size} bytes); "
                "expected the 256-byte header that begins with b'\\xffBIOSEMI'.")
        try:
            n_header = int(head[184:192].decode("ascii").strip())
            n_records = int(head[236:244].decode("ascii").strip())
            n_signals = int(head[252:256].decode("ascii").strip())
        except ValueError:
            raise DataFormatError(
                f"{path}: corrupt BDF header (header size, record count or signal count is "
                "not an integer); expected a valid BioSemi header.") from None
        try:
            duration = float(head[244:252].decode("ascii").strip())
        except ValueError:
            duration = float("nan")
        if not 0 < duration < 1e6:  # the sampling rate is samples / duration
            raise DataFormatError(
                f"{path}: corrupt BDF header (record duration {head[244:252]!r}); expected a "
                "positive number of seconds (BioSemi: 1).")
        if n_signals < 1 or n_header != 256 * (n_signals + 1) or size < n_header:
            raise DataFormatError(
                f"{path}: corrupt or truncated BDF header ({n_signals} signals, {n_header} "
                f"header bytes declared, {size} bytes in the file); expected "
                "256 * (signals + 1) header bytes.")
        f.seek(256 + 216 * n_signals)
        try:
            per_record = sum(int(f.read(8).decode("ascii").strip()) for _ in range(n_signals))
        except ValueError:
            raise DataFormatError(f"{path}: corrupt BDF header (samples per record is not an "
                                  "integer).") from None
    record_bytes = 3 * per_record
    if n_records < -1 or per_record < 1:
        raise DataFormatError(
            f"{path}: corrupt BDF header ({n_records} data records of {per_record} samples "
            "declared); expected a record count >= -1 and samples in every record.")
    if n_records >= 0:
        expected = n_header + record_bytes * n_records
        if size < expected:
            raise DataFormatError(
                f"{path}: truncated BDF file, {size} bytes but its header declares "
                f"{n_records} data records ({expected} bytes); expected the complete file.")
    else:
        # -1: "unknown" (recording not closed). MNE takes every whole record there is,
        # so a file that was cut short would lose its last trials without a word.
        whole, extra = divmod(size - n_header, record_bytes)
        if extra:
            raise DataFormatError(
                f"{path}: truncated BDF file: its header declares -1 (unknown) data records "
                f"and the file ends {extra} bytes into record {whole + 1} ({record_bytes} "
                "bytes each); expected whole records. The file was cut short.")
    return n_records


def open_bdf(path: Path, stim_channel):
    import mne

    try:
        return mne.io.read_raw_bdf(path, preload=False, stim_channel=stim_channel,
                                   verbose="error")
    except (PhysioSyncError, MemoryError):
        raise
    except Exception as err:  # MNE raises many kinds on corrupt files
        raise DataFormatError(
            f"{path}: MNE could not read it as BDF ({type(err).__name__}: {err}); expected a "
            "valid BioSemi BDF file.") from None


def get_data(raw, path: Path, picks, start=0, stop=None) -> np.ndarray:
    try:
        return raw.get_data(picks=picks, start=start, stop=stop)
    except (PhysioSyncError, MemoryError):
        raise
    except Exception as err:
        raise DataFormatError(
            f"{path}: reading samples {start}-{stop} failed ({type(err).__name__}: {err}); "
            "the BDF file is corrupt.") from None



def output_scale(raw, ch_names, voltage, path: Path) -> np.ndarray:
    """Factors from what MNE returns to the units the Recording reports.

    MNE converts channels whose header unit is µV or mV to volts and leaves the others
    as they are. Voltage channels (EEG, EXG) are reported in µV; the others in the
    header's own unit, i.e. with MNE's scaling undone.
    """
    units = getattr(raw, "_orig_units", {}) or {}
    out = np.empty(len(ch_names))
    for k, (name, is_volt) in enumerate(zip(ch_names, voltage)):
        unit = str(units.get(name, "")).strip()
        if is_volt and (unit in MNE_UNIT_SCALE or unit == "V"):
            out[k] = 1e6
        else:
            if is_volt:
                logger.warning("%s: channel %s has unit %r, not a voltage; kept as stored",
                               path.name, name, unit)
            out[k] = 1.0 / MNE_UNIT_SCALE.get(unit, 1.0)
    return out


def rising_edges(codes: np.ndarray) -> np.ndarray:
    """Samples where *codes* (a masked Status channel) leaves 0 for a non-zero value
    (sample 0 counts when the channel starts non-zero)."""
    nonzero = codes != 0
    edges = np.flatnonzero(nonzero[1:] & ~nonzero[:-1]) + 1
    if codes.size and nonzero[0]:
        edges = np.concatenate([[0], edges])
    return edges


def header_units(path: Path) -> dict:
    """Lower-case label -> physical dimension, as the header writes them.

    MNE keeps only the units it knows (``"n/a"`` for ``"Ohm"`` or ``"uS"``); call this
    after :func:`bdf_header_check`, which bounds the signal count by the file size.
    """
    with open(path, "rb") as f:
        n = int(f.read(256)[252:256].decode("ascii").strip())
        labels = f.read(16 * n)
        f.seek(256 + 96 * n)
        dims = f.read(8 * n)
    out = {}
    for i in range(n):
        label = labels[16 * i:16 * i + 16].decode("latin-1").strip().lower()
        out.setdefault(label, dims[8 * i:8 * i + 8].decode("latin-1").strip())
    return out
