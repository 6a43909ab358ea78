"""The cost of a study before its compute: `cv --dry-run`, the start of a run, estimate_cost."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from physiosync.cli import main
from physiosync.config import load_config
from physiosync.experiment import estimate_cost, plan_experiment

PIPELINES = "physiosync,long-only,bandpower"


def _args(root, cache, *extra):
    # 3 subjects x 6 videos, 2 folds: some subjects see one class in a fold (no model);
    # pre-training on the validation units too, or the sampler cannot fill a batch
    return ["cv", "--dataset", "deap", "--data-root", str(root), "--config", "tiny",
            "--folds", "2", "--pipelines", PIPELINES, "--cache-dir", str(cache),
            "--set", "protocol.one_class=constant", "--set", "pretrain.held_out=unused",
            *extra]


def _cost_table(text: str) -> pd.DataFrame:
    """The printed cost table: pipeline -> models, runs, steps, epochs, steps."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("cost per pipeline"))
    rows = {}
    for line in lines[start + 3:]:  # the title, the header and the index-name lines
        if line.startswith("estimated time"):
            break
        line = re.sub(r"\s+\S+ (s|min|h)$", "", line)  # the estimate, when timed
        name, models, runs, *rest = line.split()
        rows[name] = (int(models), int(runs), " ".join(rest))
    return rows


def _trained(run) -> dict:
    """Models, pre-training runs and steps, fine-tuning epochs, read from a run's fold files."""
    out = {}
    for name in PIPELINES.split(","):
        models = runs = 0
        steps = {"long": 0, "short": 0}
        epochs = set()
        for path in sorted((run / "folds" / name).glob("fold_*.json")):
            record = json.loads(path.read_text())
            curves = record["curves"]
            if "finetune" in curves:  # a network per model: its fine-tuning curve
                models += len(curves["finetune"])
                epochs |= {len(c["epoch"]) for c in curves["finetune"]}
                runs += len(curves["pretrain"])
                for encoder, curve in curves["pretrain"].items():
                    steps[encoder] += len(curve["step"])
            else:  # an estimator: one per subject that did not get the constant prediction
                pred = pd.DataFrame(record["predictions"])
                models += pred.loc[~pred["one_class"], "subject"].nunique()
        out[name] = {"models": models, "runs": runs, "steps": steps, "epochs": epochs}
    return out


def test_dry_run_prints_each_pipelines_training_and_the_estimate(study_root, tmp_path, capsys):
    assert main(_args(study_root, tmp_path / "c", "--dry-run")) == 0
    text = capsys.readouterr().out
    assert "all checks passed" in text
    table = _cost_table(text)
    assert list(table) == PIPELINES.split(",")
    line = next(x for x in text.splitlines() if x.startswith("estimated time: about "))
    assert "torch thread" in line and "1 warm-up + 3 timed steps" in line
    # long-only pre-trains the long encoder alone; band power neither pre-trains nor has epochs
    assert table["physiosync"][1] == 2 * table["long-only"][1]
    assert table["bandpower"][1] == 0 and table["bandpower"][2].startswith("- - -")
    assert main(_args(study_root, tmp_path / "c", "--dry-run", "--no-estimate")) == 0
    text = capsys.readouterr().out
    assert "estimated time: not measured (--no-estimate)" in text
    assert _cost_table(text) == table  # the counts are the same without timing


@pytest.mark.integration
def test_counted_models_and_steps_are_those_a_real_run_trains(study_root, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(_args(study_root, tmp_path / "c", "--out", str(run), "-q")) == 0
    printed = capsys.readouterr().out
    # the cost comes first, before the report's summary
    assert printed.index("cost per pipeline") < printed.index("report: ")
    table = _cost_table(printed)
    cfg = load_config("tiny", [f"data.root={study_root}", f"data.cache_dir={tmp_path / 'c'}",
                               "protocol.n_splits=2", "protocol.one_class=constant",
                               "pretrain.held_out=unused", f"pipelines=[{PIPELINES}]"])
    counted = estimate_cost(cfg, timed=False).table
    trained = _trained(run)
    for name in PIPELINES.split(","):
        row = counted.loc[name]
        assert table[name][:2] == (row["models"], row["pretrain_runs"])
        assert trained[name]["models"] == row["models"] > 0, name
        assert trained[name]["runs"] == row["pretrain_runs"], name
        assert trained[name]["steps"] == {"long": row["pretrain_steps_long"],
                                          "short": row["pretrain_steps_short"]}, name
        if row["finetune_epochs"]:
            assert trained[name]["epochs"] == {row["finetune_epochs"]}, name
    # some subject of a fold saw one class: fewer models than subjects x folds
    assert counted.loc["bandpower", "models"] < 3 * 2


def test_estimate_cost_counts_label_budgets_and_refits(study_root, tmp_path):
    base = [f"data.root={study_root}", f"data.cache_dir={tmp_path / 'c'}",
            "protocol.n_splits=2", "protocol.one_class=constant", "pretrain.held_out=unused",
            "pipelines=[physiosync, bandpower]"]
    plain = estimate_cost(load_config("tiny", base), timed=False).table
    assert np.isnan(plain["seconds"]).all() and set(plain["timed"]) == {"not timed"}
    refit = estimate_cost(load_config("tiny", base + ["protocol.permutation_refit=2"]),
                          timed=False).table
    # each refit retrains every model; a fold's refits share one pre-training
    assert (refit["models"] == 3 * plain["models"]).all()
    assert refit.loc["physiosync", "pretrain_runs"] == 2 * plain.loc["physiosync",
                                                                      "pretrain_runs"]
    # the label budgets of a fold share its pre-training: one run per fold and encoder
    budgets = estimate_cost(load_config("tiny", base + ["protocol.labelled_trials=[2, all]"]),
                            timed=False).table
    assert budgets.loc["physiosync", "pretrain_runs"] == 2 * 2
    assert (budgets["models"] > plain["models"]).all()


def test_estimate_cost_times_every_pipeline(study_root, tmp_path):
    cfg = load_config("tiny", [f"data.root={study_root}", f"data.cache_dir={tmp_path / 'c'}",
                               "protocol.n_splits=2", "protocol.one_class=constant",
                               "pretrain.held_out=unused",
                               "pipelines=[physiosync, no-pretrain, de-lr, stimulus-prior]"])
    plan = plan_experiment(cfg)
    est = estimate_cost(cfg, plan, steps=2)
    t = est.table
    assert (t["seconds"] > 0).all() and (t["low"] <= t["seconds"]).all()
    assert (t["seconds"] <= t["high"]).all()
    assert t.loc["no-pretrain", "pretrain_runs"] == 0
    assert t.loc["no-pretrain", "finetune_steps"] == t.loc["physiosync", "finetune_steps"]
    assert est.seconds == pytest.approx(t["seconds"].sum())
    assert re.search(r"1 warm-up \+ 2 timed steps", est.text())


def test_every_pipeline_kind_names_the_fold_runner_that_trains_its_models(study_root, tmp_path):
    from physiosync.config import PIPELINES, pipeline_config
    from physiosync.evaluation.pipelines import PIPELINE_KINDS
    from physiosync.evaluation.runner import FoldRunner
    from physiosync.experiment import load_experiment_data

    cfg = load_config("tiny", [f"data.root={study_root}", f"data.cache_dir={tmp_path / 'c'}"])
    data = load_experiment_data(cfg)
    for kind in PIPELINE_KINDS.values():
        name = next(n for n, p in PIPELINES.items() if p["kind"] == kind.name)
        spec = {"name": name, **PIPELINES[name]}
        model = kind.fold_runner(pipeline_config(cfg, spec), data)
        assert isinstance(model, FoldRunner), kind.name


@pytest.mark.parametrize("seconds, text", [(4.25, "4.2 s"), (40.4, "40 s"), (150, "2.5 min"),
                                           (1800, "30 min"), (3 * 3600, "3.0 h"),
                                           (float("nan"), "?")])
def test_format_duration_words(seconds, text):
    from physiosync.experiment.estimate import format_duration

    assert format_duration(seconds) == text


def test_run_costs_count_the_steps_a_run_takes_and_time_them(study_root, tmp_path):
    from physiosync.evaluation.fit import holdout_split
    from physiosync.experiment import load_experiment_data
    from physiosync.experiment.estimate import finetune_run_cost, pretrain_run_cost
    from physiosync.training.finetune import steps_per_epoch
    from physiosync.training.pretrain import make_sampler, run_steps

    cfg = load_config("tiny", [f"data.root={study_root}", f"data.cache_dir={tmp_path / 'c'}"])
    data = load_experiment_data(cfg, verbose=False)
    for name, pc, sub in (("long", cfg.pretrain_long, 1),
                          ("short", cfg.pretrain_short, cfg.data.n_sub)):
        n = run_steps(pc, make_sampler(data.slots.valid, pc, n_sub=sub))
        assert pretrain_run_cost(data, cfg, name, timed=False) == f"{n} steps"
    assert re.fullmatch(r"\d+ steps, about \S+ (s|min|h) here with \d+ torch threads?, from 1 "
                        r"warm-up \+ \d+ timed steps",
                        pretrain_run_cost(data, cfg, "long"))
    split = holdout_split(data.slots, data.units, data.labels, test_trials=[0],
                          val_size=cfg.protocol.val_size, seed=cfg.seed)
    epochs = (f"{cfg.finetune.epochs} epochs of "
              f"{steps_per_epoch(len(split.train), cfg.finetune.batch_size)} steps")
    assert finetune_run_cost(data, cfg, split.train, split.val, split.test,
                             timed=False) == epochs
    timed = finetune_run_cost(data, cfg, split.train, split.val, split.test)
    assert timed.startswith(epochs + ", about ") and "timed steps" in timed
