"""Cross-validation reports (physiosync.reporting.report) on fold results small enough to
score by hand, and the ``physiosync report`` command."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from physiosync import PhysioSyncError
from physiosync.cli import main
from physiosync.evaluation.runner import fold_metrics
from physiosync.evaluation.summary import (build_report, merge_reports, paired_comparison,
                                          summarize_pipeline)
from physiosync.reporting.report import CHANCE_NOTE, report_text, write_report

# Per (subject, fold): the predicted class of each test trial's two windows. Test trials
# are 2 * fold (label 0) and 2 * fold + 1 (label 1) for every subject.
GOOD = {(1, 0): (0, 1), (1, 1): (0, 1),
        (2, 0): (0, 0), (2, 1): (0, 1),  # subject 2 misses its label-1 trial in fold 0
        (3, 0): (0, 1), (3, 1): (0, 1)}
WORSE = {**GOOD, (1, 0): (0, 0)}  # ... and subject 1 too


def _records(preds, subjects=(1, 2, 3)):
    """Two folds of fold records as :func:`physiosync.evaluation.runner.cross_validate`
    returns them, with one model per subject (training labels 3:1)."""
    records = []
    for fold in (0, 1):
        rows = [{"subject": s, "trial": 2 * fold + y, "window": w, "y": y,
                 "p0": float(p == 0), "p1": float(p == 1), "one_class": False}
                for s in subjects for y, p in enumerate(preds[(s, fold)]) for w in (0, 1)]
        train_labels = {"per_subject_models": True, "pooled": [3 * len(subjects), len(subjects)],
                        "subjects": {str(s): [3, 1] for s in subjects}}
        pred = pd.DataFrame(rows)
        test = pred[["subject", "trial"]].drop_duplicates().to_numpy().tolist()
        train = [[s, t] for s in subjects for t in (4, 5, 6, 7)]
        records.append({"fold": fold, "train": train, "val": [], "test": test,
                        "metrics": fold_metrics(pred, 2, train_labels),
                        "train_labels": train_labels,
                        "predictions": pred.to_dict(orient="records")})
    return records


def _report(per_subject_models=True, protocol="within-trial-kfold", **kw):
    return build_report({"physiosync": _records(GOOD), "bandpower": _records(WORSE)},
                        protocol=protocol, target="valence",
                        per_subject_models=per_subject_models, **kw)


# --------------------------------------------------------------------------- summarize_pipeline
def test_summarize_pipeline_scores_by_hand():
    part = summarize_pipeline(_records(GOOD), protocol="within-trial-kfold", target="valence")
    # subject 2 pooled over folds: labels 0 0 1 1 0 0 1 1, predictions 0 0 0 0 0 0 1 1
    assert part["per_subject"][2]["balanced_accuracy"] == pytest.approx(0.75)
    assert part["per_subject"][2]["accuracy"] == pytest.approx(0.75)
    assert part["per_subject"][1]["balanced_accuracy"] == part["per_subject"][3][
        "balanced_accuracy"] == 1.0
    bal = [1.0, 0.75, 1.0]
    head = part["headline"]
    assert head["metric"] == "subject.balanced_accuracy" and head["n"] == 3
    assert head["mean"] == pytest.approx(np.mean(bal))
    assert head["std"] == pytest.approx(np.std(bal, ddof=1))
    assert head["chance"] == 0.5
    # fold 0: 10 of 12 windows right, recall 6/6 and 4/6; fold 1: all right
    window = part["summary"]["window.balanced_accuracy"]
    assert window["mean"] == pytest.approx((5 / 6 + 1) / 2) and window["n"] == 2
    assert part["folds"][0]["metrics"]["subject"]["balanced_accuracy"] == pytest.approx(
        (1 + 0.5 + 1) / 3)
    # accuracy chance: the training majority (class 0) scored on the test labels
    assert part["folds"][0]["chance"]["window"]["accuracy"] == pytest.approx(0.5)
    assert part["confusion"]["window"] == [[12, 0], [2, 10]]
    assert part["confusion"]["trial"] == [[6, 0], [1, 5]]
    assert part["one_class"]["windows"] == 0 and "p_value" not in part


# --------------------------------------------------------------------------- build_report
def test_build_report_leads_with_the_primary_pipeline_and_compares_the_others():
    report = _report(config={"seed": 3}, channels=["Fp1", "Fp2"])
    assert report["primary"] == "physiosync" and list(report["pipelines"]) == [
        "physiosync", "bandpower"]
    primary = report["pipelines"]["physiosync"]
    for key in ("headline", "folds", "per_subject", "summary"):
        assert report[key] == primary[key]
    assert report["class_names"] == ["low", "high"] and report["n_classes"] == 2
    assert report["leaky"] is False and report["warning"] is None
    assert report["per_subject_models"] is True and report["config"] == {"seed": 3}
    assert len(report["comparisons"]) == 1
    comp = report["comparisons"][0]
    assert (comp["pipeline"], comp["baseline"], comp["level"]) == (
        "physiosync", "bandpower", "subject")
    # no fold result carries channel importance, so the channel names are not used
    assert primary["channel_importance"] is None
    leaky = build_report(_records(GOOD), protocol="legacy-segment", target="valence")
    assert leaky["leaky"] is True and leaky["warning"].startswith("LEAKAGE WARNING")
    assert list(leaky["pipelines"]) == ["physiosync"] and leaky["comparisons"] == []


def test_build_report_names_the_channel_importance_method():
    runs = {"physiosync": _records(GOOD), "bandpower": _records(WORSE)}
    for name, records in runs.items():
        for r, values in zip(records, ([1.0, 3.0], [3.0, 5.0])):
            r["channel_importance"] = values
    report = build_report(runs, protocol="within-trial-kfold", target="valence",
                          channels=["Fp1", "Fp2"], importance_methods={"bandpower": "coef"})
    ci = report["pipelines"]["physiosync"]["channel_importance"]
    assert ci["channels"] == ["Fp1", "Fp2"] and ci["values"] == [2.0, 4.0]  # fold mean
    assert ci["method"] is None  # not given for this pipeline
    assert report["pipelines"]["bandpower"]["channel_importance"]["method"] == "coef"
    # without channel names the values cannot be placed: no importance in the report
    unnamed = build_report(runs, protocol="within-trial-kfold", target="valence")
    assert unnamed["pipelines"]["physiosync"]["channel_importance"] is None


# --------------------------------------------------------------------------- paired_comparison
def test_paired_comparison_pairs_subjects_or_folds_by_hand():
    parts = _report()["pipelines"]
    by_subject = paired_comparison(parts, "physiosync", "bandpower", per_subject=True)
    # subject 1: 1.0 - 0.75; subjects 2 and 3 score alike in both pipelines
    assert by_subject["differences"] == pytest.approx({"1": 0.25, "2": 0.0, "3": 0.0})
    assert by_subject["n"] == 3 and by_subject["mean"] == pytest.approx(0.25 / 3)
    # two zero differences flip to themselves: only 2 sign patterns differ, min p = 1
    assert by_subject["min_p"] == pytest.approx(1.0)
    # every sign pattern of (0.25, 0, 0) has the same |mean|: p = 1
    assert by_subject["p_value"] == pytest.approx(1.0)
    assert by_subject["cohens_dz"] == pytest.approx(
        (0.25 / 3) / np.std([0.25, 0, 0], ddof=1))
    assert by_subject["corrected_t"] is None and "1 > 0.05" in by_subject["warning"]
    assert "2 of them with a zero difference" in by_subject["warning"]
    by_fold = paired_comparison(parts, "physiosync", "bandpower", per_subject=False)
    # fold 0: mean over subjects (1 + .5 + 1) / 3 against (.5 + .5 + 1) / 3; fold 1: equal
    assert by_fold["level"] == "fold" and by_fold["n"] == 2
    assert by_fold["differences"] == pytest.approx({"0": 1 / 6, "1": 0.0})
    assert by_fold["sign_flip"]["min_p"] == pytest.approx(1.0)  # one zero of two
    assert by_fold["corrected_t"] is not None and by_fold["corrected_t"]["sizes"] == "units"
    assert by_fold["p_value"] == by_fold["corrected_t"]["p_value"]
    assert by_fold["ci95"][0] <= by_fold["mean"] <= by_fold["ci95"][1]
    # three subjects, two alike: a bootstrap-t interval has no finite bound
    assert by_subject["ci95"] == [None, None]


def _parts(differences):
    """Two parts whose per-subject balanced accuracies differ by *differences*."""
    a = {s: {"balanced_accuracy": 0.5 + d} for s, d in enumerate(differences, 1)}
    b = {s: {"balanced_accuracy": 0.5} for s in a}
    return {"a": {"per_subject": a, "folds": []}, "b": {"per_subject": b, "folds": []}}


def test_sign_flip_p_value_and_interval_by_hand():
    # Differences that are exact binary fractions, so ties are exact. Of the 16 sign
    # patterns of (1/8, 1/4, -1/16, 3/8), four reach |sum| >= 11/16: the observed one,
    # all positive, and their mirror images.
    d = [0.125, 0.25, -0.0625, 0.375]
    c = paired_comparison(_parts(d), "a", "b")
    assert c["n"] == 4 and c["mean"] == pytest.approx(np.mean(d))
    assert c["std"] == pytest.approx(np.std(d, ddof=1))
    assert c["p_value"] == pytest.approx(4 / 16) and c["min_p"] == pytest.approx(2 / 16)
    assert "exact" in c["test"]
    low, high = c["ci95"]  # bootstrap-t: wider than the data at n = 4 (honest coverage)
    assert low < 0 < c["mean"] < high and np.isfinite([low, high]).all()
    assert "studentised" in c["ci_method"] and c["primary_test"] == "sign-flip"
    # all differences positive: only the observed pattern and its mirror are as extreme
    c6 = paired_comparison(_parts([0.25] * 6), "a", "b")
    assert c6["p_value"] == pytest.approx(2 / 2 ** 6) == pytest.approx(c6["min_p"])
    assert c6["warning"] is None
    # a subject missing from one pipeline is left out of the pairs
    parts = _parts([0.25] * 6)
    del parts["b"]["per_subject"][6]
    assert paired_comparison(parts, "a", "b")["n"] == 5


# --------------------------------------------------------------------------- merge_reports
def _saved(records, **kw):
    """A report as loaded back from report.json."""
    kw = {"protocol": "within-trial-kfold", "target": "valence", **kw}
    return json.loads(json.dumps(build_report({"physiosync": records}, **kw)))


def test_merge_reports_keeps_both_pipelines_and_pairs_them():
    one, two = _saved(_records(GOOD), config={"seed": 1}), _saved(_records(WORSE))
    merged = merge_reports([one, two], names=["a", "b"])
    assert list(merged["pipelines"]) == ["physiosync", "b/physiosync"]
    assert merged["primary"] == "physiosync"
    assert merged["config"] == {"runs": {"a": {"seed": 1}, "b": {}}}
    (comp,) = merged["comparisons"]
    assert (comp["pipeline"], comp["baseline"], comp["level"]) == (
        "physiosync", "b/physiosync", "subject")
    assert comp["differences"] == pytest.approx({"1": 0.25, "2": 0.0, "3": 0.0})
    # the merge equals the comparison of a report built with both pipelines at once
    both = _report()["comparisons"][0]
    assert comp["mean"] == pytest.approx(both["mean"]) and comp["n"] == both["n"]
    assert one["pipelines"].keys() == {"physiosync"}  # the inputs are left alone


@pytest.mark.parametrize("key,value,message", [
    ("target", "arousal", "its target is 'arousal', the first run's is 'valence'"),
    ("protocol", "within-loto", "its protocol is 'within-loto'"),
    ("n_classes", 4, "its n_classes is 4"),
    ("per_subject_models", False, "its models are pooled"),
])
def test_merge_reports_refuses_runs_that_cannot_be_paired(key, value, message):
    one, two = _saved(_records(GOOD)), _saved(_records(WORSE))
    two[key] = value
    with pytest.raises(PhysioSyncError, match=f"cannot merge run 'b': {message}"):
        merge_reports([one, two], names=["a", "b"])


def test_merge_reports_refuses_different_folds():
    one, two = _saved(_records(GOOD)), _saved(_records(WORSE))
    two["folds"][1]["test"] = two["folds"][1]["test"][:-1]
    with pytest.raises(PhysioSyncError, match="its folds differ from the first run's"):
        merge_reports([one, two], names=["a", "b"])


# --------------------------------------------------------------------------- files and text
def test_write_report_writes_the_four_files(tmp_path):
    report = _report()
    report["_private"] = "not written"
    report["pipelines"]["bandpower"]["summary"]["window.roc_auc"]["mean"] = float("nan")
    paths = write_report(report, tmp_path / "out")
    assert set(paths) == {"json", "csv", "md", "html"}
    assert all(p.is_file() and p.parent == tmp_path / "out" for p in paths.values())
    doc = json.loads(paths["json"].read_text(), parse_constant=pytest.fail)  # strict JSON
    assert "_private" not in doc
    assert doc["pipelines"]["bandpower"]["summary"]["window.roc_auc"]["mean"] is None
    table = pd.read_csv(paths["csv"])
    # the columns of earlier versions first, with their meaning on the fold rows
    assert list(table.columns) == ["pipeline", "fold", "target", "level", "metric", "value",
                                   "chance", "row", "subject"]
    assert set(table["row"]) == {"fold", "subject"}
    rows = table[table.row == "fold"]
    assert rows["subject"].isna().all()
    assert set(rows["pipeline"]) == {"physiosync", "bandpower"} and set(rows["fold"]) == {0, 1}
    assert set(rows["level"]) == {"subject", "window", "trial"}
    # one row per subject, pipeline and metric: the values behind the headline
    subj = table[table.row == "subject"]
    assert subj["fold"].isna().all() and set(subj["level"]) == {"per_subject"}
    for name, part in report["pipelines"].items():
        mine = subj[(subj.pipeline == name) & (subj.metric == "balanced_accuracy")]
        assert sorted(mine["subject"]) == sorted(int(s) for s in part["per_subject"])
        assert mine["value"].mean() == pytest.approx(part["headline"]["mean"])
        assert (mine["chance"] == 0.5).all()
        n_metrics = len([k for k in next(iter(part["per_subject"].values())) if k != "chance"])
        assert len(subj[subj.pipeline == name]) == len(part["per_subject"]) * n_metrics
    row = rows[(rows.pipeline == "physiosync") & (rows.fold == 0) & (rows.level == "subject")
               & (rows.metric == "balanced_accuracy")].squeeze()
    assert row["value"] == pytest.approx(2.5 / 3) and row["chance"] == 0.5
    assert rows["target"].eq("valence").all()
    md = paths["md"].read_text(encoding="utf-8")
    assert md.startswith("# physiosync cross-validation: valence (within-trial-kfold)")
    assert "## Paired comparisons" in md and CHANCE_NOTE in md
    assert "<html" in paths["html"].read_text(encoding="utf-8")
    assert "html" not in write_report(report, tmp_path / "plain", html=False)
    assert not (tmp_path / "plain" / "report.html").exists()


def test_report_text_has_one_row_per_pipeline_and_the_comparison():
    report = _report()
    lines = report_text(report).splitlines()
    assert lines[0].startswith("headline: per-subject balanced accuracy, mean ± std over")
    head = report["headline"]
    row = next(line for line in lines if line.startswith("physiosync "))
    assert row.split()[1:5] == [f"{head['mean']:.3f}", "±", f"{head['std']:.3f}", "0.500"]
    assert any(line.startswith("bandpower ") for line in lines)
    comp = next(line for line in lines if line.startswith("physiosync − bandpower"))
    assert "paired by subject, n = 3" in comp and "min p 1)" in comp
    assert "sign-flip p = 1" in comp
    leaky = report_text(build_report(_records(GOOD), protocol="legacy-segment",
                                     target="valence"))
    assert leaky.startswith("LEAKAGE WARNING")


def test_one_table_puts_every_pipeline_beside_its_chance_p_and_paired_difference():
    from physiosync.reporting.report import pipeline_table, report_markdown

    runs = {"physiosync": _records(GOOD), "bandpower": _records(WORSE),
            "stimulus-prior": _records({k: (0, 0) for k in GOOD})}
    report = build_report(runs, protocol="within-trial-kfold", target="valence",
                          per_subject_models=True, permutations=99, seed=1)
    rows = pipeline_table(json.loads(json.dumps(report)))  # a saved report.json works too
    assert [r["pipeline"] for r in rows] == list(runs) and rows[0]["primary"]
    comps = {c["baseline"]: c for c in report["comparisons"]}
    for row in rows:
        part = report["pipelines"][row["pipeline"]]
        assert row["mean"] == pytest.approx(part["headline"]["mean"])
        assert row["chance"] == 0.5 and row["permutations"] == 99
        assert row["p_value"] == pytest.approx(part["p_value"]["p_value"])
        if row["primary"]:
            assert row["difference"] is None
        else:
            c = comps[row["pipeline"]]
            assert row["difference"]["mean"] == pytest.approx(c["mean"])
            assert row["difference"]["ci95"] == pytest.approx(c["ci95"])
            assert row["difference"]["p_value"] == pytest.approx(c["p_value"])
            assert row["difference"]["level"] == "subject" and row["difference"]["n"] == 3
            # the difference column is the difference of the two headlines the table shows;
            # paired by subject it is also the mean paired difference
            assert row["difference"]["headline"] == pytest.approx(
                report["headline"]["mean"] - part["headline"]["mean"])
            assert row["difference"]["headline"] == pytest.approx(c["mean"])
            assert row["difference"]["p_holm"] == pytest.approx(c["p_value_holm"])
    # Holm over the two comparisons with physiosync on the headline metric
    raw = sorted(c["p_value"] for c in comps.values())
    holm = sorted(c["p_value_holm"] for c in comps.values())
    assert holm == pytest.approx([min(1, 2 * raw[0]), max(min(1, 2 * raw[0]), raw[1])])
    assert all("comparisons of physiosync with the other pipelines on "
               "subject.balanced_accuracy" in c["holm_family"] for c in comps.values())
    # stimulus-prior predicts one class: balanced accuracy 0.5, physiosync 11/12 above it
    assert rows[2]["mean"] == pytest.approx(0.5)
    assert rows[2]["difference"]["mean"] == pytest.approx((1 + 0.75 + 1) / 3 - 0.5)
    md = report_markdown(report).splitlines()
    table = md[md.index("## Pipelines") + 2:]
    assert table[0].startswith("| pipeline | per-subject balanced accuracy, mean ± std | "
                               "subjects | chance | p | physiosync − pipeline | mean paired "
                               "difference [95 % CI] | paired p | Holm p | model |")
    head = report["headline"]
    assert table[2].startswith(f"| physiosync | {head['mean']:.3f} ± {head['std']:.3f} | 3 | "
                               f"0.500 | {rows[0]['p_value']:.3g} |  |  |  |  |")
    c = comps["stimulus-prior"]
    assert table[4].startswith("| stimulus-prior | 0.500 ± 0.000 | 3 | 0.500 | ")
    ci = [("n/a" if v is None else f"{v:.3f}") for v in c["ci95"]]
    assert (f"| {head['mean'] - 0.5:.3f} | {c['mean']:.3f} [{ci[0]}, {ci[1]}] (3 subjects) | "
            f"{c['p_value']:.3g} | {c['p_value_holm']:.3g} |") in table[4]
    assert any("99 permutations" in line for line in md)
    assert any(line.startswith("Holm p: the paired p-values adjusted by Holm's step-down "
                               "method over one family, the 2 pipelines compared with "
                               "physiosync") for line in md)
    text = report_text(report).splitlines()
    row = next(line for line in text if line.startswith("stimulus-prior "))
    assert f"{c['mean']:.3f} [{ci[0]}, {ci[1]}]" in row
    # without permutations the p column holds a dash, and a note says how to get one
    plain = build_report(runs, protocol="within-trial-kfold", target="valence")
    assert all(r["p_value"] is None for r in pipeline_table(plain))
    text = report_text(plain)
    row = next(line for line in text.splitlines() if line.startswith("physiosync "))
    assert row.split()[5] == "—" and "protocol.permutations is 0" in text
    assert "protocol.permutations is 0" in report_markdown(plain)


# --------------------------------------------------------------------------- the report command
def _run_folder(path, records, **kw):
    """A cv run folder (marker and list of written files) holding only a report."""
    from physiosync.runfolder import RunFolder, fingerprint_of

    with RunFolder(path, "cv", fingerprint_of({"run": str(path)})) as folder:
        folder.claim()
        write_report(build_report({"physiosync": records}, protocol="within-trial-kfold",
                                  target="valence", **kw), path)
    return path


def test_report_command_rerenders_a_run_in_place(tmp_path, capsys):
    run = _run_folder(tmp_path / "run", _records(GOOD))
    before = {f: (run / f).read_bytes() for f in ("report.json", "results.csv", "report.md")}
    (run / "report.html").unlink()
    assert main(["report", str(run)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {run / 'report.html'}"
    assert (run / "report.html").is_file()
    assert {f: (run / f).read_bytes() for f in before} == before
    # a report.json path works as well as its folder
    assert main(["report", str(run / "report.json"), "--out", str(tmp_path / "copy")]) == 0
    assert (tmp_path / "copy" / "report.md").read_bytes() == before["report.md"]


def test_report_command_merges_runs_and_refuses_a_mismatch(tmp_path, capsys):
    a = _run_folder(tmp_path / "a", _records(GOOD))
    b = _run_folder(tmp_path / "b", _records(WORSE))
    out = tmp_path / "both"
    assert main(["report", str(a), str(b), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {out / 'report.html'}"
    merged = json.loads((out / "report.json").read_text())
    assert list(merged["pipelines"]) == ["physiosync", "b/physiosync"]
    assert merged["comparisons"][0]["n"] == 3
    text = (out / "report.md").read_text(encoding="utf-8")
    assert "| physiosync − b/physiosync |" in text
    c = _run_folder(tmp_path / "c", _records(WORSE), per_subject_models=False)
    assert main(["report", str(a), str(c), "--out", str(tmp_path / "no")]) == 2
    assert "cannot merge run 'c'" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "cannot read" in capsys.readouterr().err


@pytest.mark.integration
def test_report_command_on_a_finished_run_reproduces_its_files(tmp_path, capsys):
    demo = tmp_path / "demo"
    assert main(["demo", "--out", str(demo), "--subjects", "3", "--trials", "4",
                 "--seconds", "10", "--config", "tiny", "-q"]) == 0
    run, out = demo / "run", tmp_path / "again"
    capsys.readouterr()
    assert main(["report", str(run), "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"report: {out / 'report.html'}"
    for name in ("report.json", "results.csv", "report.md", "report.html"):
        assert (out / name).read_bytes() == (run / name).read_bytes(), name
    report = json.loads((run / "report.json").read_text())
    assert list(report["pipelines"]) == ["physiosync", "no-pretrain", "bandpower"]
    assert not math.isnan(report["headline"]["mean"])
