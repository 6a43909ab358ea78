"""The recipes in pipelines/: every command they run parses, and its configs validate."""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from physiosync.cli import build_parser
from physiosync.config import load_config

ROOT = Path(__file__).resolve().parents[2]
RECIPES = {
    "reproduce_authors.sh": ["DEAP", "OUT"],
    "honest.sh": ["DEAP", "DREAMER.mat", "OUT"],
    "ablations.sh": ["DEAP", "OUT"],
    "baselines.sh": ["DEAP", "OUT"],
    "label_efficiency.sh": ["DEAP", "DREAMER.mat", "OUT"],
    "more_datasets.sh": ["AMIGOS", "Sessions", "Preprocessed_EEG", "SEED_IV", "OUT"],
}


def _dry_run(recipe, args, **env):
    """The physiosync arguments of each command *recipe* prints with DRY_RUN=1."""
    proc = subprocess.run(["bash", str(ROOT / "pipelines" / recipe), *args, "--config", "tiny"],
                          capture_output=True, text=True, check=True,
                          env={**os.environ, "DRY_RUN": "1", "PYTHON": sys.executable, **env})
    return [_physiosync_args(shlex.split(line)) for line in proc.stdout.splitlines()
            if line.strip()]


def _physiosync_args(cmd):
    """*cmd* without its program: ``physiosync``, a path to it, or ``PYTHON -m physiosync``."""
    n = 3 if cmd[1:3] == ["-m", "physiosync"] else 1
    assert n == 3 or Path(cmd[0]).name == "physiosync", cmd
    return cmd[n:]


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_recipe_commands_parse_and_their_configs_validate(recipe):
    targets = {} if recipe == "more_datasets.sh" else {"TARGETS": "valence arousal"}
    commands = _dry_run(recipe, RECIPES[recipe], **targets)
    assert commands
    for cmd in commands:
        args = build_parser().parse_args(cmd)
        cfg = load_config(args.config, args.set, data={"name": args.dataset,
                                                       "target": args.target})
        assert cfg.data.target in (("emotion",) if cfg.data.name.startswith("seed")
                                   else ("valence", "arousal"))
        if recipe == "reproduce_authors.sh":
            assert cfg.protocol.name == "legacy-segment"
        else:
            assert cfg.protocol.name != "legacy-segment"
    if recipe == "honest.sh":  # 2 datasets x 3 settings x 2 targets
        protocols = [load_config(build_parser().parse_args(c).config).protocol.name
                     for c in commands]
        assert len(commands) == 12 and protocols.count("subject-stimulus-kfold") == 4
    if recipe == "label_efficiency.sh":  # 2 datasets x 2 protocols x 2 targets
        cfgs = [load_config(build_parser().parse_args(c).config) for c in commands]
        assert len(cfgs) == 8
        assert {c.protocol.name for c in cfgs} == {"within-trial-kfold",
                                                    "subject-stimulus-kfold"}
        for c in cfgs:
            assert c.protocol.labelled_trials[-1] == "all"
            assert [p["name"] for p in c.pipelines][:2] == ["physiosync", "no-pretrain"]
            assert c.finetune.select == "last"
    if recipe == "more_datasets.sh":  # 2 rated datasets x 2 settings x 2 targets + SEED's
        # 4 settings and SEED-IV's 3 on the emotion target
        runs = [(c.data.name, c.protocol.name, c.data.target) for c in
                (load_config(build_parser().parse_args(c).config) for c in commands)]
        assert len(runs) == 8 + 4 + 3 and len(set(runs)) == len(runs) - 4  # targets differ
        assert ("seed", "cross-session", "emotion") in runs
        assert ("seed", "session-split", "emotion") in runs
        assert ("seed-iv", "cross-session", "emotion") in runs
        assert {n for n, _, _ in runs} == {"amigos", "mahnob", "seed", "seed-iv"}
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
        args = build_parser().parse_args(cmd)
        cfg = load_config(args.config, args.set, data={"name": args.dataset})
        assert args.dataset == cfg.data.name == dataset
        assert args.config[0] == f"{dataset}_baselines"  # a preset: no checkout needed
        assert args.out == f"OUT/{dataset}_baselines_valence"
        assert cfg.protocol.name == "within-trial-kfold" and cfg.protocol.permutations > 0
        assert [p["name"] for p in cfg.pipelines][0] == "physiosync"
    proc = subprocess.run(["bash", str(ROOT / "pipelines" / "baselines.sh"), "D", "OUT"],
                          capture_output=True, text=True,
                          env={**os.environ, "DRY_RUN": "1", "DATASET": "seed-v"})
    assert proc.returncode == 2 and "DATASET must be one of deap, dreamer" in proc.stderr


@pytest.mark.parametrize("dataset, preset, targets", [
    ("amigos", "amigos_baselines", ["valence", "arousal"]),
    ("mahnob", "mahnob_baselines", ["valence", "arousal"]),
    ("seed", "seed_baselines", ["emotion"]), ("seed-iv", "seed_iv_baselines", ["emotion"])])
def test_baselines_recipe_runs_the_suite_of_every_dataset_on_its_own_targets(dataset, preset,
                                                                              targets):
    env = {k: v for k, v in os.environ.items() if k != "TARGETS"}
    commands = _dry_run("baselines.sh", ["DATA", "OUT"], DATASET=dataset, **env)
    assert [c[c.index("--target") + 1] for c in commands] == targets
    for cmd in commands:
        args = build_parser().parse_args(cmd)
        cfg = load_config(args.config, args.set, data={"name": args.dataset,
                                                       "target": args.target})
        assert args.config[0] == preset and cfg.data.name == dataset
        names = [p["name"] for p in cfg.pipelines]
        assert names[0] == "physiosync" and {"bandpower", "de-lr", "de-svm", "eegnet",
                                             "shallow-fbcsp", "simclr", "no-pretrain",
                                             "stimulus-prior", "riemann-lr"} <= set(names)
        assert cfg.protocol.name == "within-trial-kfold" and cfg.protocol.permutations > 0


def test_recipe_without_arguments_prints_usage():
    proc = subprocess.run(["bash", str(ROOT / "pipelines" / "honest.sh")], capture_output=True,
                          text=True)
    assert proc.returncode == 2 and "usage:" in proc.stderr


def test_recipes_find_the_cli_of_their_environment_without_an_activated_one(tmp_path):
    """Right after the Quick start (.venv not activated, no physiosync on PATH) a recipe runs
    the checkout's .venv/bin/physiosync, else ``$PYTHON -m physiosync``; with neither it
    exits 127 with one line saying what to set."""
    path = os.pathsep.join(p for p in ("/usr/bin", "/bin") if os.path.isdir(p))
    if shutil.which("physiosync", path=path):
        pytest.skip("physiosync is installed system-wide")
    checkout = tmp_path / "checkout"
    shutil.copytree(ROOT / "pipelines", checkout / "pipelines")
    recipe = checkout / "pipelines" / "baselines.sh"
    ran = "physiosync cv: error: argument --folds: invalid int value: 'x'"  # fast, no data

    def run_recipe(**env):
        return subprocess.run(["bash", str(recipe), "DEAP", "OUT", "--folds", "x"],
                              capture_output=True, text=True, timeout=120,
                              env={**os.environ, "PATH": path, "TARGETS": "valence", **env})

    script = Path(sys.executable).parent / "physiosync"
    if script.is_file():  # the Quick start's layout: .venv/bin/physiosync in the checkout
        (checkout / ".venv" / "bin").mkdir(parents=True)
        (checkout / ".venv" / "bin" / "physiosync").symlink_to(script)
        proc = run_recipe(PYTHON=str(tmp_path / "no_python"))
        assert f"+ {checkout}/.venv/bin/physiosync cv --config deap_baselines" in proc.stderr
        assert proc.returncode == 2 and ran in proc.stderr
        shutil.rmtree(checkout / ".venv")
    proc = run_recipe(PYTHON=sys.executable)  # the Python of an environment, not activated
    assert f"+ {sys.executable} -m physiosync cv --config deap_baselines" in proc.stderr
    assert proc.returncode == 2 and ran in proc.stderr
    for env, says in (({"PYTHON": str(tmp_path / "no_python")}, "physiosync not found"),
                      ({"PHYSIOSYNC": str(tmp_path / "nope")}, "is not a command")):
        proc = run_recipe(**env)
        assert proc.returncode == 127 and proc.stdout == "", proc.stderr
        assert proc.stderr.count("\n") == 1 and says in proc.stderr
        assert "PHYSIOSYNC=" in proc.stderr and "command not found" not in proc.stderr


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
