"""The documentation names only modules, functions and classes that exist.

Every dotted ``physiosync.x.y`` name in ``README.md`` and ``docs/*.md`` must import or
resolve (a module, or an attribute of one), so that a module moved or a function renamed
cannot leave the docs pointing at nothing. Shell commands in code blocks are skipped:
``physiosync cv ...`` is the command, not a module.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])

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
