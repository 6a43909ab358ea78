"""Every shipped configuration states its cost in its header (benchmarks/config_costs.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from _benchmarks import load_benchmark
from physiosync.config import load_config

ROOT = Path(__file__).resolve().parents[2]
CONFIG_FILES = sorted((ROOT / "physiosync" / "configs").glob("*.yaml"))
assert CONFIG_FILES, "the shipped presets moved: update CONFIG_FILES"


@pytest.fixture(scope="module")
def costs():
    return load_benchmark("config_costs")


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_every_shipped_config_states_its_cpu_and_gpu_cost(costs, path):
    lines = path.read_text().splitlines()
    head = [line for line in lines[:len(costs.HEADER_PATTERNS)]]
    for line, pattern in zip(head, costs.HEADER_PATTERNS):
        assert pattern.match(line), f"{path.name}: {line!r} does not match {pattern.pattern}"
    # the per-pipeline line names the pipelines the configuration runs, in order
    files = [str(ROOT / "physiosync" / "configs" / costs.LAYERED[path.name]), str(path)] \
        if path.name in costs.LAYERED else [str(path)]
    names = [p["name"] for p in load_config(files).pipelines]
    named = [part.split(" ", 1)[0] for part in
             head[1].removeprefix(f"{costs.MARK} per pipeline: ").split("; ")]
    assert named == names, path.name


def test_write_header_replaces_only_the_cost_lines(costs, tmp_path):
    path = tmp_path / "x.yaml"
    path.write_text("# what this is\ndata: {name: deap}\n")
    costs.write_header(path, [f"{costs.MARK} on a 2-core CPU: old", f"{costs.MARK} per x"])
    costs.write_header(path, [f"{costs.MARK} on a 2-core CPU: new"])
    assert path.read_text() == f"{costs.MARK} on a 2-core CPU: new\n# what this is\n" \
                               "data: {name: deap}\n"


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_the_size_in_every_shipped_header_is_what_the_script_writes_now(costs, path):
    # the sizes moved to benchmarks/_full_size.py; the headers they give are unchanged
    files = [str(ROOT / "physiosync" / "configs" / costs.LAYERED[path.name]), str(path)] \
        if path.name in costs.LAYERED else [str(path)]
    data = "demo" if path.name == "demo.yaml" else load_config(files).data.name
    over = f", layered over {costs.LAYERED[path.name]}" if path.name in costs.LAYERED else ""
    first = path.read_text().splitlines()[0]
    assert f" on {costs._size_text(data)}{over}; benchmarks/config_costs.py, " in first


def test_a_config_of_a_new_dataset_runs_on_its_synthetic_copy(costs, tmp_path, monkeypatch):
    from physiosync.datasets import open_dataset

    entry = costs.FULL_SIZE["seed"].shrunk(subjects=2, trials=2, seconds=4.0)
    monkeypatch.setitem(costs.FULL_SIZE, "seed", entry)  # a quick copy, not the full size
    path = tmp_path / "seed_within.yaml"
    path.write_text("data: {name: seed}\n")
    cfg, data = costs._config(path, tmp_path / "scratch")
    assert data == "seed" and open_dataset("seed", cfg.data.root).subjects == [1, 2]
    assert costs._size_text("seed") == \
        "synthetic SEED, 2 subjects x 3 sessions x 2 clips of 4 s on average"
    assert costs.FULL_SIZE["seed"].full is False and costs._size_text("dreamer").startswith(
        "synthetic DREAMER of the real size, 23 subjects")
