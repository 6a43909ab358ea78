"""The prepared benchmark scripts run (their figures are measured alone, not here)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from _benchmarks import load_benchmark
ROOT = Path(__file__).resolve().parents[2]


def test_study_benchmark_runs_a_whole_study_and_reports_it(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "study", "--config", "tiny",
         "--subjects", "3", "--trials", "6", "--seconds", "10", "--set",
         "protocol.one_class=constant", "--scratch", str(tmp_path), "--executor", "processes",
         "--n-jobs", "2"], capture_output=True, text=True, timeout=280)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["executor"] == "processes" and result["folds"] == 5
    assert set(result["headline"]) == {"physiosync", "bandpower"}
    assert result["wall_s"] > 0


def test_gpu_check_script_is_valid_shell():
    script = ROOT / "benchmarks" / "gpu_check.sh"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_timm_stand_in_of_the_authors_harness(monkeypatch):
    module = load_benchmark("authors_step")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    for name in ("timm", "timm.models", "timm.models.layers"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    module._timm_stand_in()
    from timm.models.layers import DropPath, trunc_normal_

    x = torch.ones(1000, 4)
    assert torch.equal(DropPath(0.0)(x), x) and torch.equal(DropPath(0.3).eval()(x), x)
    dropped = DropPath(0.25).train()(x)
    kept = (dropped[:, 0] > 0).float().mean()
    assert 0.65 < kept < 0.85 and torch.allclose(dropped[dropped > 0], torch.tensor(4 / 3))
    w = trunc_normal_(torch.empty(10_000), std=0.02)
    assert w.abs().max() <= 2.0 and abs(float(w.std()) - 0.02) < 0.002
    for name in ("timm", "timm.models", "timm.models.layers"):
        monkeypatch.delitem(sys.modules, name, raising=False)


def test_label_efficiency_benchmark_runs_resumes_and_tabulates(tmp_path):
    script = [sys.executable, str(ROOT / "benchmarks" / "label_efficiency.py")]
    args = ["--quick", "--data-seeds", "1", "--train-seeds", "1",
            "--conditions", "dynamics", "--protocols", "within-trial-kfold",
            "--pipelines", "physiosync,bandpower", "--subjects", "3", "--trials", "8",
            "--seconds", "10", "--folds", "2", "--budgets", "2,all", "--threads", "1",
            "--scratch", str(tmp_path)]
    out = subprocess.run(script + args + ["--out", str(tmp_path / "le.md")],
                         capture_output=True, text=True, timeout=280)
    assert out.returncode == 0, out.stderr[-2000:]
    first = (tmp_path / "le.json").read_text()
    # A rerun keeps the finished study (nothing is retrained) ...
    again = subprocess.run(script + args + ["--out", str(tmp_path / "le.md")],
                           capture_output=True, text=True, timeout=280)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (tmp_path / "le.json").read_text() == first and '"seconds"' not in again.stdout
    # ... and --tabulate rebuilds the same table from the JSON alone.
    tab = subprocess.run(script + args + ["--out", str(tmp_path / "t.md"), "--tabulate",
                                          str(tmp_path / "le.json")],
                         capture_output=True, text=True, timeout=60)
    assert tab.returncode == 0, tab.stderr[-2000:]
    assert (tmp_path / "t.md").read_text() == (tmp_path / "le.md").read_text()
    (run,) = json.loads((tmp_path / "le.json").read_text())
    assert run["budgets"] == ["2", "all"] and run["condition"] == "dynamics"
    assert set(run["pipelines"]) == {"physiosync", "bandpower"}
    assert run["pipelines"]["bandpower"]["auc_difference"] is not None
    table = (tmp_path / "le.md").read_text()
    assert "| dynamics | bandpower |" in table and "### within-trial-kfold" in table


def _gone(pid: int) -> bool:
    """Whether process *pid* has ended (a zombie left to a parent that does not reap it
    counts as ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def test_threads_benchmark_stops_its_hogs_however_it_ends():
    bench = load_benchmark("threads")
    with pytest.raises(KeyboardInterrupt):
        with bench.hogs(2) as procs:
            assert len(procs) == 2 and all(p.poll() is None for p in procs)
            raise KeyboardInterrupt  # Ctrl-C (SIGTERM is turned into the same)
    assert all(p.poll() is not None for p in procs)
    # a hog whose parent was killed (SIGKILL: no clean-up ran) ends by itself
    code = (f"import os, subprocess, sys, time\nproc = subprocess.Popen([sys.executable, "
            f"'-c', {bench.HOG!r}, str(os.getpid())])\nprint(proc.pid, flush=True)\n"
            "time.sleep(120)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        hog = int(parent.stdout.readline())
        assert not _gone(hog)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 30
    while not _gone(hog) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _gone(hog)


def test_threads_benchmark_options_and_table(capsys):
    bench = load_benchmark("threads")
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--repeats", "0"])
    assert exit_.value.code == 2
    assert "--repeats must be at least 1, got 0" in capsys.readouterr().err
    runs = [{"busy": busy, "threads": t, "wall_s": wall, "cpu_s": 2 * wall, "noted": busy,
             "headline": {"physiosync": 0.9 + (t == 1) * 0.001},
             "folds_sha256": str(t)} for busy in (False, True)
            for t, wall in zip(bench.SETTINGS, ((10.0, 20.0), (8.0, 9.0), (10.0, 20.0)))
            for wall in [wall[busy]]]
    table, checks = bench.summarise(runs, 2, 1)
    assert "| default (2) | quiet | 10.0 | 20.0 | 1.00 | no |" in table
    assert "| `--threads 1` | 1 busy-loop process | 9.0 | 18.0 | 0.90 | yes |" in table
    assert checks == {"same_threads_identical_fold_files": True,
                      "largest_headline_difference_between_settings": 0.001}
    runs[-1]["folds_sha256"] = "other"
    assert not bench.summarise(runs, 2, 1)[1]["same_threads_identical_fold_files"]


@pytest.mark.slow
def test_threads_benchmark_runs_end_to_end(tmp_path):
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "threads.py"), "--config", "tiny",
         "--subjects", "3", "--trials", "6", "--seconds", "10", "--set",
         "protocol.one_class=constant", "--set", "protocol.n_splits=2", "--set",
         "pipelines=[bandpower]", "--scratch", str(tmp_path), "--out", str(tmp_path / "t.md")],
        capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["runs"]) == 6 and result["same_threads_identical_fold_files"]
    assert "÷ quiet default" in (tmp_path / "t.md").read_text()


def test_estimator_benchmark_measures_the_readme_configurations():
    import ast

    module = load_benchmark("estimator")
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    calls = {}
    for block in readme.split("```python\n")[1:]:
        for node in ast.walk(ast.parse(block.split("```")[0])):
            if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                    and getattr(node.value.func, "id", None) == "PhysioSyncClassifier"):
                calls[node.targets[0].id] = {k.arg: ast.literal_eval(k.value)
                                             for k in node.value.keywords}
    for name, settings in module.CONFIGS.items():
        shown = {k: v for k, v in calls[name].items() if k not in ("n_eeg_channels", "verbose")}
        assert shown == settings, f"README's {name} is not the one benchmarks/estimator.py times"


def test_full_size_baselines_keep_the_presets_schedule_over_the_demos_model(tmp_path,
                                                                           monkeypatch,
                                                                           capsys):
    # benchmarks/baselines.py --full-size: the demo's model sizes, the preset's fine-tuning
    # epochs and batch size, --deep-epochs for braindecode; one seed, never --quick
    from physiosync.config import PRESETS

    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2] / "benchmarks"))
    bench = load_benchmark("baselines")
    args = argparse.Namespace(
        dataset="amigos", threads=1, folds=5, quick=False, pipelines=None, set=None,
        full_size=True, deep_epochs=3)
    cfg = bench._config(args, tmp_path / "data", tmp_path / "cache", 0)
    schedule, demo = PRESETS["amigos_baselines"]["finetune"], PRESETS["demo"]["finetune"]
    assert cfg.finetune.epochs == schedule["epochs"] != demo["epochs"]
    assert cfg.finetune.batch_size == schedule["batch_size"]
    assert tuple(cfg.finetune.hidden) == tuple(demo["hidden"])
    assert cfg.pretrain_long.steps == PRESETS["demo"]["pretrain"]["steps"]
    assert cfg.baselines["deep"]["epochs"] == 3
    assert cfg.protocol.name == "within-trial-kfold" and cfg.protocol.n_splits == 5
    for bad in (["--seeds", "2"], ["--seeds", "1", "--quick"]):
        with pytest.raises(SystemExit):
            bench.main(["--out", str(tmp_path / "t.md"), "--dataset", "amigos",
                        "--full-size", *bad])
        assert "--full-size runs one seed" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench.main(["--out", str(tmp_path / "t.md"), "--deep-epochs", "2"])
    assert "--deep-epochs goes with --full-size" in capsys.readouterr().err
