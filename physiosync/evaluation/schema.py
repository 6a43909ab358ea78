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
*n + 1* per step), and refuse a document of a later version with one line. The renderers
then call :func:`validate_report`, which checks the type of every field they read and
refuses a damaged report with one line naming the field's path, so that they index the
report directly. Version 1 is
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
import numbers
from collections.abc import Mapping
from typing import Any, NotRequired, TypedDict

from .._utils.docs import fill_doc
from ..exceptions import DataFormatError

__all__ = ["FOLD_VERSION", "REPORT_VERSION", "METRIC_LABELS", "migrate_fold", "migrate_report",
           "schema_version", "validate_report", "FoldRecord", "TrainLabels", "Report", "PipelinePart",
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


@fill_doc
def migrate_fold(record: dict, *, source="a fold file") -> FoldRecord:
    """A fold record of any version this physiosync reads, at :data:`FOLD_VERSION`.

    Parameters
    ----------
    record : dict
        As read from a fold file (JSON types). It is not modified.
    %(named_source)s

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


@fill_doc
def migrate_report(report: dict, *, source="the report") -> Report:
    """A report of any version this physiosync reads, at :data:`REPORT_VERSION`.

    Parameters
    ----------
    report : dict
        As read from ``report.json`` (or built in memory). It is not modified.
    %(named_source)s

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


# --------------------------------------------------------------------------- validation
class _Damaged(Exception):
    """A field of the wrong type: its path and what it should be."""

    def __init__(self, path: str, expected: str, value) -> None:
        super().__init__(path, expected, value)
        self.path, self.expected, self.value = path, expected, value


def _json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return f"the string {value[:40]!r}"
    if isinstance(value, numbers.Real):
        return "a number"
    if isinstance(value, Mapping):
        return "an object" if value else "an empty object"
    if isinstance(value, (list, tuple)):
        return f"an array of {len(value)}"
    return f"a {type(value).__name__}"


def _is_number(value) -> bool:
    # NaN is a number: reports built in memory hold it where a metric is undefined
    return isinstance(value, numbers.Real) and not isinstance(value, bool) \
        and type(value).__name__ != "bool_"


class _Kind:
    """A check of one value: ``expected`` names it in the refusal."""

    def __init__(self, expected: str, test) -> None:
        self.expected, self._test = expected, test

    def check(self, value, path: str) -> None:
        if not self._test(value):
            raise _Damaged(path, self.expected, value)


_NUM = _Kind("a number or null", lambda v: v is None or _is_number(v))
_STR = _Kind("a string", lambda v: isinstance(v, str))
_OPT_STR = _Kind("a string or null", lambda v: v is None or isinstance(v, str))
_BOOL = _Kind("true or false", lambda v: isinstance(v, bool) or type(v).__name__ == "bool_")
_SCALAR = _Kind("a string, a number or null",
                lambda v: v is None or isinstance(v, str) or _is_number(v))
_NUM_OR_NAME = _Kind("a number or a string", lambda v: _is_number(v) or isinstance(v, str))
_LIST = _Kind("an array", lambda v: isinstance(v, (list, tuple)))
_DICT = _Kind("an object", lambda v: isinstance(v, Mapping))


class _Null:
    """``spec`` or null."""

    def __init__(self, spec) -> None:
        self.spec, self.expected = spec, f"{spec.expected} or null"

    def check(self, value, path: str) -> None:
        if value is not None:
            try:
                self.spec.check(value, path)
            except _Damaged as err:
                if err.path == path:  # the value itself, not one inside it
                    raise _Damaged(path, self.expected, value) from None
                raise


class _ListOf:
    """An array whose items are ``spec``."""

    def __init__(self, spec, *, length: int | None = None) -> None:
        self.spec, self.length = spec, length
        self.expected = (f"an array of {length}" if length else "an array") + (
            f" ({spec.expected} each)" if isinstance(spec, _Kind) else "")

    def check(self, value, path: str) -> None:
        if not isinstance(value, (list, tuple)) or (
                self.length is not None and len(value) not in (0, self.length)):
            raise _Damaged(path, self.expected, value)
        for i, item in enumerate(value):
            self.spec.check(item, f"{path}[{i}]")


class _MapOf:
    """An object whose values are ``spec`` (its keys are names or ids)."""

    def __init__(self, spec, *, nonempty: bool = False) -> None:
        self.spec, self.nonempty = spec, nonempty
        self.expected = "a non-empty object" if nonempty else "an object"

    def check(self, value, path: str) -> None:
        if not isinstance(value, Mapping) or (self.nonempty and not value):
            raise _Damaged(path, self.expected, value)
        for key, item in value.items():
            self.spec.check(item, f"{path}.{key}")


class _Obj:
    """An object with these fields; ``required`` must be present, the others may be
    missing; fields not named are not read by the renderers and not checked."""

    expected = "an object"

    def __init__(self, fields: dict, required: tuple = (), rest=None, rest_prefix="") -> None:
        self.fields, self.required, self.rest = fields, required, rest
        self.rest_prefix = rest_prefix  # the unnamed fields that ``rest`` checks

    def check(self, value, path: str) -> None:
        if not isinstance(value, Mapping):
            raise _Damaged(path, self.expected, value)
        prefix = f"{path}." if path else ""
        for key in self.required:
            if key not in value:
                raise _Damaged(f"{prefix}{key}", "present", None)
        for key, item in value.items():
            spec = self.fields.get(key, self.rest if str(key).startswith(self.rest_prefix)
                                   else None)
            if spec is not None:
                spec.check(item, f"{prefix}{key}")


class _OneOf:
    """One of several shapes (an older writer's and the current one's)."""

    def __init__(self, *specs) -> None:
        self.specs, self.expected = specs, " or ".join(s.expected for s in specs)

    def check(self, value, path: str) -> None:
        errors = []
        for spec in self.specs:
            try:
                return spec.check(value, path)
            except _Damaged as err:
                errors.append(err)
        deeper = [e for e in errors if e.path != path]  # the shape fits, a field does not
        raise deeper[0] if deeper else _Damaged(path, self.expected, value)


class _Matrix:
    """A square array of arrays of numbers (a confusion matrix; empty: none)."""

    expected = "a square array of arrays of numbers"

    def check(self, value, path: str) -> None:
        _ListOf(_ListOf(_NUM)).check(value, path)
        if any(len(row) != len(value) for row in value):
            raise _Damaged(path, self.expected, value)


_METRIC_VALUES = _MapOf(_NUM)  # metric -> value (or chance level)
_STAT = _Obj({"mean": _NUM, "std": _NUM, "n": _NUM, "chance": _NUM},
             required=("mean", "std", "n"))
_HEADLINE = _Obj({"metric": _OPT_STR, "label": _OPT_STR, "mean": _NUM, "std": _NUM,
                  "n": _NUM, "chance": _NUM, "chance_rule": _STR, "p_value": _NUM,
                  "null": _STR}, required=("metric", "mean", "std", "n"))
_FOLD = _Obj({"fold": _NUM_OR_NAME, "train": _LIST, "val": _LIST, "test": _LIST,
              "metrics": _MapOf(_METRIC_VALUES), "chance": _MapOf(_Null(_METRIC_VALUES)),
              "chance_source": _STR, "n_windows": _DICT, "one_class_windows": _NUM},
             required=("fold", "metrics"))
_P_VALUE = _Obj({"metric": _STR, "value": _NUM, "p_value": _NUM, "permutations": _NUM,
                 "null_mean": _NUM, "null_q95": _NUM, "null_name": _STR, "null": _STR},
                required=("metric", "permutations"))
_POINTS = _Null(_ListOf(_NUM))  # one value per evaluated step
_HELD_OUT = _Obj({"cells": _STR, "step": _POINTS, "loss": _POINTS,
                  "collapsed": _Null(_METRIC_VALUES), "random_encoder": _Null(_METRIC_VALUES),
                  "chance": _Null(_METRIC_VALUES)}, rest=_POINTS, rest_prefix="retrieval_")
_PRETRAIN_RUN = _Obj({"step": _ListOf(_NUM), "loss": _ListOf(_NUM), "collapsed": _NUM,
                      "held_out": _Null(_HELD_OUT)})
_FINETUNE_RUN = _Obj({"epoch": _ListOf(_NUM), "train_loss": _ListOf(_NUM),
                      "val_loss": _ListOf(_NUM)})
_PART = _Obj({
    "headline": _HEADLINE,
    "folds": _ListOf(_FOLD),
    "per_subject": _MapOf(_Obj({"chance": _Null(_METRIC_VALUES)}, rest=_NUM)),
    "summary": _MapOf(_STAT),
    "one_class": _Obj({"windows": _NUM, "of_windows": _NUM, "units": _NUM,
                       "subjects": _ListOf(_SCALAR), "folds": _ListOf(_SCALAR),
                       "summary_without": _Null(_MapOf(_STAT))}),
    "confusion": _MapOf(_Null(_Matrix())),
    "curves": _Obj({"pretrain": _Null(_OneOf(_MapOf(_ListOf(_PRETRAIN_RUN)),
                                             _ListOf(_PRETRAIN_RUN))),
                    "finetune": _Null(_ListOf(_FINETUNE_RUN))}),
    "channel_importance": _Null(_OneOf(
        _Obj({"channels": _ListOf(_SCALAR), "values": _ListOf(_NUM), "method": _OPT_STR}),
        _LIST)),
    "p_value": _P_VALUE, "p_values": _MapOf(_P_VALUE), "p_value_note": _STR,
    "refit_null": _Obj({"metric": _STR, "observed": _NUM, "null": _ListOf(_NUM),
                        "p_value": _NUM, "n": _NUM, "definition": _STR}),
    "model": _Obj({"text": _OPT_STR}),
    "model_selection": _Obj({"chosen": _ListOf(_Obj({"params": _DICT, "count": _NUM},
                                                    required=("params", "count"))),
                             "fits": _NUM, "how": _MapOf(_NUM)}),
}, required=("headline", "folds", "summary"))
_PAIRED_TEST = _Null(_Obj({"p_value": _NUM, "min_p": _NUM}))
_COMPARISON = _Obj({
    "pipeline": _STR, "baseline": _STR, "metric": _STR, "level": _STR, "pairing": _STR,
    "differences": _MapOf(_NUM), "mean": _NUM, "std": _NUM, "n": _NUM,
    "ci95": _Null(_ListOf(_NUM, length=2)), "cohens_dz": _NUM, "primary_test": _OPT_STR,
    "test": _OPT_STR, "p_value": _NUM, "min_p": _NUM, "sign_flip": _PAIRED_TEST,
    "corrected_t": _PAIRED_TEST, "p_value_holm": _NUM, "holm_family": _OPT_STR,
    "warning": _OPT_STR}, required=("pipeline", "baseline", "metric", "n", "mean"))
_LABEL_EFFICIENCY = _Obj({
    "budgets": _ListOf(_SCALAR), "labelled": _MapOf(_NUM), "metric": _STR, "label": _STR,
    "auc_definition": _STR,
    "curves": _MapOf(_ListOf(_Obj({"mean": _NUM, "chance": _NUM,
                                   "ci95": _Null(_ListOf(_NUM, length=2))}))),
    "auc": _MapOf(_Obj({"value": _NUM})),
    "comparisons": _ListOf(_Obj({"baseline": _STR, "mean": _NUM, "p_value": _NUM,
                                 "ci95": _Null(_ListOf(_NUM, length=2)), "test": _OPT_STR,
                                 "level": _OPT_STR}))})
_REPORT = _Obj({
    "protocol": _STR, "target": _STR, "leaky": _BOOL, "warning": _OPT_STR,
    "caveat": _OPT_STR, "n_classes": _Null(_Kind("a whole number", lambda v: _is_number(v)
                                                 and float(v).is_integer() and v > 0)),
    "class_names": _ListOf(_SCALAR), "primary": _OPT_STR, "config": _DICT,
    "data": _Null(_DICT), "headline": _HEADLINE, "pipelines": _MapOf(_PART, nonempty=True),
    "comparisons": _ListOf(_COMPARISON), "label_efficiency": _Null(_LABEL_EFFICIENCY),
}, required=("protocol", "target", "pipelines"))


def validate_report(report, *, where="the report") -> Report:
    """Check the type of every field of a migrated report that the renderers read.

    The boundary between a ``report.json`` and its renderers
    (:mod:`physiosync.reporting`): a report that passes is indexed directly, without
    defensive reads. Optional parts (comparisons, the permutation nulls, curves,
    channel importance, label efficiency, ...) may be missing or, where the schema
    allows it, null; what is present must have its documented type.

    Parameters
    ----------
    report : dict
        A report at :data:`REPORT_VERSION` (see :func:`migrate_report`).
    where : str | Path
        The file it was read from, named in the error.

    Returns
    -------
    report : dict
        *report* itself.

    Raises
    ------
    DataFormatError
        In one line naming *where*, the field's path (e.g.
        ``pipelines.physiosync.headline.mean``) and what was expected.
    """
    try:
        _REPORT.check(report, "")
        if report.get("primary") is not None and report["primary"] not in report["pipelines"]:
            raise _Damaged("primary", "the name of one of its pipelines", report["primary"])
    except _Damaged as err:
        found = "missing" if err.expected == "present" else _json_type(err.value)
        expected = "" if err.expected == "present" else f" (expected {err.expected})"
        raise DataFormatError(
            f"{where} is a damaged report: {err.path or 'the document'} is {found}"
            f"{expected}; rerun the run to write it again, or restore the file.") from None
    return report
