"""The recipes in pipelines/: every command they run parses, and its configs validate."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from physiosync.cli import build_parser
from physiosync.config import load_config

ROOT = Path(__file__).resolve().parents[1]
RECIPES = {
    "reproduce_authors.sh": ["DEAP", "OUT"],
    "honest.sh": ["DEAP", "DREAMER.mat", "OUT"],
    "ablations.sh": ["DEAP", "OUT"],
    "baselines.sh": ["DEAP", "OUT"],
    "label_efficiency.sh": ["DEAP", "DREAMER.mat", "OUT"],
}


def _dry_run(recipe, args, **env):
    proc = subprocess.run(["bash", str(ROOT / "pipelines" / recipe), *args, "--config", "tiny"],
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "DRY_RUN": "1", **env})
    return [shlex.split(line) for line in proc.stdout.splitlines() if line.strip()]


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_recipe_commands_parse_and_their_configs_validate(recipe):
    commands = _dry_run(recipe, RECIPES[recipe], TARGETS="valence arousal")
    assert commands
    for cmd in commands:
        assert cmd[0] == "physiosync"
        args = build_parser().parse_args(cmd[1:])
        cfg = load_config(args.config, args.set, data={"name": args.dataset,
                                                       "target": args.target})
        assert cfg.data.target in ("valence", "arousal")
        if recipe == "reproduce_authors.sh":
            assert cfg.protocol.name == "legacy-segment"
        else:
            assert cfg.protocol.name != "legacy-segment"
    if recipe == "honest.sh":  # 2 datasets x 3 settings x 2 targets
        protocols = [load_config(build_parser().parse_args(c[1:]).config).protocol.name
                     for c in commands]
        assert len(commands) == 12 and protocols.count("subject-stimulus-kfold") == 4
    if recipe == "label_efficiency.sh":  # 2 datasets x 2 protocols x 2 targets
        cfgs = [load_config(build_parser().parse_args(c[1:]).config) for c in commands]
        assert len(cfgs) == 8
        assert {c.protocol.name for c in cfgs} == {"within-trial-kfold",
                                                    "subject-stimulus-kfold"}
        for c in cfgs:
            assert c.protocol.labelled_trials[-1] == "all"
            assert [p["name"] for p in c.pipelines][:2] == ["physiosync", "no-pretrain"]
            assert c.finetune.select == "last"
    if recipe == "ablations.sh":
        names = [p["name"] for p in load_config(args.config).pipelines]
        assert {"no-cmca", "short-only", "eeg-only", "no-pretrain"} <= set(names)

    if recipe == "baselines.sh":
        cfg = load_config(args.config)
        names = [p["name"] for p in cfg.pipelines]
        assert names[0] == "physiosync" and {
            "bandpower", "de-lr", "de-svm", "eegnet", "shallow-fbcsp", "simclr", "no-pretrain",
            "stimulus-prior"} <= set(names)
        assert cfg.protocol.permutations > 0 and cfg.data.name == "deap"


def test_baselines_recipe_picks_the_dataset_from_its_data_argument():
    """A .mat file runs the DREAMER suite, a folder the DEAP one; both on held-out stimuli
    with a permutation p-value for every pipeline, PhysioSync first."""
    for data, dataset, env in (("DREAMER.mat", "dreamer", {}), ("DEAP", "deap", {}),
                               ("renamed.bin", "dreamer", {"DATASET": "dreamer"})):
        (cmd,) = _dry_run("baselines.sh", [data, "OUT"], TARGETS="valence", **env)
        args = build_parser().parse_args(cmd[1:])
        cfg = load_config(args.config, args.set, data={"name": args.dataset})
        assert args.dataset == cfg.data.name == dataset
        assert Path(args.config[0]).name == f"{dataset}_baselines.yaml"
        assert args.out == f"OUT/{dataset}_baselines_valence"
        assert cfg.protocol.name == "within-trial-kfold" and cfg.protocol.permutations > 0
        assert [p["name"] for p in cfg.pipelines][0] == "physiosync"
    proc = subprocess.run(["bash", str(ROOT / "pipelines" / "baselines.sh"), "D", "OUT"],
                          capture_output=True, text=True,
                          env={**os.environ, "DRY_RUN": "1", "DATASET": "seed"})
    assert proc.returncode == 2 and "DATASET must be deap or dreamer" in proc.stderr


def test_recipe_without_arguments_prints_usage():
    proc = subprocess.run(["bash", str(ROOT / "pipelines" / "honest.sh")], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "usage:" in proc.stderr


@pytest.mark.integration
def test_reproduce_authors_recipe_runs_and_warns(tmp_path):
    from physiosync.synthetic import make_deap

    root = make_deap(tmp_path / "deap", n_subjects=2, n_trials=4, seconds=10, effect=2, seed=4)
    bin_dir = Path(sys.executable).parent
    proc = subprocess.run(
        ["bash", str(ROOT / "pipelines" / "reproduce_authors.sh"), str(root),
         str(tmp_path / "runs"), "--config", "tiny", "--folds", "2", "-q",
         "--cache-dir", str(tmp_path / "cache")],
        capture_output=True, text=True,
        env={**os.environ, "TARGETS": "valence", "PHYSIOSYNC": str(bin_dir / "physiosync")})
    assert proc.returncode == 0, proc.stderr
    assert "LEAKAGE WARNING" in proc.stdout
    assert (tmp_path / "runs" / "deap_legacy_valence" / "report.html").is_file()


@pytest.mark.integration
def test_baselines_recipe_runs_and_writes_one_table(tmp_path):
    from physiosync.synthetic import make_deap

    root = make_deap(tmp_path / "deap", n_subjects=2, n_trials=4, seconds=10, effect=2, seed=4)
    bin_dir = Path(sys.executable).parent
    # the suite's protocol and report, with the pipelines that need no deep network
    proc = subprocess.run(
        ["bash", str(ROOT / "pipelines" / "baselines.sh"), str(root), str(tmp_path / "runs"),
         "--config", "tiny", "--folds", "2", "-q", "--cache-dir", str(tmp_path / "cache"),
         "--set", "protocol.permutations=19", "--set", "pretrain.held_out=unused",
         "--set", "pipelines=[physiosync,bandpower,de-lr,stimulus-prior]"],
        capture_output=True, text=True,
        env={**os.environ, "TARGETS": "valence", "PHYSIOSYNC": str(bin_dir / "physiosync")})
    assert proc.returncode == 0, proc.stderr
    run = tmp_path / "runs" / "deap_baselines_valence"
    md = (run / "report.md").read_text(encoding="utf-8").splitlines()
    table = md[md.index("## Pipelines") + 2:]
    rows = [line.split(" | ") for line in table[2:6]]
    assert [r[0] for r in rows] == ["| physiosync", "| bandpower", "| de-lr",
                                    "| stimulus-prior"]
    # every row has a permutation p (19 permutations: p >= 0.05); baselines a difference
    assert all(float(r[4]) >= 0.05 for r in rows)
    assert rows[0][5:7] == ["", ""] and all(r[5] for r in rows[1:])
    assert "within-trial-kfold" in md[0] and "physiosync − pipeline" in proc.stdout
    assert (run / "report.html").is_file()
