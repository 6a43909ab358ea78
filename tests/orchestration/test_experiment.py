"""The main job end to end: `physiosync cv`, reports, resume, bad input, null and strong effects."""

import json

import numpy as np
import pytest
from _numerics import above_chance, chance_band

import physiosync.evaluation.fit as fit_module  # PhysioSync's one fit path
import physiosync.evaluation.runner as cv
import physiosync.training.pretrain as pretrain_module
from physiosync.cli import main
from physiosync.config import load_config
from physiosync.synthetic import make_deap, make_dreamer
from physiosync.experiment import run_experiment

FIGURES = ("fig-per-subject", "fig-confusion", "fig-curves", "fig-topomap", "fig-comparisons")


@pytest.fixture(scope="module")
def deap_root(tmp_path_factory):
    return make_deap(tmp_path_factory.mktemp("exp") / "deap", n_subjects=3, n_trials=6,
                     seconds=10, effect=3.0, seed=11)


def _cv(root, out, *extra, cache=None):
    # 3 subjects x 6 videos: with a video of each training half kept out of pre-training
    # for the held-out diagnostic, too few slots remain for a batch; pre-train on it too
    return main(["cv", "--dataset", "deap", "--data-root", str(root), "--config", "tiny",
                 "--folds", "2", "--out", str(out), "-q", "--set", "protocol.one_class=constant",
                 "--set", "pretrain.held_out=unused",
                 "--cache-dir", str(cache or out.parent / "cache"), *extra])


@pytest.mark.integration
def test_cli_cv_end_to_end_writes_every_report_file(deap_root, tmp_path, capsys):
    out = tmp_path / "run"
    assert _cv(deap_root, out, "--pipelines", "physiosync,eeg-only,bandpower") == 0
    printed = capsys.readouterr().out
    assert "report: " in printed and str(out / "report.html") in printed
    doc = json.loads((out / "report.json").read_text())
    assert doc["protocol"] == "within-trial-kfold" and doc["target"] == "valence"
    assert list(doc["pipelines"]) == ["physiosync", "eeg-only", "bandpower"]
    for fold in doc["folds"]:
        assert {"fold", "train", "val", "test", "metrics", "chance"} <= set(fold)
        assert all(len(unit) == 2 for unit in fold["test"])
    assert {"mean", "std"} <= set(doc["summary"]["window.balanced_accuracy"])
    assert doc["pipelines"]["physiosync"]["curves"]["pretrain"]["long"][0]["loss"]
    assert len(doc["pipelines"]["bandpower"]["channel_importance"]["values"]) == 32
    assert [c["baseline"] for c in doc["comparisons"]] == ["eeg-only", "bandpower"]
    # every subject has its own model, but they share each fold's pre-training: folds
    assert doc["comparisons"][0]["level"] == "fold"
    assert "physiosync pre-trains one encoder per fold" in doc["comparisons"][0]["pairing"]
    assert doc["config"]["run"]["versions"]["physiosync"]
    html = (out / "report.html").read_text()
    for fig in FIGURES:
        assert f'id="{fig}"' in html
    assert html.count("data:image/png;base64,") >= len(FIGURES)
    csv = (out / "results.csv").read_text().splitlines()
    assert csv[0] == "pipeline,fold,target,level,metric,value,chance,row,subject"
    # the report leads with the per-subject headline, its chance beside it
    assert doc["headline"]["metric"] == "subject.balanced_accuracy"
    assert doc["headline"]["chance"] == 0.5 and doc["per_subject_models"] is True
    assert list(doc["summary"])[0] == "subject.balanced_accuracy"
    assert "headline: per-subject balanced accuracy" in printed
    assert doc["comparisons"][0]["primary_test"] == "corrected-t"
    assert doc["comparisons"][0]["test"].startswith("corrected resampled t-test")
    assert {"ci95", "cohens_dz", "min_p", "sign_flip", "warning"} <= set(doc["comparisons"][0])
    assert doc["pipelines"]["bandpower"]["model"]["shared_across_subjects"] is None
    # every pipeline says what it runs, the encoder embedding included
    model = doc["pipelines"]["physiosync"]["model"]
    assert model["embedding"] == {"long": "multiview", "short": "multiview"}
    assert model["pretrained"] is True and model["modalities"] == ["eeg", "gsr"]
    assert doc["pipelines"]["eeg-only"]["model"]["modalities"] == ["eeg"]
    assert doc["pipelines"]["bandpower"]["model"]["embedding"] is None
    assert "Model: PhysioSync, multiview embedding (long 5 s, short 1 s), pre-trained" in \
        (out / "report.md").read_text()
    assert "PhysioSync, multiview embedding" in html and "PhysioSync, multiview" in printed
    config = (out / "config.yaml").read_text()
    assert "versions:" in config and "data_source:" in config
    for name in ("physiosync", "eeg-only", "bandpower"):
        assert sorted(p.name for p in (out / "folds" / name).iterdir()) == [
            "fold_00.json", "fold_01.json"]


@pytest.mark.integration
def test_interrupted_cv_resumes_skips_finished_folds_and_ends_identical(
        deap_root, tmp_path, monkeypatch, interrupter, capsys):
    assert _cv(deap_root, tmp_path / "whole") == 0
    real = cv.run_fold
    monkeypatch.setattr(cv, "run_fold", interrupter(real, at=2))
    capsys.readouterr()
    assert _cv(deap_root, tmp_path / "cut") == 130  # Ctrl-C: one line, how far, how to resume
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "1 of 4 (pipeline, fold) units done" in err and "same command again to resume" in err
    assert not (tmp_path / "cut" / "report.json").exists()
    assert [p.name for p in (tmp_path / "cut" / "folds" / "physiosync").iterdir()] == [
        "fold_00.json"]

    counted = interrupter(real)
    monkeypatch.setattr(cv, "run_fold", counted)
    assert _cv(deap_root, tmp_path / "cut") == 0
    assert counted.calls == 1  # only the unfinished fold ran
    # the resume is said on the console too, not only in run.log
    said = [line for line in capsys.readouterr().out.splitlines()
            if line.startswith("resuming:")]
    assert said == [f"resuming: 1 of 4 (pipeline, fold) units already done in "
                    f"{tmp_path / 'cut'}"]
    assert said[0] in (tmp_path / "cut" / "run.log").read_text()
    for name in ("report.json", "results.csv", "report.md"):
        assert (tmp_path / "cut" / name).read_text() == (tmp_path / "whole" / name).read_text()


@pytest.mark.parametrize("extra,message", [
    # the error names the option that set the value, and the key it sets
    (["--folds", "7"], "--folds 7 (protocol.n_splits) is larger than the 6 stimuli"),
    (["--folds", "1"], "--folds (protocol.n_splits) must be >= 2, got 1"),
    (["--folds", "3", "--set", "protocol.n_splits=7"], "n_splits=7 is larger than the 6"),
    (["--set", "protocol.one_class=error", "--set", "protocol.n_splits=3"], "hold one class only"),
    (["--set", "data.modalities=[eeg,ecg]"], "DEAP has no ecg"),
    (["--set", "pretrain.lr=-1"], "'pretrain.lr' must be > 0"),
])
def test_bad_input_fails_before_any_training(deap_root, tmp_path, monkeypatch, capsys, extra,
                                             message):
    monkeypatch.setattr(pretrain_module, "pretrain",
                        lambda *a, **k: pytest.fail("trained before checking"))
    monkeypatch.setattr(fit_module, "finetune", lambda *a, **k: pytest.fail("trained before checking"))
    if "one_class" in " ".join(extra):
        # Subject 1 rates every training video alike in some fold of 3 (seeded data).
        cfg = load_config("tiny", ["protocol.n_splits=3", "protocol.one_class=error"],
                          data={"root": str(deap_root), "cache_dir": str(tmp_path / "c")})
        from physiosync.experiment import load_experiment_data, plan_folds

        data = load_experiment_data(cfg)
        singles = [cv.one_class_models(data.slots, f, one_class="constant")
                   for f in plan_folds(cfg, data)]
        if not any(singles):
            pytest.skip("this seed has no one-class training split")
    assert _cv(deap_root, tmp_path / "run", *extra) == 2
    err = capsys.readouterr().err
    assert err.startswith("physiosync: error:") and message in err and "Traceback" not in err


def test_unavailable_device_fails_before_preparing_data(deap_root, tmp_path, capsys,
                                                       monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("CUDA is available here")
    import physiosync.experiment.planning as planning

    monkeypatch.setattr(planning, "load_experiment_data",
                        lambda cfg: pytest.fail("prepared data before checking the device"))
    assert _cv(deap_root, tmp_path / "run", "--device", "cuda") == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_missing_root_and_missing_target_are_clear_errors(tmp_path, capsys):
    assert main(["cv", "--dataset", "deap", "--data-root", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "o")]) == 2
    assert f"data root {tmp_path / 'nope'} does not exist" in capsys.readouterr().err
    mat = make_dreamer(tmp_path / "DREAMER.mat", n_subjects=2, n_trials=3, seconds=4, seed=1)
    assert main(["cv", "--dataset", "dreamer", "--data-root", str(mat), "--target", "liking",
                 "--out", str(tmp_path / "o")]) == 2
    assert "target 'liking' does not exist in DREAMER" in capsys.readouterr().err


def test_legacy_protocol_report_warns_on_top(deap_root, tmp_path):
    cfg = load_config(["tiny"], ["protocol.name=legacy-segment", "protocol.n_splits=2",
                                 "pipelines=[physiosync]"],
                      data={"root": str(deap_root), "cache_dir": str(tmp_path / "c")})
    result = run_experiment(cfg, tmp_path / "run", verbose=False)
    report = result["report"]
    assert report["leaky"] and "LEAKAGE WARNING" in report["warning"]
    md = (tmp_path / "run" / "report.md").read_text().splitlines()
    assert "LEAKAGE WARNING" in md[2]
    html = (tmp_path / "run" / "report.html").read_text()
    assert html.index("LEAKAGE WARNING") < html.index('id="fig-per-subject"')


@pytest.mark.integration
def test_report_command_merges_runs_on_the_same_folds(deap_root, tmp_path, capsys):
    assert _cv(deap_root, tmp_path / "a", "--pipelines", "physiosync") == 0
    assert _cv(deap_root, tmp_path / "b", "--pipelines", "bandpower") == 0
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "b"), "--out",
                 str(tmp_path / "both")]) == 0
    doc = json.loads((tmp_path / "both" / "report.json").read_text())
    assert list(doc["pipelines"]) == ["physiosync", "bandpower"]
    assert doc["comparisons"][0]["baseline"] == "bandpower"
    assert _cv(deap_root, tmp_path / "c", "--pipelines", "bandpower", "--seed", "5") == 0
    capsys.readouterr()
    assert main(["report", str(tmp_path / "a"), str(tmp_path / "c")]) == 2
    assert "folds differ" in capsys.readouterr().err


@pytest.mark.integration
@pytest.mark.parametrize("protocol", [
    "within-trial-kfold",
    # held-out subjects: 50 s here, and held-out subjects learning a strong effect is
    # also checked by the baselines' tests; out of CI (-m slow) to keep the suite short
    pytest.param("loso", marks=pytest.mark.slow)])
def test_null_effect_gives_chance_and_strong_effect_is_learned(tmp_path, protocol):
    # Honest protocols on synthetic DEAP: held-out videos (pooled model) or held-out
    # subjects. With no emotion effect both pipelines sit at chance; with a strong one both
    # learn it (PhysioSync through its spectral embedding, docs/model.md).
    scores = {}
    for effect in (0.0, 3.0):
        root = make_deap(tmp_path / f"d{effect}", n_subjects=4, n_trials=12, seconds=20,
                         effect=effect, seed=2)
        # one subject per side of a positive pair: loso leaves 3 training subjects
        cfg = load_config("demo", [f"protocol.name={protocol}", "protocol.n_splits=4",
                                   "pipelines=[physiosync, bandpower]", "pretrain.steps=30",
                                   "pretrain.group_size=1", "finetune.epochs=25"],
                          data={"root": str(root), "cache_dir": str(tmp_path / "c")})
        report = run_experiment(cfg, tmp_path / f"run{effect}", verbose=False,
                                html=False)["report"]
        scores[effect] = {name: part["headline"]["mean"]
                          for name, part in report["pipelines"].items()}
    # Margins from the binomial error of the independent test units (tests/_numerics.py):
    # the 4 subjects x 12 trials, each tested once over the folds (its windows share a
    # label and a recording, so they are not counted). No effect: inside the two-sided
    # band, 0.26-0.74; a pooled model that leans towards the training folds' majority can
    # fall well below 0.5 (those labels are anti-correlated with the held-out ones), by
    # an amount that depends on the thread count's rounding. Strong effect: above the
    # one-sided 5 % bound, 0.62. Measured (2-core CPU): no effect 0.44-0.52, effect 3
    # 0.82-0.89 (within-trial-kfold, loso; both pipelines).
    low, high = chance_band(4 * 12)
    for name in ("physiosync", "bandpower"):
        assert low < scores[0.0][name] < high, scores
        assert scores[3.0][name] > above_chance(4 * 12), scores


@pytest.mark.integration
def test_dreamer_four_class_with_ecg_at_its_native_rate(tmp_path):
    mat = make_dreamer(tmp_path / "DREAMER.mat", n_subjects=3, n_trials=6, seconds=8, seed=1)
    assert main(["cv", "--config", "dreamer_within", "--config", "tiny",
                 "--dataset", "dreamer", "--data-root", str(mat), "--target", "four",
                 "--folds", "2", "--out", str(tmp_path / "run"), "-q",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    doc = json.loads((tmp_path / "run" / "report.json").read_text())
    assert doc["n_classes"] == 4 and doc["class_names"] == ["HA-HV", "HA-LV", "LA-HV", "LA-LV"]
    assert {"accuracy", "macro_f1", "weighted_f1"} <= set(doc["folds"][0]["metrics"]["window"])
    # Four classes: the headline is the per-subject macro F1; balanced accuracy sits beside
    # 1/C (C = classes in the test labels), never beside the majority-class accuracy.
    assert doc["headline"]["metric"] == "subject.macro_f1"
    for fold in doc["folds"]:
        present = len({y for y in _fold_labels(tmp_path / "run", fold["fold"])})
        assert fold["chance"]["window"]["balanced_accuracy"] == pytest.approx(1 / present)
        assert fold["chance_source"] == "training labels"
    md = (tmp_path / "run" / "report.md").read_text()
    assert "| pooled window balanced accuracy (`window.balanced_accuracy`) |" in md
    oc = doc["pipelines"]["physiosync"]["one_class"]
    assert oc["windows"] == sum(f["one_class_windows"] for f in doc["folds"])
    assert np.array(doc["pipelines"]["physiosync"]["confusion"]["window"]).shape == (4, 4)
    assert doc["config"]["run"]["data_source"]["dataset"] == "DREAMER"
    assert len(doc["pipelines"]["bandpower"]["channel_importance"]["channels"]) == 14


def _fold_labels(run, fold):
    path = run / "folds" / "physiosync" / f"fold_{fold:02d}.json"
    return [p["y"] for p in json.loads(path.read_text())["predictions"]]


def test_dry_run_checks_and_prints_the_plan_without_training(deap_root, tmp_path, capsys,
                                                             monkeypatch):
    monkeypatch.setattr(pretrain_module, "pretrain",
                        lambda *a, **k: pytest.fail("trained in a dry run"))
    monkeypatch.setattr(fit_module, "finetune", lambda *a, **k: pytest.fail("trained in a dry run"))
    # --no-estimate: the plan and its counts without timing a step (tests/evaluation/test_cost.py)
    common = ["cv", "--dataset", "deap", "--data-root", str(deap_root), "--protocol", "loso",
              "--dry-run", "--no-estimate", "--cache-dir", str(tmp_path / "c")]
    # The default synchrony batch (8 slots, 2 subjects per side) needs 4 subjects on a
    # slot; loso on 3 subjects leaves 2: caught before any training, naming the fold.
    assert main(common) == 2
    err = capsys.readouterr().err
    assert "fold 0, long pre-training" in err and "group_size" in err
    small = ["--set", "pretrain.group_size=1", "--set", "pretrain.batch_slots=4"]
    # keeping each fold's validation subject out of pre-training leaves one subject: the
    # check says so and names the setting that pre-trains on it too
    assert main(common + small) == 2
    assert "pretrain.held_out: unused" in capsys.readouterr().err
    assert main(common + small + ["--set", "pretrain.held_out=unused"]) == 0
    text = capsys.readouterr().out
    assert "loso: 3 folds" in text and "all checks passed" in text and "test_units" in text
    assert main(["cv", "--dataset", "deap", "--data-root", str(deap_root)]) == 2
    assert "needs --out" in capsys.readouterr().err


@pytest.mark.integration
def test_subject_stimulus_kfold_with_the_stimulus_prior_baseline_end_to_end(tmp_path):
    # 4 subjects so that 2 folds leave 2 training subjects to pre-train across subjects.
    root = make_deap(tmp_path / "deap", n_subjects=4, n_trials=6, seconds=10, effect=3.0,
                     seed=11)
    out = tmp_path / "run"
    assert _cv(root, out, "--protocol", "subject-stimulus-kfold",
               "--pipelines", "physiosync,stimulus-prior") == 0
    doc = json.loads((out / "report.json").read_text())
    assert doc["protocol"] == "subject-stimulus-kfold"
    assert list(doc["pipelines"]) == ["physiosync", "stimulus-prior"]
    assert doc["pipelines"]["stimulus-prior"]["channel_importance"] is None
    for fold in doc["folds"]:
        subjects, trials = {s for s, _ in fold["test"]}, {t for _, t in fold["test"]}
        assert len(fold["test"]) == len(subjects) * len(trials)
        for s, t in fold["train"] + fold["val"]:
            assert s not in subjects and t not in trials
    for name in ("physiosync", "stimulus-prior"):
        assert len(list((out / "folds" / name).glob("fold_*.json"))) == 2
    for path in (out / "folds" / "stimulus-prior").glob("fold_*.json"):
        pred = json.loads(path.read_text())["predictions"]
        # Every test stimulus is unseen in training: one prediction, the training prior.
        assert len({(p["p0"], p["p1"]) for p in pred}) == 1
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
