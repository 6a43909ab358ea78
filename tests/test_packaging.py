"""Project metadata: the conda environment lists what pyproject.toml needs."""

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# PyPI name -> conda-forge name, where they differ.
CONDA_NAMES = {"torch": "pytorch", "mne": "mne-base", "matplotlib": "matplotlib-base"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ]", req, maxsplit=1)[0].lower()


def test_environment_yml_covers_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    needed = project["dependencies"] + project["optional-dependencies"]["dev"]
    missing = [r for r in needed if CONDA_NAMES.get(_name(r), _name(r)) not in conda]
    assert missing == []
    assert any(p.startswith("-e .") for p in pip)
    assert "python=3.11" in env["dependencies"]


def test_torch_is_pinned_to_the_cpu_release_everywhere():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert "torch==2.13.0" in project["dependencies"]
    env = (ROOT / "environment.yml").read_text()
    assert "pytorch=2.13.0=cpu" in env
    for banned in ("torchvision", "timm", "torchaudio", "torcheeg"):
        assert banned not in str(project)


def test_readme_quick_start_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.strip().splitlines() if line.strip()]
    assert len(commands) == 2 and "physiosync demo" in commands[0]
    ci = (ROOT / ".ci" / "run").read_text()
    for command in commands:
        assert command in ci
