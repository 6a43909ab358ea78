"""Run configuration: a schema, YAML files, ``key=value`` overrides and presets.

A run is described by one nested mapping (usually a YAML file) with the sections

``seed``, ``device``, ``threads``
    Global seed (every other seed derives from it), torch device, and the threads of each
    unit of work (null: the CPUs this process may use,
    :func:`physiosync.execution.default_threads`; how a run executes, not what it computes).
``data`` (:class:`DataConfig`)
    Dataset, its location, modalities, target, preprocessing and window lengths.
``protocol`` (:class:`ProtocolConfig`)
    Cross-validation protocol and its options.
``pretrain``
    Fields of :class:`~physiosync.training.pretrain.PretrainConfig` shared by the long and
    short encoders, ``enabled``, and optional ``long:``/``short:`` sub-mappings that
    override fields for one encoder.
``finetune``
    Fields of :class:`~physiosync.training.finetune.FinetuneConfig`.
``baselines``
    Options of the baselines, one section per parameters section that a pipeline kind
    declares (:data:`physiosync.pipeline_specs.PIPELINE_KIND_SPECS`): ``bandpower``
    (:class:`~physiosync.pipeline_specs.BandPowerParams`), ``de``
    (:class:`~physiosync.pipeline_specs.DEParams`), ``deep``
    (:class:`~physiosync.pipeline_specs.DeepParams`), ``riemann``
    (:class:`~physiosync.pipeline_specs.RiemannParams`).
``pipelines``
    The pipelines compared under the same folds: names from :data:`PIPELINES`, or
    mappings ``{name: ..., base: <pipeline>, set: {dotted.key: value}}``.

:func:`load_config` merges the defaults, a YAML file or preset and ``--set``
overrides, then validates everything *before any compute*: unknown keys are rejected
with a "did you mean" suggestion, types are checked (and YAML's ``1e-3`` strings
coerced), and ranges are checked.
"""

from __future__ import annotations

import copy
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

from ._utils.checks import ListOf, Options, did_you_mean
from .exceptions import ConfigError, PhysioSyncError
from .dataset_specs import dataset_spec
from .params import (COMPILE_MODES, PRETRAIN_HELD_OUT, PROTOCOL_TRAITS, SEED, DataConfig,
                     FinetuneConfig, PretrainConfig, ProtocolConfig)
from .pipeline_specs import PIPELINE_KIND_SPECS

__all__ = ["ConfigError", "DataConfig", "ProtocolConfig", "RunConfig", "PIPELINES",
           "PIPELINE_KIND_READS", "PRESETS", "load_config", "parse_overrides", "validate_config",
           "dump_config", "absolute_root", "ignored_keys", "used_config",
           "pipeline_config"]



class _Declared(Mapping):
    """A read-only mapping derived from
    :data:`physiosync.pipeline_specs.PIPELINE_KIND_SPECS` each time it is read, so that a
    kind declared there is known everywhere at once."""

    def __init__(self, derive, doc: str):
        self._derive = derive
        self.__doc__ = doc

    def __getitem__(self, key):
        return self._derive()[key]

    def __iter__(self):
        return iter(self._derive())

    def __len__(self) -> int:
        return len(self._derive())

    def __repr__(self) -> str:
        return repr(self._derive())


def _pipelines() -> dict:
    return {name: pipe for spec in PIPELINE_KIND_SPECS.values()
            for name, pipe in spec.pipelines.items()}


#: Pipelines that can be named in ``pipelines:``, ``name -> {"kind", "set", "doc"}``,
#: derived from the pipeline kinds' declarations
#: (:data:`physiosync.pipeline_specs.PIPELINE_KIND_SPECS`): each kind's default pipeline
#: and its variants. ``set`` holds dotted overrides applied to the run's config.
PIPELINES = _Declared(_pipelines, "Pipeline name -> {kind, set, doc}.")

#: The optional configuration sections (or keys of them) each pipeline kind reads; every
#: run reads ``seed``, ``device``, ``data`` and ``protocol``. :func:`ignored_keys` leaves
#: out of ``config.yaml`` what no pipeline of the run reads. Derived from the kinds'
#: declarations (:attr:`~physiosync.pipeline_specs.PipelineKindSpec.keys_read`); a kind
#: that declares none is taken to read every section.
PIPELINE_KIND_READS = _Declared(
    lambda: {name: spec.keys_read for name, spec in PIPELINE_KIND_SPECS.items()
             if spec.keys_read is not None},
    "Pipeline kind -> dotted keys it reads.")


def _baseline_sections() -> dict:
    """``baselines`` sections of the declared kinds, ``name -> params dataclass``."""
    out = {}
    for spec in PIPELINE_KIND_SPECS.values():
        if spec.section is None:
            continue
        if out.setdefault(spec.section, spec.params) is not spec.params:
            raise ConfigError(f"pipeline kind {spec.name!r} declares baselines."
                              f"{spec.section} with {spec.params.__name__}; another kind "
                              f"declares it with {out[spec.section].__name__}.")
    return out


#: The sections of :data:`PIPELINE_KIND_READS`, in ``config.yaml`` order, and whether one
#: that no pipeline reads is left out whole (``pretrain``, with its ``long``/``short``
#: sub-sections) rather than key by key.
_OPTIONAL_SECTIONS = {"pretrain": True, "finetune": False, "baselines": False}

_PRETRAIN_EXTRA = {"enabled": True, "long": {}, "short": {}, "batch_folds": 1, "compile": None,
                   "held_out": "val"}


def _check_execution_keys(pre: dict) -> None:
    """``pretrain.batch_folds``, ``pretrain.compile`` (how pre-training runs, not what) and
    ``pretrain.held_out`` (what its held-out diagnostic measures)."""
    k = pre["batch_folds"]
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1024:
        raise ConfigError(f"config key 'pretrain.batch_folds' must be an integer from 1 to "
                          f"1024 (folds pre-trained together), got {k!r}.")
    Options(PRETRAIN_HELD_OUT).check(pre["held_out"], "pretrain.held_out", label=_key,
                                     error=ConfigError)
    if pre["compile"] not in COMPILE_MODES:
        raise ConfigError(f"config key 'pretrain.compile' must be null or one of "
                          f"{', '.join(repr(m) for m in COMPILE_MODES[1:])}, got "
                          f"{pre['compile']!r}.")


def _defaults() -> dict:
    pre = asdict(PretrainConfig())
    return {
        "seed": 0, "device": None, "threads": None,
        "data": asdict(DataConfig()),
        "protocol": asdict(ProtocolConfig()),
        "pretrain": {**pre, **copy.deepcopy(_PRETRAIN_EXTRA)},
        "finetune": asdict(FinetuneConfig()),
        "baselines": {name: asdict(cls()) for name, cls in _baseline_sections().items()},
        "pipelines": ["physiosync", "bandpower"],
    }


@dataclass
class RunConfig:
    """A validated run configuration (build it with :func:`load_config`).

    Attributes
    ----------
    seed : int
    device : str | None
    threads : int | None
        Threads of each unit of work (``--threads``); None: the CPUs this process may use
        (:func:`physiosync.execution.default_threads`).
    data : DataConfig
    protocol : ProtocolConfig
    pretrain_enabled : bool
    pretrain_long, pretrain_short : PretrainConfig
        Resolved configurations of the long and short encoders.
    pretrain_batch_folds : int
        ``pretrain.batch_folds``: folds whose encoders pre-train together, K per step
        (:func:`~physiosync.training.fold_batch.pretrain_folds`); 1 runs them one by one.
    pretrain_compile : str | None
        ``pretrain.compile``: the :func:`torch.compile` mode of a pre-training step.
    pretrain_held_out : {"val", "unused", "none"}
        ``pretrain.held_out``: the units of the held-out diagnostic of pre-training
        (:data:`physiosync.params.PRETRAIN_HELD_OUT`).
    finetune : FinetuneConfig
    baselines : dict
    pipelines : list of dict
        ``{"name", "kind", "set"}`` per pipeline, in report order (first = primary).
    raw : dict
        The validated nested mapping, as written to ``config.yaml``.
    """

    seed: int
    device: typing.Optional[str]
    data: DataConfig
    protocol: ProtocolConfig
    pretrain_enabled: bool
    pretrain_long: PretrainConfig
    pretrain_short: PretrainConfig
    finetune: FinetuneConfig
    baselines: dict
    pipelines: list
    raw: dict
    pretrain_batch_folds: int = 1
    pretrain_compile: typing.Optional[str] = None
    pretrain_held_out: str = "val"
    threads: typing.Optional[int] = None

    def to_dict(self) -> dict:
        """The resolved nested mapping (a deep copy)."""
        return copy.deepcopy(self.raw)


# ---- validation helpers ---------------------------------------------------------------
def _suggest(key: str, options) -> str:
    return did_you_mean(key, options)


def _key(path: str) -> str:
    """The subject of a message about a configuration key (a constraint's *label*)."""
    return f"config key {path!r}"


def _unknown(path: str, key: str, options) -> ConfigError:
    where = f"{path}.{key}" if path else key
    return ConfigError(f"unknown config key {where!r}.{_suggest(key, options)} Valid keys "
                       f"{'of ' + repr(path) if path else 'at the top level'}: "
                       f"{', '.join(sorted(options))}.")


def _type_name(tp) -> str:
    return getattr(tp, "__name__", str(tp))


def _coerce(path: str, value, tp):
    """Check *value* against the annotation *tp*; returns the (coerced) value."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin is typing.Union or origin is types.UnionType:
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        for a in inner[1:] if len(inner) > 1 else ():  # e.g. bool | str: the matching type
            if isinstance(a, type) and isinstance(value, a) and not isinstance(value, bool):
                return _coerce(path, value, a)
        return _coerce(path, value, inner[0])
    if tp is typing.Any:
        return value
    if tp is bool:
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {path!r} must be true or false, got {value!r}.")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        number = value
        if isinstance(value, str):  # YAML 1.1 reads 1e9 as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if isinstance(number, float) and number.is_integer():
            return int(number)
        raise ConfigError(f"config key {path!r} must be an integer, got {value!r}.")
    if tp is float:
        number = None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = float(value)
        elif isinstance(value, str):  # YAML 1.1 reads 1e-3 as a string
            try:
                number = float(value)
            except ValueError:
                pass
        if number is None:
            raise ConfigError(f"config key {path!r} must be a number, got {value!r}.")
        if not math.isfinite(number):
            raise ConfigError(f"config key {path!r} must be a finite number, got {value!r}.")
        return number
    if tp is str:
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key {path!r} must be a string, got {value!r}.")
    if tp is object:  # any scalar: the constraint decides (e.g. an int or "all")
        return value
    if tp in (tuple, list) or origin in (tuple, list):
        if isinstance(value, (list, tuple)):
            return list(value)
        raise ConfigError(f"config key {path!r} must be a list, got {value!r}.")
    if tp is dict or origin is dict:
        if isinstance(value, dict):
            return dict(value)
        raise ConfigError(f"config key {path!r} must be a mapping, got {value!r}.")
    raise ConfigError(f"config key {path!r}: cannot check type {_type_name(tp)}.")


def _check_value(path: str, value, constraint):
    """Coerce the elements of a list-valued key, then check *value* against *constraint*."""
    if constraint is None or value is None:
        return value
    if isinstance(constraint, ListOf) and isinstance(value, list):
        constraint.check_length(value, path, label=_key, error=ConfigError)
        value = [item if isinstance(item, (list, tuple, dict))
                 else _coerce(f"{path}[{i}]", item, constraint.elem_type)
                 for i, item in enumerate(value)]
    constraint.check(value, path, label=_key, error=ConfigError)
    return value


def _check_section(path: str, given: dict, cls, extra: dict | None = None) -> dict:
    """Validate the keys, types, ranges and choices of one dataclass-backed section.

    The rules are the ``_parameter_constraints`` of *cls* (:mod:`physiosync.params`).
    """
    if not isinstance(given, dict):
        raise ConfigError(f"config section {path!r} must be a mapping, got {given!r}.")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in fields(cls)] + list(extra or {})
    out = {}
    for key, value in given.items():
        if key not in names:
            raise _unknown(path, key, names)
        if extra and key in extra:
            out[key] = value
            continue
        value = _coerce(f"{path}.{key}", value, hints[key])
        out[key] = _check_value(f"{path}.{key}", value, cls._parameter_constraints.get(key))
    return out


def _build(cls, values: dict, path: str):
    try:
        return cls(**values)
    except PhysioSyncError as err:
        raise ConfigError(f"invalid {path!r} section: {err}") from None
    except TypeError as err:
        raise ConfigError(f"invalid {path!r} section: {err}") from None


def _deep_merge(base: dict, update: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in (update or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("set",):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _set_dotted(tree: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    node = tree
    for i, part in enumerate(parts[:-1]):
        if not isinstance(node, dict):
            raise ConfigError(f"cannot set {dotted!r}: {'.'.join(parts[:i])!r} is not a section.")
        if part not in node:
            if part in ("long", "short") and i == 1 and parts[0] == "pretrain":
                node[part] = {}
            else:
                raise _unknown(".".join(parts[:i]), part, [k for k in node])
        node = node[part]
    if not isinstance(node, dict):
        raise ConfigError(f"cannot set {dotted!r}: {'.'.join(parts[:-1])!r} is not a section.")
    node[parts[-1]] = value


def _resolve_pipelines(entries) -> list:
    if isinstance(entries, str):
        entries = [entries]
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"'pipelines' must be a non-empty list of names or mappings, got "
                          f"{entries!r}.")
    out, seen = [], set()
    for entry in entries:
        if isinstance(entry, str):
            if entry not in PIPELINES:
                raise ConfigError(f"unknown pipeline {entry!r}.{_suggest(entry, PIPELINES)} "
                                  f"Available: {', '.join(PIPELINES)}.")
            spec = {"name": entry, "kind": PIPELINES[entry]["kind"],
                    "set": dict(PIPELINES[entry]["set"])}
        elif isinstance(entry, dict):
            for key in entry:
                if key not in ("name", "base", "set"):
                    raise _unknown("pipelines[]", key, ("name", "base", "set"))
            if "name" not in entry:
                raise ConfigError(f"pipeline entry {entry!r} needs a 'name'.")
            base = entry.get("base", "physiosync")
            if base not in PIPELINES:
                raise ConfigError(f"unknown base pipeline {base!r}.{_suggest(base, PIPELINES)}")
            sets = entry.get("set") or {}
            if not isinstance(sets, dict):
                raise ConfigError(f"'set' of pipeline {entry['name']!r} must be a mapping.")
            spec = {"name": str(entry["name"]), "kind": PIPELINES[base]["kind"],
                    "set": {**PIPELINES[base]["set"], **sets}}
        else:
            raise ConfigError(f"pipeline entries are names or mappings, got {entry!r}.")
        if spec["name"] in seen:
            raise ConfigError(f"pipeline {spec['name']!r} is listed twice.")
        seen.add(spec["name"])
        out.append(spec)
    return out


def validate_config(raw: dict, *, _check_pipelines: bool = True) -> RunConfig:
    """Validate a nested mapping (merged over the defaults) and build a :class:`RunConfig`.

    Raises
    ------
    ConfigError
        For an unknown key (with a suggestion), a wrong type or an out-of-range value.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"a configuration is a mapping, got {type(raw).__name__}.")
    defaults = _defaults()
    raw = {k: v for k, v in raw.items() if k != "run"}  # provenance written by dump_config
    for key in raw:
        if key not in defaults:
            raise _unknown("", key, defaults)
    for key, value in raw.items():  # e.g. --set pretrain=1 would replace a whole section
        if isinstance(defaults[key], dict) and value is not None and not isinstance(value, dict):
            raise ConfigError(f"config section {key!r} must be a mapping of keys, got "
                              f"{value!r}; set one of its keys instead, e.g. "
                              f"--set {key}.{next(iter(defaults[key]))}=...")
    # A section left empty (``pretrain:`` with every key commented out) keeps its defaults.
    raw = {k: {} if v is None and isinstance(defaults[k], dict) else v for k, v in raw.items()}
    merged = _deep_merge(defaults, raw)
    if merged["seed"] is None or isinstance(merged["seed"], bool) or not isinstance(
            merged["seed"], int):
        raise ConfigError(f"config key 'seed' must be an integer, got {merged['seed']!r}.")
    SEED.check(merged["seed"], "seed", label=_key, error=ConfigError)
    if merged["device"] is not None and not isinstance(merged["device"], str):
        raise ConfigError(f"config key 'device' must be a string such as 'cpu' or 'cuda', got "
                          f"{merged['device']!r}.")
    threads = merged["threads"]
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ConfigError(f"config key 'threads' must be a positive integer (threads of each "
                          f"unit of work) or null (the CPUs this process may use), got "
                          f"{threads!r}.")
    # Section seeds follow the global seed unless set explicitly.
    for section in ("pretrain", "finetune"):
        if "seed" not in (raw.get(section) or {}):
            merged[section]["seed"] = merged["seed"]
    data = _check_section("data", merged["data"], DataConfig)
    protocol = _check_section("protocol", merged["protocol"], ProtocolConfig)
    pre = _check_section("pretrain", merged["pretrain"], PretrainConfig, extra=_PRETRAIN_EXTRA)
    if not isinstance(pre["enabled"], bool):
        raise ConfigError(f"config key 'pretrain.enabled' must be true or false, got "
                          f"{pre['enabled']!r}.")
    _check_execution_keys(pre)
    per = {}
    for which in ("long", "short"):
        sub = pre[which] or {}
        per[which] = _check_section(f"pretrain.{which}", sub, PretrainConfig)
    ft = _check_section("finetune", merged["finetune"], FinetuneConfig)
    baselines = merged["baselines"]
    if not isinstance(baselines, dict):
        raise ConfigError("config section 'baselines' must be a mapping.")
    sections = _baseline_sections()
    for key in baselines:
        if key not in sections:
            raise _unknown("baselines", key, list(sections))
    resolved_baselines = {}
    for name, cls in sections.items():  # every declared section, validated by its dataclass
        given = _check_section(f"baselines.{name}", baselines[name] or {}, cls)
        _build(cls, given, f"baselines.{name}")
        resolved_baselines[name] = {**asdict(cls()), **given}
    common = {k: v for k, v in pre.items() if k not in _PRETRAIN_EXTRA}
    long_cfg = _build(PretrainConfig, {**common, **per["long"]}, "pretrain.long")
    short_cfg = _build(PretrainConfig, {**common, **per["short"]}, "pretrain.short")
    finetune_cfg = _build(FinetuneConfig, ft, "finetune")
    data_cfg = _build(DataConfig, data, "data")
    protocol_cfg = _build(ProtocolConfig, protocol, "protocol")
    if protocol_cfg.permutation_refit and PROTOCOL_TRAITS[protocol_cfg.name].splits_windows:
        raise ConfigError("protocol.permutation_refit needs whole trials in the test folds; "
                          f"{protocol_cfg.name} splits the windows of each trial between "
                          "training and test. Set protocol.permutation_refit: 0 or use another "
                          "protocol.")
    if protocol_cfg.labelled_trials is not None:
        if PROTOCOL_TRAITS[protocol_cfg.name].splits_windows:
            raise ConfigError(f"protocol.labelled_trials needs whole trials; {protocol_cfg.name} "
                              "splits the windows of each trial between training and test. "
                              "Remove protocol.labelled_trials or use another protocol.")
        if protocol_cfg.permutation_refit:
            raise ConfigError("protocol.labelled_trials and protocol.permutation_refit cannot "
                              "be combined (a refit null at every budget); run the refit null "
                              "as a study of its own.")
    spec = dataset_spec(data_cfg.name)
    if data_cfg.ratings_csv is not None and "ratings_csv" not in spec.data_options:
        raise ConfigError(f"config key 'data.ratings_csv' (--ratings-csv) is DEAP's "
                          f"participant_ratings.csv for its .bdf recordings; "
                          f"{spec.display_name} holds its ratings in its own files. Remove it.")
    spec.check_target(data_cfg.target)
    pipelines = _resolve_pipelines(merged["pipelines"])
    resolved = {"seed": merged["seed"], "device": merged["device"], "threads": threads,
                "data": data,
                "protocol": protocol, "pretrain": {**pre, "long": per["long"],
                                                   "short": per["short"]},
                "finetune": ft, "baselines": resolved_baselines,
                "pipelines": merged["pipelines"]}
    cfg = RunConfig(seed=merged["seed"], device=merged["device"], data=data_cfg,
                    protocol=protocol_cfg, pretrain_enabled=pre["enabled"],
                    pretrain_long=long_cfg, pretrain_short=short_cfg, finetune=finetune_cfg,
                    baselines=resolved["baselines"], pipelines=pipelines, raw=resolved,
                    pretrain_batch_folds=pre["batch_folds"], pretrain_compile=pre["compile"],
                    pretrain_held_out=pre["held_out"], threads=threads)
    if _check_pipelines:
        for spec in pipelines:  # every pipeline's overrides must validate too
            pipeline_config(cfg, spec)
    return cfg


def pipeline_config(cfg: RunConfig, spec: dict) -> RunConfig:
    """The run configuration of one pipeline: *cfg* with the pipeline's overrides."""
    if not spec.get("set"):
        return cfg
    raw = cfg.to_dict()
    for dotted, value in spec["set"].items():
        try:
            _set_dotted(raw, dotted, value)
        except ConfigError as err:
            raise ConfigError(f"pipeline {spec['name']!r}: {err}") from None
    try:
        return validate_config(raw, _check_pipelines=False)
    except ConfigError as err:
        raise ConfigError(f"pipeline {spec['name']!r}: {err}") from None


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

        folder = files(__package__) / self._FOLDER
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
        A YAML file, the name of a shipped configuration (:data:`PRESETS`, e.g.
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


def _plain(obj):
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, str):
        return str(obj)  # e.g. torch's TorchVersion
    if hasattr(obj, "item"):
        return obj.item()
    return obj


def _is_deap_bdf(root) -> bool:
    """Whether a DEAP root is read as original BDF recordings (a ``.dat`` file wins)."""
    import re

    path = Path(os.path.expanduser(root))
    try:
        names = [p.name for p in path.iterdir()] if path.is_dir() else []
    except OSError:
        return True  # cannot tell: do not claim the key is ignored
    if any(re.fullmatch(r"s\d{2}\.dat", n) for n in names):
        return False
    return any(re.fullmatch(r"s\d{2}\.bdf", n) for n in names)


def _kind_reads(kind: str) -> tuple:
    """Dotted keys (or sections) of the configuration that pipelines of *kind* read."""
    return PIPELINE_KIND_READS.get(kind, tuple(_OPTIONAL_SECTIONS))


def _is_read(key: str, reads) -> bool:
    """Whether dotted *key* is, contains or lies in one of the dotted keys *reads*."""
    return any(key == r or key.startswith(r + ".") or r.startswith(key + ".") for r in reads)


def ignored_keys(cfg: RunConfig) -> list:
    """Dotted configuration keys that a run of *cfg* does not use.

    They stay valid in the configuration, but changing them would not change any
    result, so ``config.yaml`` and the run fingerprint leave them out
    (:func:`used_config`):

    - ``protocol.n_splits`` under the leave-one-out protocols (``within-loto``,
      ``loso``: one fold per stimulus or subject);
    - ``protocol.pooled`` under the protocols that always fit one pooled model (the
      cross-subject ones and ``legacy-segment``);
    - keys of ``pretrain``, ``finetune`` and ``baselines`` that no pipeline's kind reads
      (:data:`PIPELINE_KIND_READS`): ``pretrain`` without a PhysioSync pipeline,
      ``finetune`` but its ``modalities`` with the band-power baseline alone,
      ``baselines.bandpower`` without a ``bandpower`` pipeline;
    - ``pretrain.long`` / ``pretrain.short`` overrides of an encoder that no pipeline
      reading ``pretrain`` uses (``finetune.use_long`` / ``use_short`` false in all);
    - ``data.bdf_preprocessing`` and a given ``data.ratings_csv`` unless the data are
      original DEAP ``.bdf`` recordings.

    Parameters
    ----------
    cfg : RunConfig
        The validated configuration.

    Returns
    -------
    keys : list of str
        In the order of ``config.yaml``.
    """
    out = []
    raw = cfg.raw
    if (not cfg.data.root or "bdf_preprocessing" not in dataset_spec(cfg.data.name).data_options
            or not _is_deap_bdf(cfg.data.root)):
        out.append("data.bdf_preprocessing")
        if cfg.data.ratings_csv is not None:
            out.append("data.ratings_csv")
    protocol = PROTOCOL_TRAITS[cfg.protocol.name]
    if not protocol.uses_n_splits:
        out.append("protocol.n_splits")
    if not protocol.per_subject_models:
        out.append("protocol.pooled")
    reads = {spec["name"]: _kind_reads(spec["kind"]) for spec in cfg.pipelines}
    every = set().union(*reads.values())
    for section, whole in _OPTIONAL_SECTIONS.items():
        if whole and not _is_read(section, every):
            out.append(section)
            continue
        out += [f"{section}.{key}" for key in raw[section]
                if not _is_read(f"{section}.{key}", every)]
        if section == "pretrain":
            out += _unused_encoders(cfg, reads)
    return out


def _unused_encoders(cfg: RunConfig, reads: dict) -> list:
    """``pretrain.long`` / ``pretrain.short`` overrides that no pipeline reading them uses.

    An encoder's overrides matter only to pipelines that fine-tune that encoder
    (``finetune.use_long`` / ``use_short``).
    """
    out = []
    for name in ("long", "short"):
        key = f"pretrain.{name}"
        if cfg.raw["pretrain"].get(name) and not any(
                getattr(pipeline_config(cfg, spec).finetune, f"use_{name}")
                for spec in cfg.pipelines if _is_read(key, reads[spec["name"]])):
            out.append(key)
    return out


def used_config(cfg: RunConfig) -> dict:
    """The resolved configuration without the keys the run does not use.

    :func:`ignored_keys` are removed, so two configurations that differ only in keys a
    run ignores give the same mapping (and the same run fingerprint). Loading it back
    fills those keys with their defaults, which the run ignores just the same.
    """
    tree = cfg.to_dict()
    for dotted in ignored_keys(cfg):
        *parents, last = dotted.split(".")
        node = tree
        for key in parents:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(last, None)
    return tree


def absolute_root(root) -> str | None:
    """*root* as ``config.yaml`` and the reports write it: ``~`` expanded, made absolute
    against the current folder (not resolved, so a link keeps its name); None stays."""
    if root is None or root == "":
        return root
    return os.path.abspath(os.path.expanduser(str(root)))


def dump_config(cfg: RunConfig, path=None, *, extra: dict | None = None) -> str:
    """The configuration a run used, as YAML (written atomically to *path* if given).

    Only what the run uses is written (:func:`used_config`); ``run.ignored`` lists the
    keys left out (:func:`ignored_keys`), and *extra* (e.g. versions and the data
    source) goes under ``run:`` too. The file loads back (``--config``) to the same run.
    A relative ``data.root`` or ``data.ratings_csv`` is written as an absolute path.
    """
    tree = _plain(used_config(cfg))
    for key in ("root", "ratings_csv"):  # a relative path means nothing from another folder
        if tree.get("data", {}).get(key):
            tree["data"][key] = absolute_root(tree["data"][key])
    run = _plain(extra) if extra else {}
    ignored = ignored_keys(cfg)
    if ignored:
        run["ignored"] = ignored
    if run:
        tree["run"] = run
    text = yaml.safe_dump(tree, sort_keys=False)
    if path is not None:
        from ._utils import atomic_write

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)
    return text
