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
