"""Reading a run configuration: hardened YAML, the presets, ``--set`` overrides.

:func:`load_config` merges the defaults, YAML files or presets (``PRESETS``, the
shipped ``physiosync/configs/*.yaml``), further sections and ``key=value`` overrides
(:func:`parse_overrides`), then validates the result
(:func:`~physiosync.config.schema.validate_config`). Every YAML document read here, a file,
a preset or an override's value, is bounded in size, depth and node count
(:data:`MAX_YAML_BYTES`, :data:`MAX_YAML_DEPTH`, :data:`MAX_YAML_NODES`: an alias bomb is
refused before it is built) and may not give a key twice in one mapping.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping
from pathlib import Path

import yaml

from ..exceptions import ConfigError
from .schema import (RunConfig, _deep_merge, _defaults, _suggest, _unknown,
                     validate_config)

__all__ = ["PRESETS", "MAX_YAML_BYTES", "MAX_YAML_DEPTH", "MAX_YAML_NODES", "load_config",
           "parse_overrides"]


#: Bounds of a YAML document (a config file or a ``--set`` value): its size in bytes,
#: its nesting depth, and its node count *after* expanding aliases, so that an alias
#: bomb (``&a [*b, *b, ...]`` nested a few times) is refused before it is built.
MAX_YAML_BYTES = 1_000_000
MAX_YAML_DEPTH = 32
MAX_YAML_NODES = 100_000


def _yaml_extent(root) -> tuple:
    """Depth and expanded node count of a composed YAML node graph (aliases counted in full)."""
    memo, active = {}, set()

    def visit(node):
        key = id(node)
        if key in memo:
            return memo[key]
        if key in active:
            raise ConfigError("it refers to itself through an alias")
        active.add(key)
        depth, count = 0, 1
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        for child in children:
            d, c = visit(child)
            depth, count = max(depth, d), count + c
            if count > MAX_YAML_NODES:
                break
        active.discard(key)
        memo[key] = (depth + 1, count)
        return memo[key]

    return visit(root)


class _DuplicateKeyError(yaml.YAMLError):
    """A key given twice in one YAML mapping (``_UniqueKeyLoader``)."""

    def __init__(self, key, first: int, second: int):
        super().__init__(f"key {key!r} appears twice")
        self.key, self.first, self.second = key, first, second


class _UniqueKeyLoader(yaml.SafeLoader):
    """:class:`yaml.SafeLoader` that refuses a key given twice in one mapping.

    PyYAML keeps the last value silently (``steps: 2`` then ``steps: 500000`` runs
    500000 steps). Keys brought in by a merge (``<<: *base``) may still be overridden,
    as YAML's merge rule says.
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                line = key_node.start_mark.line + 1
                try:
                    if key in seen:
                        raise _DuplicateKeyError(key, seen[key], line)
                    seen[key] = line
                except TypeError:  # unhashable: the base class refuses it with its own error
                    continue
        return super().construct_mapping(node, deep=deep)


def _safe_yaml(text: str, where: str):
    """``yaml.safe_load`` of *text*, refusing documents beyond the bounds above and keys
    given twice in one mapping."""
    if len(text) > MAX_YAML_BYTES:
        raise ConfigError(f"{where} is {len(text)} bytes, more than the {MAX_YAML_BYTES} a "
                          "configuration may hold.")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        if node is None:
            return None
        depth, count = _yaml_extent(node)
    except yaml.YAMLError as err:
        raise ConfigError(f"{where} is not valid YAML: {' '.join(str(err).split())}") from None
    except RecursionError:
        depth, count = MAX_YAML_DEPTH + 1, 0
    except ConfigError as err:
        raise ConfigError(f"{where} is not a plain configuration: {err}.") from None
    if depth > MAX_YAML_DEPTH:
        raise ConfigError(f"{where} is nested more than {MAX_YAML_DEPTH} levels deep; a "
                          "configuration needs a few.")
    if count > MAX_YAML_NODES:
        raise ConfigError(f"{where} expands (aliases included) to more than {MAX_YAML_NODES} "
                          "values; a configuration needs a few hundred.")
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except _DuplicateKeyError as err:
        lines = (f"line {err.first}" if err.first == err.second
                 else f"lines {err.first} and {err.second}")
        raise ConfigError(f"{where}: key {err.key!r} is given twice in one mapping ({lines}); "
                          "keep one of them.") from None
    except yaml.YAMLError as err:  # e.g. a !!python/object tag, which safe_load refuses
        raise ConfigError(f"{where} is not a plain configuration: "
                          f"{' '.join(str(err).split())}") from None


def _read_yaml(path: Path) -> dict:
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as err:
        raise ConfigError(f"cannot read config file {path}: {err.strerror or err}.") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {err.start}: "
                          f"{err.reason}); save it as UTF-8.") from None
    tree = _safe_yaml(text, f"config file {path}")
    if tree is None:
        return {}
    if not isinstance(tree, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level, got "
                          f"{type(tree).__name__}.")
    return tree


def parse_overrides(items) -> dict:
    """Turn ``["pretrain.lr=1e-4", "data.target=arousal"]`` into a nested mapping.

    Values are parsed as YAML, so ``true``, ``null``, ``[eeg]`` and numbers work.
    """
    tree: dict = {}
    for item in items or ():
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value "
                              "(e.g. pretrain.lr=1e-4).")
        key, text = item.split("=", 1)
        key = key.strip()
        if not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override {item!r} has an empty key.")
        try:
            value = _safe_yaml(text, f"the value of override {key}=...") if text.strip() else None
        except ConfigError as err:
            if "is not valid YAML" not in str(err):
                raise
            raise ConfigError(f"override {item!r}: cannot parse the value; it is not valid "
                              "YAML (quote a string, close every bracket).") from None
        node = tree
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} conflicts with another override.")
        node[parts[-1]] = value
    return tree


class _Presets(Mapping):
    """The shipped configurations by name: ``physiosync/configs/<name>.yaml``.

    The files are package data (installed with physiosync, wheel or editable), found with
    :mod:`importlib.resources`, so a name works from any working folder. A mapping of
    name -> configuration (a fresh copy on every access), with the YAML text and a
    description of each.
    """

    _FOLDER = "configs"

    def __init__(self):
        self._trees = {}

    def _files(self) -> dict:
        from importlib.resources import files

        folder = files("physiosync") / self._FOLDER
        return {f.name[:-len(".yaml")]: f for f in folder.iterdir()
                if f.name.endswith(".yaml") and f.is_file()}

    def __iter__(self):
        return iter(sorted(self._files()))

    def __len__(self) -> int:
        return len(self._files())

    def __contains__(self, name) -> bool:
        return isinstance(name, str) and name in self._files()

    def __getitem__(self, name: str) -> dict:
        if name not in self._trees:
            tree = _safe_yaml(self.text(name), f"preset {name!r}")
            self._trees[name] = tree or {}
        return copy.deepcopy(self._trees[name])

    def text(self, name: str) -> str:
        """The YAML text of preset *name*, comments included (to copy and edit).

        Raises
        ------
        ConfigError
            If *name* is not a preset.
        """
        files = self._files()
        if name not in files:
            raise ConfigError(f"no preset {name!r}.{_suggest(str(name), files)} Presets: "
                              f"{', '.join(sorted(files))}.")
        return files[name].read_text(encoding="utf-8")

    def description(self, name: str) -> str:
        """The one-line summary of preset *name*: its header comment's first sentence,
        up to its first colon (after the ``# cost`` lines)."""
        lines = []
        for line in self.text(name).splitlines():
            if line.startswith("# cost"):  # the measured cost lines above the description
                continue
            if not line.startswith("#") or line.startswith("#  "):  # an example: the end
                break
            lines.append(line.lstrip("#").strip())
        text = " ".join(lines)
        return re.split(r"[.:](?:\s|$)", text, maxsplit=1)[0].strip()


#: The shipped configurations (``physiosync/configs/*.yaml``), usable by name from
#: anywhere: ``--config deap_within``, ``load_config("deap_within")``. ``physiosync
#: configs`` lists them; ``PRESETS.text(name)`` is a file's YAML, comments included.
PRESETS = _Presets()


def _config_tree(config) -> dict:
    if config is None:
        return {}
    if isinstance(config, dict):
        return copy.deepcopy(config)
    text = str(config)
    path = Path(text).expanduser()
    if isinstance(config, str) and text in PRESETS:  # a file named like a preset: ./tiny
        return copy.deepcopy(PRESETS[text])
    if path.is_file():
        return _read_yaml(path)
    raise ConfigError(f"config {text!r} is neither a file nor a preset "
                      f"({', '.join(PRESETS)}).{_preset_hint(text)} `physiosync configs` "
                      "describes the presets.")


def _preset_hint(text: str) -> str:
    """" Did you mean ...?" for a missing config file or an unknown preset name."""
    path = Path(text)
    if path.suffix in (".yaml", ".yml") and path.stem in PRESETS:  # configs/deap_within.yaml
        return (f" The shipped {path.name} is the preset {path.stem!r}: --config "
                f"{path.stem} (load_config({path.stem!r})).")
    return _suggest(text, PRESETS)


def load_config(config=None, overrides=None, **sections) -> RunConfig:
    """Load, merge and validate a run configuration.

    Parameters
    ----------
    config : str | Path | dict | list | None
        A YAML file, the name of a shipped configuration (``PRESETS``, e.g.
        ``"deap_within"``; ``physiosync configs`` lists them), a mapping, a list of
        those (merged in order, later ones win), or ``None`` for the defaults. A bare
        preset name always means the preset, even where a file of that name exists
        in the current folder; write ``./tiny`` (or pass a :class:`~pathlib.Path`)
        for the file.
    overrides : list of str | dict | None
        ``key=value`` strings (as given to ``--set``) or a nested mapping, applied last.
    **sections
        Further nested mappings merged before *overrides* (used by the CLI for
        ``--dataset``, ``--data-root`` and the like).

    Returns
    -------
    RunConfig

    Raises
    ------
    ConfigError
        With the offending key, what was expected and, for typos, a suggestion.
    """
    tree = {}
    configs = config if isinstance(config, (list, tuple)) else [config]
    for item in configs:  # later files override earlier ones
        tree = _deep_merge(tree, _config_tree(item))
    for key in sections:
        if key not in _defaults():
            raise _unknown("", key, _defaults())
    tree = _deep_merge(tree, {k: v for k, v in sections.items() if v})
    if isinstance(overrides, dict):
        tree = _deep_merge(tree, overrides)
    elif overrides:
        tree = _deep_merge(tree, parse_overrides(overrides))
    return validate_config(tree)
