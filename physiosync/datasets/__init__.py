"""Dataset readers and format-faithful synthetic writers.

:data:`DATASETS` maps the configuration name of every dataset (``data.name``) to its
reader, a :class:`BaseDataset`; :func:`open_dataset` opens one. Adding a dataset is
one reader module plus one line here (and its name in
:data:`physiosync.params.DATASETS`, which configuration files are checked against).
"""

from __future__ import annotations

from pathlib import Path

from ..exceptions import ConfigError, DataNotFoundError
from .base import BaseDataset, ModalityInfo, Recording
from .deap import DEAP
from .dreamer import DREAMER

__all__ = ["DATASETS", "BaseDataset", "DEAP", "DREAMER", "ModalityInfo", "Recording",
           "open_dataset"]

#: Configuration name (``data.name``) -> reader class.
DATASETS: dict[str, type[BaseDataset]] = {"deap": DEAP, "dreamer": DREAMER}


def open_dataset(name: str, root, *, ratings_csv=None) -> BaseDataset:
    """Open the dataset *name* at *root*, failing clearly when it is missing.

    Parameters
    ----------
    name : str
        A key of :data:`DATASETS` (``"deap"``, ``"dreamer"``).
    root : str | Path | None
        Where the data are: the DEAP folder, ``DREAMER.mat``, ...
    ratings_csv : str | Path | None
        DEAP's ``participant_ratings.csv`` for the ``.bdf`` recordings (``None``: found
        beside them); see :class:`~physiosync.datasets.DEAP`. Other datasets refuse it.

    Returns
    -------
    dataset : BaseDataset
        The reader, opened.

    Raises
    ------
    ConfigError
        If *name* is unknown, *root* is None, or *ratings_csv* is given for a dataset
        other than DEAP.
    DataNotFoundError
        If *root* does not exist (or the reader finds no data there).
    """
    if name not in DATASETS:
        import difflib

        close = difflib.get_close_matches(str(name), DATASETS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASETS)}."
                          f"{hint}")
    if root is None:
        raise ConfigError("data.root is not set: give the DEAP folder or DREAMER.mat with "
                          "--data-root PATH (or data.root in the config), or run "
                          "`physiosync demo` for synthetic data.")
    reader = DATASETS[name]
    root = Path(root).expanduser()
    if not root.exists():
        raise DataNotFoundError(f"data root {root} does not exist; expected the "
                                f"{reader.root_description}.")
    if ratings_csv is None:
        return reader(root)
    if name != "deap":
        raise ConfigError(f"a ratings file (--ratings-csv, data.ratings_csv) is read for "
                          f"DEAP's .bdf recordings only; {reader.name} holds its ratings in "
                          f"its own files. Remove it.")
    return reader(root, ratings_csv=Path(ratings_csv).expanduser())
