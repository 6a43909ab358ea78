"""Reports that stand alone: the data they name, Holm-adjusted p-values, and a difference
column that reads as the table's own numbers."""

import json
import shutil

import numpy as np
import pytest

from physiosync.evaluation.statistics import holm_adjust
from physiosync.evaluation.summary import build_report, merge_reports
from physiosync.reporting.report import report_markdown, report_text
from physiosync.reporting.text import pipeline_table

from test_report import GOOD, WORSE, _records


# --------------------------------------------------------------------------- Holm
def test_holm_adjust_by_hand_and_in_the_input_order():
    # sorted 0.01, 0.02, 0.04, 0.30 -> 4 x 0.01, 3 x 0.02, max(0.06, 2 x 0.04), 1 x 0.30
    assert holm_adjust([0.04, 0.01, 0.30, 0.02]) == pytest.approx([0.08, 0.04, 0.30, 0.06])
    # step-down: never below an earlier adjusted value, never above 1
    assert holm_adjust([0.01, 0.011, 0.9]) == pytest.approx([0.03, 0.03, 0.9])
    assert holm_adjust([0.6, 0.7]) == pytest.approx([1.0, 1.0])
    # tests without a p-value are not in the family
    assert holm_adjust([None, 0.02, float("nan"), 0.03]) == [None, pytest.approx(0.04), None,
                                                            pytest.approx(0.04)]
    assert holm_adjust([]) == [] and holm_adjust([0.2]) == pytest.approx([0.2])


def test_holm_adjust_matches_a_brute_force_of_its_definition():
    rng = np.random.default_rng(0)
    for m in (2, 3, 5, 8):
        p = rng.uniform(0, 0.2, m)
        order = np.argsort(p)
        expected = np.empty(m)
        for rank, i in enumerate(order):  # max over j <= i of min(1, (m - j + 1) p_(j))
            expected[i] = max(min(1.0, (m - j) * p[order[j]]) for j in range(rank + 1))
        assert holm_adjust(p.tolist()) == pytest.approx(expected.tolist())


def _three(per_subject_models=True):
    runs = {"physiosync": _records(GOOD), "bandpower": _records(WORSE),
            "stimulus-prior": _records({k: (0, 0) for k in GOOD})}
    return build_report(runs, protocol="within-trial-kfold", target="valence",
                        per_subject_models=per_subject_models, permutations=99, seed=1)


@pytest.mark.parametrize("per_subject_models", [True, False])
def test_comparisons_carry_holm_over_the_pipelines_compared_with_the_primary(
        per_subject_models):
    report = _three(per_subject_models)
    comps = report["comparisons"]
    assert [c["p_value_holm"] for c in comps] == pytest.approx(
        holm_adjust([c["p_value"] for c in comps]))
    family = comps[0]["holm_family"]
    assert family.startswith("the comparisons of physiosync with the other pipelines on "
                             "subject.balanced_accuracy") and "Holm" in family
    # every renderer says which family was adjusted and shows the adjusted values
    md = report_markdown(report)
    assert f"Holm p: the primary test's p adjusted over {family}." in md
    assert "the 2 pipelines compared with physiosync on the headline metric" in md
    text = report_text(report)
    assert "Holm p" in text.splitlines()[1] or any("Holm p" in line for line in text.splitlines())
    assert all("Holm p = " in line for line in text.splitlines()
               if line.startswith("physiosync − ") and "paired by" in line)


def test_a_report_without_holm_values_gets_them_and_merging_recomputes_them():
    report = json.loads(json.dumps(_three()))
    expected = [c["p_value_holm"] for c in report["comparisons"]]
    del report["schema_version"]  # as written by an earlier version (schema 1)
    for c in report["comparisons"]:
        del c["p_value_holm"], c["holm_family"]
    rows = pipeline_table(report)
    assert [r["difference"]["p_holm"] for r in rows[1:]] == pytest.approx(expected)
    assert "Holm p" in report_markdown(report)
    merged = merge_reports([json.loads(json.dumps(_three())),
                            json.loads(json.dumps(_three()))], names=["a", "b"])
    comps = merged["comparisons"]
    assert len(comps) == 5  # run b's three pipelines join run a's two: one family
    assert [c["p_value_holm"] for c in comps] == pytest.approx(
        holm_adjust([c["p_value"] for c in comps]))


def test_legacy_segment_shows_no_holm_p():
    report = build_report({"physiosync": _records(GOOD), "bandpower": _records(WORSE)},
                          protocol="legacy-segment", target="valence")
    rows = pipeline_table(report)
    assert rows[1]["difference"]["p_holm"] is None and rows[1]["difference"]["p_value"] is None


# --------------------------------------------------------------------------- difference column
def test_difference_column_is_the_difference_of_the_headlines_when_paired_by_fold():
    worse = _records(WORSE)
    # subject 1 loses a label-1 window in fold 0: its classes are no longer balanced in
    # each fold, so its pooled balanced accuracy is not the mean of its fold values
    preds = worse[0]["predictions"]
    preds.remove(next(r for r in preds if (r["subject"], r["y"], r["window"]) == (1, 1, 1)))
    runs = {"physiosync": _records(GOOD), "bandpower": worse,
            "stimulus-prior": _records({k: (0, 0) for k in GOOD})}
    report = build_report(runs, protocol="within-trial-kfold", target="valence",
                          per_subject_models=False, permutations=99, seed=1)
    rows = pipeline_table(report)
    head = report["headline"]["mean"]
    comps = {c["baseline"]: c for c in report["comparisons"]}
    for row in rows[1:]:
        part = report["pipelines"][row["pipeline"]]
        d = row["difference"]
        assert d["level"] == "fold"
        assert d["headline"] == pytest.approx(head - part["headline"]["mean"])
        assert d["mean"] == pytest.approx(comps[row["pipeline"]]["mean"])
    # by fold the mean paired difference is not the difference of the headlines here,
    # and the table says over what it is, beside the headline difference
    assert rows[1]["difference"]["headline"] != pytest.approx(rows[1]["difference"]["mean"])
    md = report_markdown(report).splitlines()
    row = next(line for line in md if line.startswith("| bandpower |"))
    d = rows[1]["difference"]
    assert f"| {d['headline']:.3f} | {d['mean']:.3f} [" in row and "(2 folds) |" in row
    note = next(line for line in md if line.startswith("physiosync − pipeline: the difference "
                                                       "of the two headlines"))
    assert "mean over the fold's test subjects" in note
    text = report_text(report)
    line = next(x for x in text.splitlines() if x.startswith("bandpower "))
    assert f"{d['headline']:.3f}" in line and "(2 folds)" in line


# --------------------------------------------------------------------------- the data named
def _run(root, out, monkeypatch, cwd):
    from physiosync.config import load_config
    from physiosync.experiment import run_experiment

    monkeypatch.chdir(cwd)
    cfg = load_config("tiny", [f"data.root={root}", f"data.cache_dir={out.parent / 'cache'}",
                               "pipelines=[bandpower]", "protocol.n_splits=2", "device=cpu",
                               "protocol.one_class=constant"])
    return run_experiment(cfg, out, verbose="error")


def test_reports_name_the_data_with_the_absolute_root_of_config_yaml(study_root, tmp_path,
                                                                     monkeypatch):
    import yaml

    out = tmp_path / "run"
    _run(study_root.name, out, monkeypatch, study_root.parent)  # a relative data.root
    root = str(study_root)
    assert yaml.safe_load((out / "config.yaml").read_text())["data"]["root"] == root
    doc = json.loads((out / "report.json").read_text())
    assert doc["config"]["data"]["root"] == root
    data = doc["data"]
    assert data == {"dataset": "DEAP", "root": root, "format": "dat", "subjects": [1, 2, 3],
                    "n_subjects": 3, "trials_per_subject": 6, "n_units": 18,
                    "n_windows": data["n_windows"], "synthetic": True,
                    "origin": "synthetic (written by physiosync's synthetic writer)"}
    sentence = f"DEAP (dat) at {root}: 3 subjects x 6 trials (18 units, "
    md = (out / "report.md").read_text()
    assert f"**Data:** {sentence}" in md and "synthetic (written by physiosync" in md
    assert sentence in (out / "report.html").read_text()


def test_data_physiosync_did_not_write_is_named_real(study_root, tmp_path, monkeypatch):
    real = tmp_path / "real"
    real.mkdir()
    for f in study_root.glob("s*.dat"):  # the same files, without synth's list of them
        shutil.copy(f, real / f.name)
    out = tmp_path / "run"
    result = _run(real, out, monkeypatch, tmp_path)
    assert result["report"]["data"]["synthetic"] is False
    md = (out / "report.md").read_text()
    assert "not written by physiosync's synthetic writers (real data)" in md


# --------------------------------------------------------------------------- is it significant?
def test_significance_sentence_answers_from_the_report_and_says_what_to_change():
    from physiosync.reporting.text import significance_sentence

    tested = significance_sentence(_three(per_subject_models=False), options="--folds, --subjects")
    assert tested.startswith("significance: physiosync ") and "against chance 0.500" in tested
    assert "within-subject permutation p = " in tested and "(99 permutations" in tested
    assert "paired over 2 folds" in tested and "after Holm's adjustment" in tested
    assert "more folds and subjects (--folds, --subjects) test smaller ones" in tested
    untested = significance_sentence(build_report(
        {"physiosync": _records(GOOD), "bandpower": _records(WORSE)},
        protocol="within-trial-kfold", target="valence", per_subject_models=True))
    assert "add --set protocol.permutations=1000" in untested
    assert "paired over 3 subjects" in untested and "more subjects test smaller ones" in untested


def test_the_demo_preset_tests_its_headlines_against_chance():
    from physiosync.config import load_config

    # the predictions' permutation null: no refit, so the demo can afford it
    assert load_config("demo").protocol.permutations == 1000
    assert load_config("demo").protocol.permutation_refit == 0
