"""The versioned result schema (physiosync.evaluation.schema): fold files and report.json
carry a ``schema_version``; files written before it (schema 1) read and render exactly as
they did, and files of a later version are refused in one line.

``tests/data/schema_v1/`` holds files written by the code before ``schema_version``
(main at 3e037f3): a report of two pipelines with permutation p-values built from the
fold records of ``tests/reporting/test_report.py`` (``report.json`` and, rendered from it by that
code, ``report.md``, ``results.csv``, ``report.txt`` and ``report.html.txt``, the page
with its PNG images cut out), and two fold files of a tiny DEAP study (de-svm, with
its model selection; physiosync, with its pre-training curves).
"""

import copy
import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import one_line_error
from physiosync import DataFormatError
from physiosync.cli import main
from physiosync.evaluation import schema
from physiosync.evaluation.fold_store import fold_checksum, reusable_fold
from physiosync.evaluation.schema import (FOLD_VERSION, REPORT_VERSION, migrate_fold,
                                          migrate_report)
from physiosync.evaluation.summary import build_report
from physiosync.reporting.html import render_html
from physiosync.reporting.report import (check_report, report_markdown, report_rows,
                                         report_text, write_report)

V1 = Path(__file__).parents[1] / "data" / "schema_v1"


def _v1_report() -> dict:
    return json.loads((V1 / "report.json").read_text())


def _without_images(page: str) -> str:
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "data:image/png;base64,...", page)


def test_every_version_has_its_migration_step():
    assert sorted(schema._REPORT_STEPS) == list(range(1, REPORT_VERSION))
    assert sorted(schema._FOLD_STEPS) == list(range(1, FOLD_VERSION))


# --------------------------------------------------------------------------- reports
def test_a_report_written_before_the_schema_version_renders_as_it_did(tmp_path):
    report = _v1_report()
    assert "schema_version" not in report
    original = copy.deepcopy(report)
    assert report_markdown(report) == (V1 / "report.md").read_text()
    assert report_text(report) == (V1 / "report.txt").read_text()
    assert report_rows(report).to_csv(index=False) == (V1 / "results.csv").read_text()
    assert _without_images(render_html(report)) == (V1 / "report.html.txt").read_text()
    assert report == original  # reading migrates a copy
    # rewritten, it holds the current version and nothing else new
    paths = write_report(report, tmp_path, html=False)
    written = json.loads(paths["json"].read_text())
    assert written.pop("schema_version") == REPORT_VERSION
    assert written == original
    assert paths["md"].read_text() == (V1 / "report.md").read_text()


def test_a_current_report_records_its_version_and_needs_no_migration():
    report = build_report(_v1_report_records(), protocol="within-trial-kfold",
                          target="valence")
    assert report["schema_version"] == REPORT_VERSION
    assert next(iter(report)) == "schema_version"
    assert migrate_report(report) is report


def _v1_report_records():
    from test_report import GOOD, _records

    return _records(GOOD)


def test_the_older_shapes_of_schema_1_are_made_explicit():
    """Reports of earlier releases held one chance number (accuracy's), no headline, no
    Holm adjustment, no pairing sentence and unnamed nulls; the migration fills them in
    as the renderers used to on the fly."""
    report = _v1_report()
    part = report["pipelines"]["physiosync"]
    del part["headline"], report["headline"]
    part["folds"][0]["chance"]["window"] = 0.5
    part["per_subject"]["1"]["chance"] = 0.75
    del part["p_value"]["null_name"]
    for c in report["comparisons"]:
        for key in ("p_value_holm", "holm_family", "pairing", "primary_test"):
            del c[key]
    new = migrate_report(report)
    assert new["schema_version"] == 2
    head = new["pipelines"]["physiosync"]["headline"]
    summary = part["summary"]["subject.balanced_accuracy"]
    assert head["metric"] == "subject.balanced_accuracy"
    assert (head["mean"], head["n"], head["chance"]) == (summary["mean"], summary["n"],
                                                          summary["chance"])
    assert new["headline"] == head
    assert new["pipelines"]["physiosync"]["folds"][0]["chance"]["window"] == {"accuracy": 0.5}
    assert new["pipelines"]["physiosync"]["per_subject"]["1"]["chance"] == {"accuracy": 0.75}
    assert new["pipelines"]["physiosync"]["p_value"]["null_name"] == "within-subject"
    c = new["comparisons"][0]
    assert c["pairing"].startswith("by subject (a report written before")
    assert c["primary_test"] == "sign-flip"
    assert c["p_value_holm"] == pytest.approx(c["p_value"])  # a family of one
    md = report_markdown(report)
    assert "paired by subject (a report written before the pairing was explained); " \
           "primary test: sign-flip." in md
    assert "**Headline (physiosync):** per-subject balanced accuracy" in md


@pytest.mark.parametrize("version, why", [(REPORT_VERSION + 1, "newer physiosync"),
                                          ("2", "not a version number"),
                                          (0, "not a version number")])
def test_a_report_of_a_later_or_invalid_version_is_refused_in_one_line(version, why):
    report = {**_v1_report(), "schema_version": version}
    with pytest.raises(DataFormatError, match=why) as err:
        check_report(report, "run/report.json")
    assert "\n" not in str(err.value) and str(err.value).startswith("run/report.json ")
    with pytest.raises(DataFormatError, match=why):
        report_markdown(report)


def test_physiosync_report_refuses_a_later_version_and_writes_nothing(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "report.json").write_text(json.dumps({**_v1_report(),
                                                 "schema_version": REPORT_VERSION + 1}))
    assert main(["report", str(run), "--out", str(tmp_path / "out")]) == 2
    err = one_line_error(capsys)
    assert "was written by a newer physiosync" in err and "upgrade physiosync" in err
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- fold files
@pytest.mark.parametrize("name", ["fold_de-svm.json", "fold_physiosync.json"])
def test_a_fold_file_written_before_the_schema_version_is_reused(tmp_path, name):
    path = tmp_path / "fold_00.json"
    shutil.copy(V1 / name, path)
    raw = json.loads(path.read_text())
    assert "schema_version" not in raw and raw["checksum"] == fold_checksum(raw)
    done, why = reusable_fold(path, raw["key"], raw["data_key"])
    assert why is None
    assert done.pop("schema_version") == FOLD_VERSION
    assert done == raw
    assert path.read_bytes() == (V1 / name).read_bytes()  # read, never rewritten


def test_a_fold_file_without_training_labels_records_them_as_unknown():
    raw = json.loads((V1 / "fold_de-svm.json").read_text())
    del raw["train_labels"]
    assert migrate_fold(raw)["train_labels"] is None
    assert "train_labels" not in raw


def test_a_fold_file_of_a_later_version_is_refused_not_overwritten(tmp_path):
    path = tmp_path / "fold_00.json"
    doc = json.loads((V1 / "fold_de-svm.json").read_text())
    doc["schema_version"] = FOLD_VERSION + 1
    doc["checksum"] = fold_checksum(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(DataFormatError, match="newer physiosync") as err:
        reusable_fold(path, doc["key"], doc["data_key"])
    assert str(err.value).startswith(f"fold file {path} was written by")
    assert json.loads(path.read_text()) == doc


# --------------------------------------------------------------------------- validation
_ODD = (None, "x", "", -1, 2.5, float("nan"), True, [], [1, "x"], {}, {"a": "b"})


def _paths(doc, prefix=()):
    """Every (container path, key) of a JSON document."""
    items = doc.items() if isinstance(doc, dict) else enumerate(doc)
    for key, value in items:
        yield prefix, key
        if isinstance(value, (dict, list)):
            yield from _paths(value, (*prefix, key))


def test_a_hand_edited_report_renders_whole_or_is_refused_in_one_line_naming_the_field():
    # 300 seeded edits of the version 1 report (a field replaced by an odd value, or
    # deleted): each either passes validation and renders all its files without an
    # error, or is refused by check_report with one line naming the file and a field.
    import numpy as np

    rng = np.random.default_rng(0)
    original = _v1_report()
    paths = list(_paths(original))
    refused = rendered = 0
    for _ in range(300):
        report = copy.deepcopy(original)
        prefix, key = paths[rng.integers(len(paths))]
        parent = report
        for step in prefix:
            parent = parent[step]
        if isinstance(parent, dict) and rng.random() < 0.2:
            del parent[key]
        else:
            parent[key] = copy.deepcopy(_ODD[rng.integers(len(_ODD))])
        try:
            check_report(report, "run/report.json")
        except DataFormatError as err:
            msg = str(err)
            assert "\n" not in msg and msg.startswith("run/report.json "), msg
            refused += 1
            continue
        report = migrate_report(report)  # as write_report renders it
        report_rows(report), report_markdown(report), report_text(report)
        rendered += 1
        if rendered <= 3:  # the page too (figures are slow)
            assert render_html(report).startswith("<!DOCTYPE html>")
    assert refused > 100 and rendered > 30, (refused, rendered)


def test_validation_names_the_field_and_what_was_expected():
    report = migrate_report(_v1_report())
    report["pipelines"]["physiosync"]["headline"]["mean"] = "0.61"
    with pytest.raises(DataFormatError) as err:
        schema.validate_report(report, where="run/report.json")
    assert str(err.value) == (
        "run/report.json is a damaged report: pipelines.physiosync.headline.mean is the "
        "string '0.61' (expected a number or null); rerun the run to write it again, or "
        "restore the file.")
    report = migrate_report(_v1_report())
    report["primary"] = "nope"
    with pytest.raises(DataFormatError, match="primary is the string 'nope' .expected the "
                                              "name of one of its pipelines."):
        schema.validate_report(report, where="run/report.json")
    for optional in ("comparisons", "label_efficiency", "caveat", "data", "class_names"):
        report = migrate_report(_v1_report())
        report.pop(optional, None)
        assert schema.validate_report(report) is report
