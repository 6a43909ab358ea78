"""The versioned result schema: fold files and ``report.json``, typed, with their migrations.

Two documents leave a run: a **fold file** (``folds/<pipeline>/fold_XX.json``, one
:class:`FoldRecord`, written by :func:`physiosync.evaluation.runner.cross_validate`) and
the **report** (``report.json``, one :class:`Report`, computed by
:func:`physiosync.evaluation.summary.build_report` and rendered by
:mod:`physiosync.reporting`). Each records its ``schema_version``; the keys are
documented in ``docs/evaluation.md`` and typed below.

Readers never guess a document's age from the keys it happens to hold. They call
:func:`migrate_fold` or :func:`migrate_report`, which bring any document this version
can read to the current version, one step at a time (a function from version *n* to
*n + 1* per step), and refuse a document of a later version with one line. Version 1 is
every document written before the key existed: what physiosync wrote up to and
including the release that introduced this module, and the older shapes those releases
still read (fold files without training labels; reports without a headline, Holm's
adjustment, the pairing of their comparisons, per-metric chance levels or the name of
their permutation null). Version 2 is version 1 made explicit:

- fold files: ``schema_version``; ``train_labels`` is present, None where the file
  does not record them (its chance levels and metrics are then recomputed from the data);
- reports: ``schema_version``; every pipeline has a ``headline`` (from its summary,
  with ``metric`` None when it has no per-subject summary); every comparison has
  ``p_value_holm`` and ``holm_family``, ``pairing`` and ``primary_test``; every chance
  level of a fold or a subject maps metric names to values (a single number was the
  chance level of accuracy); every permutation p-value names its null
  (``"within-subject"`` before there were several).

To change the schema, raise :data:`FOLD_VERSION` or :data:`REPORT_VERSION`, add the step
from the previous version to ``_FOLD_STEPS`` or ``_REPORT_STEPS``, update the types
and ``docs/evaluation.md``, and add a file written by the previous version to
``tests/data/`` so that a test reads it.
"""

from __future__ import annotations

import copy
from typing import Any, NotRequired, TypedDict

from ..exceptions import DataFormatError

__all__ = ["FOLD_VERSION", "REPORT_VERSION", "METRIC_LABELS", "migrate_fold", "migrate_report",
           "schema_version", "FoldRecord", "TrainLabels", "Report", "PipelinePart",
           "Headline", "FoldEntry", "Stat", "OneClass", "PValue", "RefitNull", "Comparison",
           "ChannelImportance"]

#: The version of the fold files this version writes.
FOLD_VERSION = 2
#: The version of ``report.json`` this version writes.
REPORT_VERSION = 2

#: Readable names of the metrics of a report (without their level).
METRIC_LABELS = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy",
                 "macro_f1": "macro F1", "f1": "F1 (high)", "roc_auc": "ROC AUC",
                 "weighted_f1": "weighted F1"}

Unit = list  # [subject, trial]


# --------------------------------------------------------------------------- fold files
class TrainLabels(TypedDict):
    """Class counts of the windows a fold's models learn from (``train`` + ``val``)."""
    per_subject_models: bool
    pooled: list  # counts per class over all training windows
    subjects: dict  # str(subject) -> counts per class


class FoldRecord(TypedDict):
    """One fold file: the fold's units, its test predictions and their metrics."""
    schema_version: int
    key: str  # settings, hyper-parameters and units: a file is reused only for its key
    data_key: NotRequired[str]  # content key of the data
    fold: int
    leaky: bool
    train: list[Unit]
    val: list[Unit]
    test: list[Unit]
    pretrain: list[Unit]
    test_windows: NotRequired[list]  # legacy-segment folds
    metrics: dict  # level -> metric -> value (runner.fold_metrics)
    train_labels: TrainLabels | None  # None: not recorded (recomputed from the data)
    predictions: list[dict]  # subject, trial, window, y, p0..p{C-1}[, one_class]
    curves: NotRequired[dict]  # pretrain.<kind>, finetune
    channel_importance: NotRequired[list | None]
    model_selection: NotRequired[list]  # per fitted model: params, selection
    checksum: str  # SHA-256 of the rest (runner.fold_checksum)


# --------------------------------------------------------------------------- report.json
class Stat(TypedDict):
    """A summary over subjects or folds."""
    mean: float | None
    std: float | None
    n: int
    chance: float | None


class Headline(TypedDict):
    """A pipeline's headline: its per-subject metric, mean over subjects."""
    metric: str | None  # "subject.balanced_accuracy" or "subject.macro_f1"
    label: str | None
    mean: float | None
    std: float | None
    n: int
    chance: float | None
    chance_rule: NotRequired[str]
    p_value: NotRequired[float | None]
    null: NotRequired[str]


class FoldEntry(TypedDict):
    """One fold of a pipeline's part."""
    fold: int
    train: list[Unit]
    val: list[Unit]
    test: list[Unit]
    metrics: dict  # level ("subject", "window", "trial") -> metric -> value
    chance: dict  # level -> metric -> chance level
    chance_source: str  # "training labels" or "test labels"
    n_windows: dict  # train, test
    one_class_windows: int


class OneClass(TypedDict):
    """Test windows predicted by the constant fallback of a one-class training split."""
    windows: int
    of_windows: int
    units: int
    subjects: list
    folds: list
    summary_without: dict | None  # "subject.<metric>" -> Stat


class PValue(TypedDict):
    """A permutation test of the headline."""
    metric: str
    value: float
    p_value: float
    permutations: int
    null_mean: float
    null_q95: float
    null_name: str
    null: str  # its definition


class RefitNull(TypedDict):
    """The refit permutation null (``protocol.permutation_refit``)."""
    metric: str
    observed: float
    null: list
    p_value: float
    n: int
    definition: str


class ChannelImportance(TypedDict):
    channels: list[str]
    values: list[float]
    method: str | None


class PipelinePart(TypedDict):
    """``pipelines.<name>``: one pipeline's results (summary.summarize_pipeline)."""
    headline: Headline
    folds: list[FoldEntry]
    per_subject: dict  # subject -> metric -> value, and "chance": metric -> chance
    summary: dict  # "<level>.<metric>" -> Stat
    one_class: OneClass
    confusion: dict  # "window", "trial" -> matrix (rows: true class)
    curves: dict
    channel_importance: ChannelImportance | list | None
    p_value: NotRequired[PValue]
    p_values: NotRequired[dict]  # null name -> PValue
    p_value_note: NotRequired[str]
    refit_null: NotRequired[RefitNull]
    model: NotRequired[dict]  # kind, embedding, pretrained, modalities, text, ...
    model_selection: NotRequired[dict]


class Comparison(TypedDict):
    """The primary pipeline minus another on the headline metric, paired."""
    pipeline: str
    baseline: str
    metric: str
    level: str  # "subject" or "fold"
    pairing: str
    value: NotRequired[str]
    differences: dict  # unit -> difference
    mean: float | None
    std: float | None
    n: int
    ci95: list
    ci_method: NotRequired[str]
    cohens_dz: NotRequired[float | None]
    primary_test: str  # "sign-flip" or "corrected-t"
    test: NotRequired[str]
    p_value: float | None
    min_p: NotRequired[float | None]
    sign_flip: NotRequired[dict | None]
    corrected_t: NotRequired[dict | None]
    p_value_holm: float | None
    holm_family: NotRequired[str]
    warning: str | None


class Report(TypedDict):
    """``report.json``."""
    schema_version: int
    protocol: str
    target: str
    leaky: bool
    warning: str | None
    caveat: str | None
    n_classes: int
    class_names: list[str]
    primary: str
    per_subject_models: bool
    config: dict
    data: dict | None
    headline: Headline  # the primary pipeline's, as are folds, per_subject, summary
    folds: list[FoldEntry]
    per_subject: dict
    summary: dict
    pipelines: dict[str, PipelinePart]
    comparisons: list[Comparison]
    label_efficiency: NotRequired[dict]


# --------------------------------------------------------------------------- migrations
def schema_version(doc: Any, what: str, current: int) -> int:
    """The ``schema_version`` of *doc* (1 when absent); a later or invalid one is refused.

    Raises
    ------
    DataFormatError
        In one line, naming *what* and the versions, when the version is not an
        integer from 1 to *current*.
    """
    version = doc.get("schema_version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise DataFormatError(f"{what} has schema_version {version!r}, not a version number; "
                              "it was not written by physiosync or was edited.")
    if version > current:
        raise DataFormatError(f"{what} was written by a newer physiosync (schema_version "
                              f"{version}; this version reads up to {current}): upgrade "
                              "physiosync to read it.")
    return version


def _migrate(doc: dict, steps: dict, what: str, current: int) -> dict:
    version = schema_version(doc, what, current)
    if version == current:
        return doc
    doc = copy.deepcopy(doc)  # the caller's document is left as it was
    while version < current:
        steps[version](doc)
        version += 1
        doc["schema_version"] = version
    return doc


def _fold_1_to_2(doc: dict) -> None:
    doc.setdefault("train_labels", None)


def _chance_per_metric(chance):
    """A chance level of version 1 may be one number: the chance level of accuracy."""
    return chance if isinstance(chance, dict) else {"accuracy": chance}


def _chances_1_to_2(folds, per_subject) -> None:
    for fold in (folds if isinstance(folds, list) else ()):
        if isinstance(fold, dict) and isinstance(fold.get("chance"), dict):
            fold["chance"] = {level: _chance_per_metric(c) for level, c in fold["chance"].items()}
    for entry in (per_subject.values() if isinstance(per_subject, dict) else ()):
        if isinstance(entry, dict) and "chance" in entry:
            entry["chance"] = _chance_per_metric(entry["chance"])


def _part_1_to_2(part: dict, n_classes) -> None:
    from .metrics import headline_metric

    _chances_1_to_2(part.get("folds"), part.get("per_subject"))
    p_values = part.get("p_values") if isinstance(part.get("p_values"), dict) else {}
    for pv in [part.get("p_value"), *p_values.values()]:
        if isinstance(pv, dict):
            pv.setdefault("null_name", "within-subject")
    if not part.get("headline"):
        metric = headline_metric(n_classes)
        summary = part.get("summary") if isinstance(part.get("summary"), dict) else {}
        s = summary.get(f"subject.{metric}")
        s = s if isinstance(s, dict) else None
        part["headline"] = (
            {"metric": None, "label": None, "mean": None, "std": None, "n": 0, "chance": None}
            if s is None else
            {"metric": f"subject.{metric}", "label": f"per-subject {METRIC_LABELS[metric]}",
             "mean": s.get("mean"), "std": s.get("std"), "n": s.get("n"),
             "chance": s.get("chance")})


def _report_1_to_2(doc: dict) -> None:
    from .statistics import holm_families

    n_classes = doc.get("n_classes") or 2
    pipes = doc.get("pipelines") if isinstance(doc.get("pipelines"), dict) else {}
    for part in pipes.values():
        if isinstance(part, dict):
            _part_1_to_2(part, n_classes)
    # the primary pipeline's folds and per-subject table, repeated at the top level
    _chances_1_to_2(doc.get("folds"), doc.get("per_subject"))
    name = doc.get("primary")
    primary = pipes.get(name) if isinstance(name, str) and name in pipes else next(
        iter(pipes.values()), None)
    if not doc.get("headline") and isinstance(primary, dict):
        doc["headline"] = primary["headline"]
    comps = doc.get("comparisons")
    if isinstance(comps, list) and all(isinstance(c, dict) for c in comps):
        for c in comps:
            if not c.get("pairing"):
                c["pairing"] = (f"by {c.get('level', 'subject')} (a report written before "
                                "the pairing was explained)")
                c["primary_test"] = c.get("primary_test") or "sign-flip"
        if any("p_value_holm" not in c for c in comps):
            doc["comparisons"] = holm_families(comps)


_FOLD_STEPS = {1: _fold_1_to_2}
_REPORT_STEPS = {1: _report_1_to_2}


def migrate_fold(record: dict, *, source="a fold file") -> FoldRecord:
    """A fold record of any version this physiosync reads, at :data:`FOLD_VERSION`.

    Parameters
    ----------
    record : dict
        As read from a fold file (JSON types). It is not modified.
    source : str | Path
        The file, named in the error.

    Returns
    -------
    record : dict
        *record* itself when it is current, else a migrated copy.

    Raises
    ------
    DataFormatError
        If it was written by a later version (one line).
    """
    return _migrate(record, _FOLD_STEPS, str(source), FOLD_VERSION)


def migrate_report(report: dict, *, source="the report") -> Report:
    """A report of any version this physiosync reads, at :data:`REPORT_VERSION`.

    Parameters
    ----------
    report : dict
        As read from ``report.json`` (or built in memory). It is not modified.
    source : str | Path
        The file, named in the error.

    Returns
    -------
    report : dict
        *report* itself when it is current, else a migrated copy.

    Raises
    ------
    DataFormatError
        If it was written by a later version (one line).
    """
    return _migrate(report, _REPORT_STEPS, str(source), REPORT_VERSION)
