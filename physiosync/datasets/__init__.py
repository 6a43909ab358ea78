"""Dataset readers and format-faithful synthetic writers.

:data:`DATASETS` maps the configuration name of every dataset (``data.name``) to its
reader, a :class:`BaseDataset`; :func:`open_dataset` opens one. Both follow the
declarations of :data:`physiosync.dataset_specs.DATASET_SPECS`: adding a dataset is one
reader module plus one :class:`~physiosync.dataset_specs.DatasetSpec` there (a reader
is imported when its data are opened).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from ..dataset_specs import DATASET_SPECS
from ..exceptions import ConfigError, DataNotFoundError
from .amigos import AMIGOS
from .base import BaseDataset, ModalityInfo, Recording
from .deap import DEAP
from .dreamer import DREAMER
from .mahnob import MAHNOB
from .seed import SEED
from .seed_iv import SEEDIV

__all__ = ["DATASETS", "AMIGOS", "BaseDataset", "DEAP", "DREAMER", "MAHNOB", "ModalityInfo",
           "Recording", "SEED", "SEEDIV", "open_dataset"]


class _Readers(Mapping):
    """Configuration name -> reader class, read from the dataset specifications."""

    def __getitem__(self, name):
        if name not in DATASET_SPECS:
            raise KeyError(name)
        return DATASET_SPECS[name].load_reader()

    def __iter__(self):
        return iter(DATASET_SPECS)

    def __len__(self):
        return len(DATASET_SPECS)

    def __repr__(self):
        return f"<dataset readers: {', '.join(DATASET_SPECS)}>"


#: Configuration name (``data.name``) -> reader class, for every dataset of
#: :data:`~physiosync.dataset_specs.DATASET_SPECS` (read-only; follows the registry).
DATASETS: Mapping[str, type[BaseDataset]] = _Readers()


def open_dataset(name: str, root, *, ratings_csv=None) -> BaseDataset:
    """Open the dataset *name* at *root*, failing clearly when it is missing.

    Parameters
    ----------
    name : str
        A configuration name of :data:`DATASETS` (``"deap"``, ``"dreamer"``).
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
    if name not in DATASET_SPECS:
        _unknown(name)
    spec = DATASET_SPECS[name]
    if root is None:
        raise ConfigError(f"data.root is not set: give the {spec.root_description} with "
                          "--data-root PATH (or data.root in the config), or run "
                          "`physiosync demo` for synthetic data.")
    reader = spec.load_reader()
    root = Path(root).expanduser()
    if not root.exists():
        raise DataNotFoundError(f"data root {root} does not exist; expected the "
                                f"{spec.root_description}"
                                f"{': ' + spec.layout if spec.layout else ''}.")
    if ratings_csv is None:
        return reader(root)
    if "ratings_csv" not in spec.data_options:
        raise ConfigError(f"a ratings file (--ratings-csv, data.ratings_csv) is read for "
                          f"DEAP's .bdf recordings only; {spec.display_name} holds its "
                          f"ratings in its own files. Remove it.")
    return reader(root, ratings_csv=Path(ratings_csv).expanduser())


def _unknown(name):
    """Refuse a dataset name that is not declared (the configuration name is expected)."""
    import difflib

    close = difflib.get_close_matches(str(name), DATASET_SPECS, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASET_SPECS)}."
                      f"{hint}")
