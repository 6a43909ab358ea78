"""What the package knows about each dataset, declared once and free of torch.

A :class:`DatasetSpec` holds the facts about one dataset that every layer reads: its
configuration name, where its reader and its synthetic writers live (as import paths,
so that reading a specification never imports a reader), its modalities, its rating
scale and binarising threshold, the targets it can be classified on, its sessions and
what its data root looks like. :data:`DATASET_SPECS` registers one per dataset, and
everything else derives from it, read at the time of use: the allowed ``data.name``
values and the command line's choices (:data:`physiosync.params.DATASETS`), default
modalities, thresholds, the reader registry (:data:`physiosync.datasets.DATASETS`) and
the ``physiosync synth`` kinds. Adding a dataset is one reader module and one
``DatasetSpec`` here (docs/architecture.md, "A dataset").
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from ._utils.checks import Options, did_you_mean
from .exceptions import ConfigError, PhysioSyncError

__all__ = ["DatasetSpec", "DATASET_SPECS", "DatasetNames", "dataset_spec", "DatasetTable",
           "synthetic_kinds", "synthetic_writer", "SINGLE_SESSION", "TARGETS",
           "DatasetOption", "RATING_TARGETS", "CATEGORICAL_TARGETS", "QUADRANTS"]

#: Targets that are one rating scale, binarised high/low at the dataset's threshold.
RATING_TARGETS = ("valence", "arousal", "dominance", "liking", "familiarity",
                  "predictability")
#: Targets whose classes the dataset gives as integer codes 0..K-1 in a column of that
#: name (SEED's three emotions, SEED-IV's four); their names are declared per dataset
#: (``DatasetSpec.classes``).
CATEGORICAL_TARGETS = ("emotion",)
#: Every target a dataset may offer: a rating scale, ``"four"`` (the valence-arousal
#: quadrants, from two ratings) or a categorical one.
TARGETS = RATING_TARGETS + ("four",) + CATEGORICAL_TARGETS
#: The classes of ``"four"``, in label order (high/low arousal, high/low valence).
QUADRANTS = ("HA-HV", "HA-LV", "LA-HV", "LA-LV")

#: The session of every trial of a single-session dataset (MOABB's and braindecode's
#: ``session`` of a dataset recorded once).
SINGLE_SESSION = "0"


def _import(path: str, what: str):
    """The object at ``"package.module:attribute"``."""
    module, sep, attribute = path.partition(":")
    if not sep or not module or not attribute:
        raise PhysioSyncError(f"{what} {path!r} is not an import path 'package.module:name'.")
    try:
        return getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError) as err:
        raise PhysioSyncError(f"{what} {path!r} cannot be imported: {err}") from err


@dataclass(frozen=True)
class DatasetSpec:
    """The declaration of one dataset.

    Parameters
    ----------
    name : str
        Configuration name (``data.name``, the command line's ``--dataset``), lower case:
        ``"deap"``.
    display_name : str
        The name the reader reports (``BaseDataset.name``), which names cache entries, recordings
        and reports: ``"DEAP"``. Either name finds the specification
        (:func:`dataset_spec`).
    reader : str
        Import path of the reader class, ``"package.module:Class"``, a subclass of
        :class:`~physiosync.datasets.BaseDataset`; imported only when the data are opened.
    modalities : tuple of str
        Every modality a recording holds, EEG first.
    default_modalities : tuple of str
        Modalities prepared when none are named: EEG, then one peripheral signal.
    rating_scale : tuple of (float, float) | None
        Lowest and highest rating of the self-assessment scales, e.g. ``(1, 9)``;
        ``None`` for a dataset without ratings (its targets are categorical).
    threshold : float | None
        Rating at or above which a trial is "high" for the binary targets; ``None``
        with ``rating_scale``.
    targets : tuple of str
        Targets (:data:`physiosync.params.TARGETS`) the data allow: each rated scale,
        ``"four"`` (the valence-arousal quadrants) when both are rated, and the
        categorical targets of ``classes``.
    root_description : str
        What the data root must be, in a few words, for error messages.
    layout : str
        The files expected under the root, in a sentence (for documentation and errors).
    synthetic : dict of str -> str
        ``physiosync synth`` kinds and the import path of each one's writer
        (``"package.module:function"``, taking ``out`` and the writers' keyword
        arguments); empty if the dataset has no synthetic writer.
    sessions : tuple of str
        Names of the sessions each subject was recorded in (a subject's trials are
        numbered across sessions; ``Recording.sessions`` gives each trial's).
    data_options : tuple of str
        ``data`` keys that only this dataset reads besides the common ones
        (``"ratings_csv"``, ``"bdf_preprocessing"``); any other dataset refuses a given
        ``ratings_csv`` and ignores ``bdf_preprocessing``.
    classes : dict of str -> tuple of str
        For each categorical target (:data:`CATEGORICAL_TARGETS`) among *targets*, the
        names of its classes in code order: ``{"emotion": ("negative", "neutral",
        "positive")}`` means codes 0, 1, 2.
    session_train_trials : int | None
        Default ``protocol.train_trials`` of the ``session-split`` protocol: the trials
        of each session, in presentation order, that train (the literature's split; SEED:
        the first 9 of 15). ``None``: no customary split; ``session-split`` then needs
        ``protocol.train_trials``.
    has_baseline : bool
        Whether each trial holds a pre-stimulus baseline (DEAP's 3 s, AMIGOS's 5 s,
        MAHNOB-HCI's 30 s). Where it does not (SEED, SEED-IV: the clips only), an unset
        ``data.baseline`` means ``"none"``.
    """

    name: str
    display_name: str
    reader: str
    modalities: tuple
    default_modalities: tuple
    rating_scale: tuple
    threshold: float
    targets: tuple
    root_description: str
    layout: str = ""
    synthetic: dict = field(default_factory=dict)
    sessions: tuple = (SINGLE_SESSION,)
    data_options: tuple = ()
    classes: dict = field(default_factory=dict)
    session_train_trials: int | None = None
    has_baseline: bool = True

    def __post_init__(self):
        for key in ("modalities", "default_modalities", "targets", "sessions",
                    "data_options"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        object.__setattr__(self, "synthetic", dict(self.synthetic))
        object.__setattr__(self, "classes",
                           {k: tuple(str(c) for c in v) for k, v in self.classes.items()})
        where = f"dataset spec {self.name!r}"
        if not self.name or self.name != self.name.lower() or not self.display_name:
            raise PhysioSyncError(f"{where}: name must be lower case and display_name set.")
        if not self.modalities or self.modalities[0] != "eeg":
            raise PhysioSyncError(f"{where}: modalities must start with 'eeg', got "
                                  f"{self.modalities!r}.")
        extra = [m for m in self.default_modalities if m not in self.modalities]
        if not self.default_modalities or self.default_modalities[0] != "eeg" or extra:
            raise PhysioSyncError(f"{where}: default_modalities must start with 'eeg' and "
                                  f"be among {self.modalities!r}, got "
                                  f"{self.default_modalities!r}.")
        unknown = [t for t in self.targets if t not in TARGETS]
        if not self.targets or unknown:
            raise PhysioSyncError(f"{where}: targets must be among {TARGETS!r}, got "
                                  f"{self.targets!r}.")
        rated = [t for t in self.targets if t not in CATEGORICAL_TARGETS]
        if self.rating_scale is None or self.threshold is None:
            if rated or self.rating_scale is not None or self.threshold is not None:
                raise PhysioSyncError(f"{where}: rating_scale and threshold are needed "
                                      f"together, by the rated targets {rated!r}.")
        else:
            object.__setattr__(self, "rating_scale", tuple(self.rating_scale))
            low, high = (float(v) for v in self.rating_scale)
            if not low < float(self.threshold) <= high:
                raise PhysioSyncError(f"{where}: threshold {self.threshold!r} must lie in "
                                      f"the rating scale ({low:g}, {high:g}].")
        categorical = {t for t in self.targets if t in CATEGORICAL_TARGETS}
        if set(self.classes) != categorical or any(
                len(v) < 2 or len(set(v)) != len(v) for v in self.classes.values()):
            raise PhysioSyncError(f"{where}: classes must name two or more distinct classes "
                                  f"for each categorical target ({sorted(categorical)}), "
                                  f"got {self.classes!r}.")
        if not self.sessions or len(set(self.sessions)) != len(self.sessions):
            raise PhysioSyncError(f"{where}: sessions must be distinct names, got "
                                  f"{self.sessions!r}.")
        n = self.session_train_trials
        if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
            raise PhysioSyncError(f"{where}: session_train_trials must be a positive integer "
                                  f"or None, got {n!r}.")
        bad = [o for o in self.data_options if o not in ("ratings_csv", "bdf_preprocessing")]
        if bad:
            raise PhysioSyncError(f"{where}: unknown data_options {bad!r}.")

    @property
    def eeg_only(self) -> bool:
        """True if the dataset records EEG alone (SEED): PhysioSync then pre-trains with
        the temporal contrast on EEG only, without CM-CA, which needs a peripheral
        signal (:meth:`eeg_only_note`)."""
        return self.modalities == ("eeg",)

    def eeg_only_note(self) -> str:
        """The line that configurations and reports print for an :attr:`eeg_only`
        dataset."""
        return (f"{self.display_name} records EEG only: PhysioSync pre-trains LS-TCL on "
                "the EEG alone, without CM-CA (the eeg-only ablation's objective)")

    @property
    def default_target(self) -> str:
        """The target of a configuration that sets none: ``valence`` where the dataset
        rates it, else its first declared target (SEED, SEED-IV: ``emotion``)."""
        return "valence" if "valence" in self.targets else self.targets[0]

    def load_reader(self):
        """The reader class (imported now)."""
        return _import(self.reader, f"dataset {self.name!r}: reader")

    def class_names(self, target: str) -> tuple:
        """Names of the classes of *target*, in label order: ``("low", "high")`` for a
        rating, :data:`QUADRANTS` for ``"four"``, the declared ones for a categorical
        target."""
        self.check_target(target)
        if target in self.classes:
            return self.classes[target]
        return QUADRANTS if target == "four" else ("low", "high")

    def check_target(self, target: str) -> None:
        """Raise :class:`~physiosync.exceptions.ConfigError` if *target* is not rated here."""
        if target not in self.targets:
            raise ConfigError(f"target {target!r} does not exist in {self.display_name}; it "
                              f"has {', '.join(self.targets)}.")


#: Every dataset, by configuration name, in documentation order.
DATASET_SPECS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec(
        "deap", "DEAP", "physiosync.datasets.deap:DEAP",
        modalities=("eeg", "eog", "emg", "gsr", "resp", "ppg", "temp"),
        default_modalities=("eeg", "gsr"), rating_scale=(1.0, 9.0), threshold=5.0,
        targets=("valence", "arousal", "dominance", "liking", "four"),
        root_description="DEAP folder (sXX.dat or sXX.bdf files)",
        layout="s01.dat .. s32.dat (data_preprocessed_python/, the preprocessed release) "
               "or s01.bdf .. s32.bdf with participant_ratings.csv (data_original/)",
        synthetic={"deap": "physiosync.synthetic.deap:make_deap",
                   "deap-bdf": "physiosync.synthetic.deap:make_deap_bdf"},
        data_options=("ratings_csv", "bdf_preprocessing")),
    DatasetSpec(
        "dreamer", "DREAMER", "physiosync.datasets.dreamer:DREAMER",
        modalities=("eeg", "ecg"), default_modalities=("eeg", "ecg"),
        rating_scale=(1.0, 5.0), threshold=3.0,
        targets=("valence", "arousal", "dominance", "four"),
        root_description="DREAMER.mat file",
        layout="DREAMER.mat (MATLAB v5), or a folder holding it",
        synthetic={"dreamer": "physiosync.synthetic.dreamer:make_dreamer"}),
    # AMIGOS: GSR by default, as for DEAP (the peripheral signal of the method's
    # EEG-GSR pairing); its two ECG leads are the alternative (modalities eeg,ecg).
    DatasetSpec(
        "amigos", "AMIGOS", "physiosync.datasets.amigos:AMIGOS",
        modalities=("eeg", "ecg", "gsr"), default_modalities=("eeg", "gsr"),
        rating_scale=(1.0, 9.0), threshold=5.0,
        targets=("valence", "arousal", "dominance", "liking", "familiarity", "four"),
        root_description="AMIGOS folder (Data_Preprocessed_PXX.mat files)",
        layout="Data_Preprocessed_P01/Data_Preprocessed_P01.mat .. P40 (one folder per "
               "participant, as the release's zip files unpack) or the "
               "Data_Preprocessed_PXX.mat files flat in one folder (MATLAB v5)",
        synthetic={"amigos": "physiosync.synthetic.amigos:make_amigos"}),
    DatasetSpec(
        "mahnob", "MAHNOB-HCI", "physiosync.datasets.mahnob:MAHNOB",
        modalities=("eeg", "ecg", "gsr", "resp", "temp"), default_modalities=("eeg", "gsr"),
        rating_scale=(1.0, 9.0), threshold=5.0,
        targets=("valence", "arousal", "dominance", "predictability", "four"),
        root_description="MAHNOB-HCI Sessions folder (or the download folder holding it)",
        layout="Sessions/<id>/session.xml and Part_<p>_S_Trial<k>_emotion.bdf, one folder "
               "per session (the emotion-elicitation part of the HCI-Tagging download)",
        synthetic={"mahnob": "physiosync.synthetic.mahnob:make_mahnob"}),
    DatasetSpec(
        "seed", "SEED", "physiosync.datasets.seed:SEED",
        modalities=("eeg",), default_modalities=("eeg",), rating_scale=None, threshold=None,
        targets=("emotion",), classes={"emotion": ("negative", "neutral", "positive")},
        root_description="SEED Preprocessed_EEG folder (or SEED_EEG/ above it)",
        layout="Preprocessed_EEG/<subject>_<YYYYMMDD>.mat (3 sessions x 15 subjects, "
               "15 clips each) and label.mat",
        synthetic={"seed": "physiosync.synthetic.seed:make_seed"},
        sessions=("1", "2", "3"), session_train_trials=9, has_baseline=False),
    DatasetSpec(
        "seed-iv", "SEED-IV", "physiosync.datasets.seed_iv:SEEDIV",
        modalities=("eeg",), default_modalities=("eeg",), rating_scale=None, threshold=None,
        targets=("emotion",), classes={"emotion": ("neutral", "sad", "fear", "happy")},
        root_description="SEED-IV folder (holding eeg_raw_data/ and ReadMe.txt)",
        layout="eeg_raw_data/{1,2,3}/<subject>_<YYYYMMDD>.mat (24 clips each), ReadMe.txt "
               "with the session labels, optionally eeg_feature_smooth/",
        synthetic={"seed-iv": "physiosync.synthetic.seed:make_seed_iv"},
        # 16 of 24: the literature's usual split of a SEED-IV session, not confirmed by
        # the release's documentation (docs/evaluation.md)
        sessions=("1", "2", "3"), session_train_trials=16, has_baseline=False),
)}


def dataset_spec(name: str) -> DatasetSpec:
    """The specification of dataset *name*.

    Parameters
    ----------
    name : str
        Its configuration name (``"deap"``) or its reader's display name (``"DEAP"``),
        in any case.

    Returns
    -------
    spec : DatasetSpec

    Raises
    ------
    ConfigError
        If no dataset has that name (the message lists the known ones).
    """
    key = str(name)
    if key in DATASET_SPECS:
        return DATASET_SPECS[key]
    folded = key.casefold()
    for spec in DATASET_SPECS.values():
        if folded in (spec.name.casefold(), spec.display_name.casefold()):
            return spec
    raise ConfigError(f"Unknown dataset {name!r}; choose one of {', '.join(DATASET_SPECS)}."
                      f"{did_you_mean(key.lower(), DATASET_SPECS)}")


class DatasetNames(Sequence):
    """The configuration names of the registered datasets, read when used.

    A sequence that follows :data:`DATASET_SPECS` (a dataset registered later is in
    it), for ``choices=`` of the command line and for membership tests; it compares
    equal to the tuple of names.
    """

    def __getitem__(self, index):
        return tuple(DATASET_SPECS)[index]

    def __len__(self):
        return len(DATASET_SPECS)

    def __contains__(self, value):
        return isinstance(value, str) and value in DATASET_SPECS

    def __eq__(self, other):
        if isinstance(other, (DatasetNames, tuple, list)):
            return tuple(self) == tuple(other)
        return NotImplemented

    __hash__ = None

    def __repr__(self):
        return repr(tuple(DATASET_SPECS))


class DatasetOption(Options):
    """The constraint of ``data.name``: ``Options`` over the registered dataset names,
    read at each check."""

    def __init__(self):
        super().__init__(())

    @property
    def values(self):
        return tuple(DATASET_SPECS)

    @values.setter
    def values(self, _):  # Options.__init__ sets it; the registry is the source
        pass


class DatasetTable(Mapping):
    """A read-only table of one field of every dataset's declaration, keyed by name.

    Keys are the configuration names (``"deap"``); a lookup by display name
    (``"DEAP"``) finds the same entry, and an unknown name raises a :class:`KeyError`
    whose message lists the known ones (``get`` returns its default). The table
    follows :data:`~physiosync.dataset_specs.DATASET_SPECS`.

    Parameters
    ----------
    field : str
        The :class:`~physiosync.dataset_specs.DatasetSpec` attribute each entry is.
    """

    def __init__(self, field: str):
        self.field = field

    def __getitem__(self, name):
        try:
            return getattr(dataset_spec(name), self.field)
        except ConfigError as err:
            raise KeyError(str(err)) from None

    def __contains__(self, name):
        try:
            dataset_spec(name)
        except ConfigError:
            return False
        return True

    def __iter__(self):
        return iter(DATASET_SPECS)

    def __len__(self):
        return len(DATASET_SPECS)

    def __repr__(self):
        return repr(dict(self))


def synthetic_kinds() -> dict:
    """Every ``physiosync synth`` kind, mapped to the dataset it writes."""
    return {kind: spec.name for spec in DATASET_SPECS.values() for kind in spec.synthetic}


def synthetic_writer(kind: str):
    """The writer function of ``physiosync synth`` kind *kind* (imported now)."""
    kinds = synthetic_kinds()
    if kind not in kinds:
        raise ConfigError(f"Unknown synthetic dataset {kind!r}; choose one of "
                          f"{', '.join(kinds)}.{did_you_mean(kind, kinds)}")
    return _import(DATASET_SPECS[kinds[kind]].synthetic[kind], f"synthetic writer {kind!r}")
