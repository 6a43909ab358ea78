"""The schema of a run configuration: :class:`RunConfig`, its validation and the pipelines.

:func:`validate_config` checks a nested mapping merged over the defaults: unknown keys
(with a "did you mean" suggestion), types (:func:`_coerce`, which also reads YAML 1.1's
``1e-3`` strings as numbers), ranges and choices (the ``_parameter_constraints`` of the
dataclasses in :mod:`physiosync.params` and :mod:`physiosync.pipeline_specs`), and the
rules across sections. It resolves the ``pipelines:`` entries against the named pipelines
(:data:`PIPELINES`, derived from the pipeline kinds' declarations), and
:func:`pipeline_config` applies one pipeline's dotted overrides.
"""

from __future__ import annotations

import copy
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields

from .._utils.checks import ListOf, Options, did_you_mean
from ..dataset_specs import dataset_spec
from ..exceptions import ConfigError, PhysioSyncError
from ..params import (COMPILE_MODES, PRETRAIN_HELD_OUT, PROTOCOL_TRAITS, SEED, DataConfig,
                      FinetuneConfig, PretrainConfig, ProtocolConfig)
from ..pipeline_specs import PIPELINE_KIND_SPECS

__all__ = ["RunConfig", "PIPELINES", "PIPELINE_KIND_READS", "validate_config",
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
        (``pretrain_folds()``); 1 runs them one by one.
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


def _merge_over_defaults(raw: dict) -> tuple:
    """Check the top-level keys and sections of *raw* and merge it over the defaults.

    Returns the merged tree and *raw* without its ``run:`` provenance.
    """
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
    return _deep_merge(defaults, raw), raw


def _dataset_defaults(merged: dict, raw: dict) -> None:
    """The ``data`` defaults that depend on the dataset, for keys the configuration leaves
    unset: the target (``valence``, else the dataset's first target: SEED's ``emotion``)
    and the baseline removal (``none`` where trials hold no baseline)."""
    from ..dataset_specs import DATASET_SPECS

    given, data = raw.get("data") or {}, merged["data"]
    spec = DATASET_SPECS.get(data["name"]) if isinstance(data["name"], str) else None
    if spec is None:  # an unknown name is reported by the data section's check
        return
    if "target" not in given:
        data["target"] = spec.default_target
    if "baseline" not in given and not spec.has_baseline:
        data["baseline"] = "none"


def _check_globals(merged: dict) -> None:
    """``seed``, ``device`` and ``threads``."""
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


def _check_baselines(baselines) -> dict:
    """Every declared ``baselines`` section, validated by its dataclass, with its defaults."""
    if not isinstance(baselines, dict):
        raise ConfigError("config section 'baselines' must be a mapping.")
    sections = _baseline_sections()
    for key in baselines:
        if key not in sections:
            raise _unknown("baselines", key, list(sections))
    resolved = {}
    for name, cls in sections.items():
        given = _check_section(f"baselines.{name}", baselines[name] or {}, cls)
        _build(cls, given, f"baselines.{name}")
        resolved[name] = {**asdict(cls()), **given}
    return resolved


def _check_protocol_rules(protocol_cfg: ProtocolConfig) -> None:
    """Options of ``protocol`` that need whole trials, or exclude each other."""
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


def _check_dataset_rules(data_cfg: DataConfig, protocol_cfg: ProtocolConfig,
                         finetune_cfg: FinetuneConfig) -> None:
    """Keys of ``data`` that the named dataset offers (its options, targets and
    modalities), and the protocols its sessions allow."""
    spec = dataset_spec(data_cfg.name)
    if data_cfg.ratings_csv is not None and "ratings_csv" not in spec.data_options:
        raise ConfigError(f"config key 'data.ratings_csv' (--ratings-csv) is DEAP's "
                          f"participant_ratings.csv for its .bdf recordings; "
                          f"{spec.display_name} holds its ratings in its own files. Remove it.")
    spec.check_target(data_cfg.target)
    for key, mods in (("data.modalities", data_cfg.modalities),
                      ("finetune.modalities", finetune_cfg.modalities)):
        missing = [m for m in mods or () if m not in spec.modalities]
        if missing:
            raise ConfigError(f"config key {key!r}: {spec.display_name} has no "
                              f"{', '.join(missing)}; it has {', '.join(spec.modalities)}.")
    traits = PROTOCOL_TRAITS[protocol_cfg.name]
    if traits.needs_sessions and len(spec.sessions) < 2:
        raise ConfigError(f"protocol {protocol_cfg.name!r} tests on held-out sessions, but "
                          f"{spec.display_name} was recorded in one session; use "
                          "within-trial-kfold.")
    if (traits.first_trials and protocol_cfg.train_trials is None
            and spec.session_train_trials is None):
        raise ConfigError(f"protocol {protocol_cfg.name!r} needs protocol.train_trials (trials "
                          f"of each session that train); {spec.display_name} declares no "
                          "customary number.")


def validate_config(raw: dict, *, _check_pipelines: bool = True) -> RunConfig:
    """Validate a nested mapping (merged over the defaults) and build a :class:`RunConfig`.

    Raises
    ------
    ConfigError
        For an unknown key (with a suggestion), a wrong type or an out-of-range value.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"a configuration is a mapping, got {type(raw).__name__}.")
    merged, raw = _merge_over_defaults(raw)
    _dataset_defaults(merged, raw)
    _check_globals(merged)
    threads = merged["threads"]
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
    resolved_baselines = _check_baselines(merged["baselines"])
    common = {k: v for k, v in pre.items() if k not in _PRETRAIN_EXTRA}
    long_cfg = _build(PretrainConfig, {**common, **per["long"]}, "pretrain.long")
    short_cfg = _build(PretrainConfig, {**common, **per["short"]}, "pretrain.short")
    finetune_cfg = _build(FinetuneConfig, ft, "finetune")
    data_cfg = _build(DataConfig, data, "data")
    protocol_cfg = _build(ProtocolConfig, protocol, "protocol")
    if protocol["train_trials"] is None and not PROTOCOL_TRAITS[protocol_cfg.name].first_trials:
        # unread and unset: left out of the resolved tree, so that the configurations,
        # fingerprints and reports of the other protocols stay as they were before it
        del protocol["train_trials"]
    _check_protocol_rules(protocol_cfg)
    _check_dataset_rules(data_cfg, protocol_cfg, finetune_cfg)
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
