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
    if recipe == "ablations.sh":
        names = [p["name"] for p in load_config(args.config).pipelines]
        assert {"no-cmca", "short-only", "eeg-only", "no-pretrain"} <= set(names)


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
