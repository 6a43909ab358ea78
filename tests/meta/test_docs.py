"""The documentation names only modules, functions and classes that exist.

Every dotted ``physiosync.x.y`` name in ``README.md`` and ``docs/*.md`` must import or
resolve (a module, or an attribute of one), so that a module moved or a function renamed
cannot leave the docs pointing at nothing. Shell commands in code blocks are skipped:
``physiosync cv ...`` is the command, not a module.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = sorted([ROOT / "README.md", ROOT / "CONTRIBUTING.md", *(ROOT / "docs").glob("*.md")])

# ``physiosync.a.b``, optionally ending in a wildcard (``physiosync.synthetic.make_*``); not
# part of a path or of a longer name (``.physiosync.lock``, ``physiosync/params.py``).
_DOTTED = re.compile(r"(?<![\w./-])(physiosync(?:\.[A-Za-z_]\w*)+)(\*?)")
# Fenced blocks of shell commands.
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
_SHELL = {"bash", "sh", "shell", "console", "zsh"}
# A trailing file extension makes the match a file name (``models/physiosync.py``).
_FILE_SUFFIXES = {"py", "pt", "md", "json", "yaml", "yml", "csv", "html", "lock"}


def _without_shell_blocks(text: str) -> str:
    """*text* with the lines of shell blocks blanked (line numbers stay right)."""
    return _FENCE.sub(lambda m: ("\n" * m.group(0).count("\n")
                                 if m.group(1).lower() in _SHELL else m.group(0)), text)


def _dotted_names(path: Path) -> list[tuple[int, str, bool]]:
    """``(line, name, wildcard)`` of every dotted physiosync name in *path*."""
    text = _without_shell_blocks(path.read_text(encoding="utf-8"))
    out = []
    for match in _DOTTED.finditer(text):
        name, star = match.group(1), bool(match.group(2))
        if name.rsplit(".", 1)[-1] in _FILE_SUFFIXES:
            continue
        out.append((text.count("\n", 0, match.start()) + 1, name, star))
    return out


def _resolve(name: str, wildcard: bool = False):
    """Import the longest module prefix of *name*, then look the rest up as attributes."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        rest = parts[cut:]
        if wildcard:
            *rest, prefix = rest or [""]
        for attr in rest:
            obj = getattr(obj, attr)
        if wildcard and not any(a.startswith(prefix) for a in getattr(obj, "__all__", dir(obj))):
            raise AttributeError(f"nothing in {obj.__name__} starts with {prefix!r}")
        return obj
    raise ModuleNotFoundError(name)


def test_the_extraction_sees_names_and_skips_commands_and_files(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("`physiosync.evaluation.protocols.make_folds(units)` and\n"
                    "`physiosync.synthetic.make_*`, `.physiosync.lock`, models/physiosync.py\n"
                    "```bash\nphysiosync cv --set physiosync.nothing=1\n```\n"
                    "```python\nimport physiosync.config\n```\n")
    assert _dotted_names(page) == [(1, "physiosync.evaluation.protocols.make_folds", False),
                                   (2, "physiosync.synthetic.make_", True),
                                   (7, "physiosync.config", False)]
    assert callable(_resolve("physiosync.evaluation.protocols.make_folds"))
    _resolve("physiosync.synthetic.make_", wildcard=True)
    with pytest.raises(AttributeError):
        _resolve("physiosync.evaluation.protocols.no_such_function")


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_dotted_name_in_the_docs_resolves(path):
    missing = []
    for line, name, wildcard in _dotted_names(path):
        try:
            _resolve(name, wildcard)
        except (ImportError, AttributeError) as err:
            missing.append(f"{path.name}:{line}: {name}{'*' if wildcard else ''} ({err})")
    assert not missing, "the docs name what does not exist:\n" + "\n".join(missing)


_ROW = re.compile(r"^\|\s*(?P<names>[^|]*?)\s*\|\s*`(?P<module>physiosync(?:\.\w+)*)`\s*\|", re.M)


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_names_in_module_tables_live_in_their_module(path):
    # rows like "| `SlotData`, `SynchronySampler` | `physiosync.training.sampling` | ... |"
    missing = []
    for row in _ROW.finditer(path.read_text(encoding="utf-8")):
        module = importlib.import_module(row["module"])
        for code in re.findall(r"`([^`]+)`", row["names"]):
            name = re.match(r"[A-Za-z_]\w*", code)
            if name and not hasattr(module, name.group(0)):
                missing.append(f"{path.name}: {name.group(0)} is not in {row['module']}")
    assert not missing, "\n".join(missing)


# ---- every code block of the README runs ---------------------------------------------
#
# The ```python blocks run in order, in one namespace, in a temporary working folder
# (with the checkout's pipelines/ linked into it, as the README's commands are run from
# the checkout), with HOME a temporary folder holding a small synthetic DEAP at
# ~/data/DEAP/data_preprocessed_python, its original recordings at
# ~/data/DEAP/data_original (ratings in ~/data/DEAP/metadata_csv/) and DREAMER at
# ~/data/DREAMER.mat: the paths the README names. In the ```bash/```sh blocks every ``physiosync`` command
# (also as ``.venv/bin/physiosync``, ``python -m physiosync``, ``torchrun ... -m
# physiosync``) is parsed by the CLI's own parser; those that cost nothing (``info``,
# ``configs``, ``--dry-run``) are run; a recipe (``pipelines/x.sh``) must exist and be
# executable; other programs (pip, pytest, torchrun itself) are not checked.
#
# A marker on the line before a block, visible in the README's source, changes this:
#   <!-- readme-test: tiny -->           the block trains: it runs with the tiny sizes
#                                        below (TINY_CLASSIFIER, TINY_CONFIG), nothing else
#   <!-- readme-test: skip: <reason> --> the block is not run (the reason is required)
# Any other marker fails the test, and so does an unmarked block that does not run.

_MARKER = re.compile(r"^<!--\s*readme-test:\s*(.*?)\s*-->\s*$")
_PYTHON = {"python", "py", "pycon"}
#: What a ``tiny`` block's PhysioSyncClassifier gets on top of the README's arguments.
TINY_CLASSIFIER = dict(embed_dim=10, depth=1, n_heads=2, n_prompts=1, projector_dims=(16, 16),
                       batch_slots=4, pretrain_steps=2, epochs=1)
#: What a ``tiny`` block's load_config gets after the README's configuration (before its
#: overrides): the ``tiny`` preset's sizes and two folds.
TINY_CONFIG = ["tiny", {"protocol": {"n_splits": 2}}]
#: ``physiosync`` subcommands that the test runs, not only parses.
_CHEAP = {"info", "configs"}


def readme_blocks(text: str) -> list[tuple[int, str, str, str | None]]:
    """``(line, language, code, marker)`` of every fenced block with a language."""
    blocks = []
    for match in _FENCE.finditer(text):
        lang = match.group(1).lower()
        line = text.count("\n", 0, match.start()) + 1
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1].strip()
        marker = _MARKER.match(before)
        marker = marker.group(1) if marker else None
        if marker is not None and marker != "tiny" and not re.fullmatch(r"skip:\s*\S.*",
                                                                       marker):
            raise ValueError(f"README.md:{line}: unknown marker 'readme-test: {marker}'; "
                             "expected 'tiny' or 'skip: <reason>'.")
        if lang:
            blocks.append((line, lang, match.group(2), marker))
    return blocks


def shell_commands(code: str) -> list[list[str]]:
    """The commands of a shell block, split into words: continuation lines joined,
    comments dropped, a new line, ``&&``, ``;`` or ``|`` ending a command."""
    import shlex

    commands = []
    for line in code.replace("\\\n", " ").splitlines():
        words = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        words.whitespace_split, words.commenters = True, "#"
        current = []
        for word in words:
            if set(word) <= set(";&|"):
                commands.append(current)
                current = []
            else:
                current.append(word)
        commands.append(current)
    return [c for c in commands if c]


def physiosync_argv(command: list[str]) -> list[str] | None:
    """The arguments a shell command gives the physiosync CLI, or None if it is another."""
    if Path(command[0]).name == "physiosync":
        return command[1:]
    if "-m" in command:
        at = command.index("-m")
        if command[at + 1:at + 2] == ["physiosync"]:
            return command[at + 2:]
    return None


def check_shell_block(code: str, run) -> list[str]:
    """Problems of the commands of one shell block; *run(argv)* runs a cheap one."""
    from physiosync.cli import build_parser

    problems = []
    for command in shell_commands(code):
        argv = physiosync_argv(command)
        shown = " ".join(command)
        if argv is None:
            if command[0].startswith("pipelines/"):
                recipe = ROOT / command[0]
                if not (recipe.is_file() and os.access(recipe, os.X_OK)):
                    problems.append(f"{shown}: {command[0]} is not an executable recipe")
            continue
        argv = [os.path.expanduser(a) for a in argv]
        try:
            build_parser().parse_args(argv)
        except SystemExit as err:
            if err.code:
                problems.append(f"{shown}: the CLI's parser refuses it (exit {err.code})")
                continue
        if argv and (argv[0] in _CHEAP or "--dry-run" in argv):
            code_ = run(argv)
            if code_:
                problems.append(f"{shown}: exit {code_}")
    return problems


@contextlib.contextmanager
def _tiny(monkeypatch):
    """PhysioSyncClassifier and load_config with TINY_CLASSIFIER and TINY_CONFIG."""
    import physiosync
    import physiosync.config
    import physiosync.estimators

    real_classifier, real_load = physiosync.PhysioSyncClassifier, physiosync.load_config

    def classifier(*args, **kwargs):
        return real_classifier(*args, **{**kwargs, **TINY_CLASSIFIER})

    def load_config(config=None, overrides=None, **sections):
        configs = list(config) if isinstance(config, (list, tuple)) else [config]
        return real_load([*configs, *TINY_CONFIG], overrides, **sections)

    with monkeypatch.context() as patch:
        for module in (physiosync, physiosync.estimators):
            patch.setattr(module, "PhysioSyncClassifier", classifier)
        for module in (physiosync, physiosync.config):
            patch.setattr(module, "load_config", load_config)
        yield


def run_python_block(code: str, line: int, marker, namespace: dict, monkeypatch) -> None:
    with _tiny(monkeypatch) if marker == "tiny" else contextlib.nullcontext():
        try:
            exec(compile(code, f"README.md:{line}", "exec"), namespace)
        except Exception as err:
            pytest.fail(f"README.md:{line}: the python block fails: "
                        f"{type(err).__name__}: {err}", pytrace=False)


@pytest.fixture
def readme_world(tmp_path, monkeypatch):
    """HOME with the synthetic data the README's paths name; a working folder with
    pipelines/; a cache of its own."""
    from physiosync.synthetic import make_deap, make_deap_bdf, make_dreamer

    home = tmp_path / "home"
    deap = home / "data" / "DEAP"
    make_deap(deap / "data_preprocessed_python", n_subjects=4, n_trials=12,
              seconds=10.0, seed=3, verbose=False)
    # the original recordings, with their ratings in metadata_csv/ as the release has them
    make_deap_bdf(deap / "data_original", n_subjects=1, n_trials=2, seconds=5.0, seed=3)
    (deap / "metadata_csv").mkdir()
    (deap / "data_original" / "participant_ratings.csv").rename(
        deap / "metadata_csv" / "participant_ratings.csv")
    make_dreamer(home / "data" / "DREAMER.mat", n_subjects=3, n_trials=3, seconds=10.0,
                 seed=3, verbose=False)
    work = tmp_path / "work"
    work.mkdir()
    (work / "pipelines").symlink_to(ROOT / "pipelines")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("PHYSIOSYNC_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(work)
    return work


def test_the_readme_blocks_are_found_with_their_markers(tmp_path, monkeypatch):
    page = ("text\n<!-- readme-test: skip: needs the licensed data -->\n```python\n1 / 0\n```\n"
            "<!-- readme-test: tiny -->\n\n```python\nx = 1\n```\n```bash\n"
            "physiosync info deap ~/d  # comment\n.venv/bin/physiosync demo && pytest -q\n"
            "torchrun --nproc-per-node 4 -m physiosync pretrain \\\n  --out p\n```\n"
            "```\nlayout, no language\n```\n")
    blocks = readme_blocks(page)
    assert [(b[0], b[1], b[3]) for b in blocks] == [
        (3, "python", "skip: needs the licensed data"), (8, "python", "tiny"), (11, "bash", None)]
    assert [physiosync_argv(c) for c in shell_commands(blocks[2][2])] == [
        ["info", "deap", "~/d"], ["demo"], None, ["pretrain", "--out", "p"]]
    with pytest.raises(ValueError, match="README.md:2: unknown marker 'readme-test: slow'"):
        readme_blocks("<!-- readme-test: slow -->\n```python\n```\n")
    with pytest.raises(ValueError, match="unknown marker 'readme-test: skip'"):
        readme_blocks("<!-- readme-test: skip -->\n```python\n```\n")  # no reason


def test_an_unmarked_block_that_fails_fails_the_test(monkeypatch):
    with pytest.raises(pytest.fail.Exception, match=r"README.md:7: .*ZeroDivisionError"):
        run_python_block("1 / 0\n", 7, None, {}, monkeypatch)
    problems = check_shell_block("physiosync cv --no-such-flag\npipelines/nothing.sh x\n",
                                 run=lambda argv: 0)
    assert len(problems) == 2 and "refuses it" in problems[0] and "nothing.sh" in problems[1]


def test_tiny_blocks_get_tiny_sizes_and_nothing_else(monkeypatch):
    namespace = {}
    run_python_block("from physiosync import PhysioSyncClassifier, load_config\n"
                     "clf = PhysioSyncClassifier(n_eeg_channels=32, epochs=6)\n"
                     "cfg = load_config('demo', ['data.target=arousal'])\n",
                     1, "tiny", namespace, monkeypatch)
    assert namespace["clf"].n_eeg_channels == 32 and namespace["clf"].epochs == 1
    assert namespace["cfg"].protocol.n_splits == 2
    assert namespace["cfg"].data.target == "arousal"  # the block's own overrides win
    import physiosync

    assert physiosync.PhysioSyncClassifier.__name__ == "PhysioSyncClassifier"  # restored


def test_every_readme_block_runs(readme_world, monkeypatch, capsys):
    from physiosync.cli import main

    namespace = {"__name__": "__readme__"}
    problems, ran = [], 0
    for line, lang, code, marker in readme_blocks((ROOT / "README.md").read_text("utf-8")):
        if marker is not None and marker.startswith("skip"):
            continue
        if lang in _PYTHON:
            run_python_block(code, line, marker, namespace, monkeypatch)
            ran += 1
        elif lang in _SHELL:
            problems += [f"README.md:{line}: {p}" for p in check_shell_block(code, main)]
            ran += 1
    assert ran, "no README block ran"
    assert not problems, "README commands that do not work:\n" + "\n".join(problems)
