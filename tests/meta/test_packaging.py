"""Project metadata: the conda environment lists what pyproject.toml needs; what a wheel and an
editable install carry."""

import os
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
# PyPI name -> conda-forge name, where they differ.
CONDA_NAMES = {"torch": "pytorch", "mne": "mne-base", "matplotlib": "matplotlib-base"}


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[ ]", req, maxsplit=1)[0].lower()


def _expand(reqs: list, extras: dict) -> list:
    """*reqs* with ``physiosync[extra]`` replaced by that extra's requirements."""
    out = []
    for req in reqs:
        if _name(req) == "physiosync":
            for extra in re.search(r"\[(.*)\]", req).group(1).split(","):
                out += _expand(extras[extra.strip()], extras)
        else:
            out.append(req)
    return out


def test_dev_installs_the_deep_extra_pinned_in_environment_yml():
    """CI (``.[dev]``) tests the braindecode baselines; environment.yml pins the same release."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert extras["deep"] == [r for r in _expand(extras["dev"], extras) if r in extras["deep"]]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    assert set(extras["deep"]) <= set(pip)


def test_environment_yml_covers_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {_name(d) for d in env["dependencies"] if isinstance(d, str)}
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    extras = project["optional-dependencies"]
    needed = project["dependencies"] + _expand(extras["dev"], extras)
    from_pip = {_name(p) for p in pip if not p.startswith("-")}
    missing = [r for r in needed
               if CONDA_NAMES.get(_name(r), _name(r)) not in conda and _name(r) not in from_pip]
    assert missing == []
    assert any(p.startswith("-e .") for p in pip)
    assert "python=3.11" in env["dependencies"]


def test_torch_is_a_range_for_the_library_and_one_cpu_release_for_installs():
    """The package declares a range; README, environment.yml and CI install 2.13.0 exactly."""
    from packaging.requirements import Requirement
    from packaging.version import Version

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    torch = [Requirement(r) for r in project["dependencies"] if _name(r) == "torch"]
    assert len(torch) == 1
    spec = torch[0].specifier
    assert not any(s.operator in ("==", "===") for s in spec)
    assert Version("2.13.0") in spec and Version("2.9.1") not in spec
    assert Version("3.0") not in spec
    env = (ROOT / "environment.yml").read_text()
    assert "pytorch=2.13.0=cpu" in env
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install torch==2.13.0 " in readme and "pip install torch==2.13.0 " in ci
    for banned in ("torchvision", "timm", "torchaudio", "torcheeg"):
        assert banned not in str(project)


def test_python_floor_matches_the_tests():
    """The tests read TOML with tomllib (3.11); environment.yml installs that Python."""
    from packaging.specifiers import SpecifierSet

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert SpecifierSet(project["requires-python"]) == SpecifierSet(">=3.11")


def test_declared_dependencies_are_imported():
    """Every runtime dependency is imported somewhere in the package."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    modules = {"pyyaml": "yaml", "scikit-learn": "sklearn"}
    source = "\n".join(p.read_text(encoding="utf-8")
                       for p in (ROOT / "physiosync").rglob("*.py"))
    unused = []
    for req in project["dependencies"]:
        mod = modules.get(_name(req), _name(req))
        if not re.search(rf"^\s*(import|from) {mod}\b", source, re.MULTILINE):
            unused.append(req)
    assert unused == []


def test_pytest_has_a_per_test_timeout():
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert 0 < int(ini["timeout"]) <= 600
    assert any(m.startswith("integration:") for m in ini["markers"])


def test_readme_quick_start_is_what_ci_runs():
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    commands = [line for line in block.strip().splitlines() if line.strip()]
    assert len(commands) == 2 and "physiosync demo" in commands[0]
    ci = (ROOT / ".ci" / "run").read_text()
    for command in commands:
        assert command in ci


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A clone folder named ``physiosync`` (the package and its metadata) and the wheel and
    editable wheel that setuptools builds from it, through the PEP 517 hooks pip calls."""
    setuptools = pytest.importorskip("setuptools")
    from packaging.version import Version

    if Version(setuptools.__version__) < Version("64"):
        pytest.skip(f"setuptools {setuptools.__version__} has no PEP 660 editable wheels")
    work = tmp_path_factory.mktemp("clone")
    clone = work / "physiosync"
    clone.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, clone / name)
    shutil.copytree(ROOT / "physiosync", clone / "physiosync",
                    ignore=shutil.ignore_patterns("__pycache__"))
    code = ("import sys; from setuptools import build_meta as b; d = sys.argv[1]; "
            "w, e = b.build_wheel(d), b.build_editable(d); print('BUILT', w, e)")
    proc = subprocess.run([sys.executable, "-c", code, str(work / "dist")], cwd=clone,
                          capture_output=True, text=True, timeout=300,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [x for x in proc.stdout.splitlines() if x.startswith("BUILT ")][-1]
    wheel, editable = (work / "dist" / name for name in line.split()[1:])
    return work, clone, wheel, editable


def test_the_wheel_carries_every_preset(built):
    """``--config deap_within`` works from an installed wheel: the YAML files are package
    data, and the checkout-only README of the folder is not."""
    from physiosync.config import PRESETS

    _, _, wheel, _ = built
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
    assert {f"physiosync/configs/{name}.yaml" for name in PRESETS} <= names
    assert not any(n.startswith("physiosync/configs/") and not n.endswith(".yaml")
                   for n in names)


def test_a_script_beside_the_clone_imports_the_editable_install(built):
    """A folder named ``physiosync`` (the clone) in the working folder is a namespace
    portion; the editable install must still win, which it does when it puts the checkout on
    sys.path (setuptools' import hook runs after sys.path: ``ImportError ... (unknown
    location)``). The editable wheel is unpacked as pip installs it, its .pth processed as at
    start-up, in an interpreter whose own editable physiosync is not loaded (-S)."""
    import sysconfig

    work, clone, _, editable = built
    site_dir = work / "site-packages"
    with zipfile.ZipFile(editable) as whl:
        whl.extractall(site_dir)
    deps = [sysconfig.get_paths()[k] for k in ("purelib", "platlib")]
    code = (f"import site, sys; site.addsitedir({str(site_dir)!r}); sys.path += {deps!r}; "
            "from physiosync import load_config; import physiosync; "
            "print(physiosync.__file__)")
    proc = subprocess.run([sys.executable, "-S", "-c", code], cwd=work, capture_output=True,
                          text=True, timeout=120,
                          env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert Path(proc.stdout.strip()) == clone / "physiosync" / "__init__.py"
