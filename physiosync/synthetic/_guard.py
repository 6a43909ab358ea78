"""What ``synth`` and ``demo`` may write: never over dataset files they did not write.

A synthetic writer lists every file it writes in the folder's ``.physiosync-files``
(kind ``"synth"``, :mod:`physiosync._utils.manifest`). Before writing anything it refuses
a folder that holds a dataset file of the format it writes (for DEAP any ``sNN.dat``,
``sNN.bdf`` or ``participant_ratings.csv``, whatever the case; for DREAMER the ``.mat``
it would write) that is not listed as written by a synthetic writer: a user's real data
is never replaced, and never mixed with synthetic subjects. Files it wrote itself are
rewritten (synthetic data is regenerated from its parameters).
"""

from __future__ import annotations

import re
from pathlib import Path

from .._utils.manifest import few_names, read_manifest, recording
from ..exceptions import PhysioSyncError

#: Names of DEAP dataset files (the .dat release, the .bdf recordings, their ratings).
DEAP_FILES = re.compile(r"^(s\d+\.(dat|bdf)|participant_ratings\.csv)$", re.IGNORECASE)


def check_folder(folder, targets=(), pattern=None) -> None:
    """Refuse, before any write, a dataset file in *folder* that synth did not write.

    Parameters
    ----------
    folder : str | Path
        Where the synthetic files go (need not exist).
    targets : iterable of str
        Names the writer will write.
    pattern : re.Pattern | None
        Further names that count as dataset files of the format.

    Raises
    ------
    PhysioSyncError
        Naming the files, in one line.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return
    listed = read_manifest(folder) or {}
    names = set(targets)
    if pattern is not None:
        names |= {p.name for p in folder.iterdir() if pattern.match(p.name)}
    theirs = sorted(n for n in names
                    if ((folder / n).exists() or (folder / n).is_symlink())
                    and listed.get(n) != "synth")
    if theirs:
        shown = few_names(theirs)
        raise PhysioSyncError(
            f"{folder} already holds dataset files that physiosync did not write ({shown}); "
            "synthetic data never replaces them or joins them: move them away or choose "
            "another folder.")


def recording_synth(folder):
    """Every file written below *folder* in this block is listed as synth's."""
    return recording(folder, "synth")
