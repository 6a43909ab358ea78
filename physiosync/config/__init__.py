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

The package holds three modules: :mod:`~physiosync.config.schema` (:class:`RunConfig`,
validation, the named pipelines), :mod:`~physiosync.config.reading` (hardened YAML, the
presets, overrides, :func:`load_config`) and :mod:`~physiosync.config.provenance` (what
``config.yaml`` records). Every public name is importable from ``physiosync.config``.
"""

from ..exceptions import ConfigError
from ..params import DataConfig, ProtocolConfig
from .provenance import absolute_root, dump_config, ignored_keys, run_notes, used_config
from .reading import PRESETS, load_config, parse_overrides
from .schema import (PIPELINE_KIND_READS, PIPELINES, RunConfig, pipeline_config,
                     validate_config)

__all__ = ["ConfigError", "DataConfig", "ProtocolConfig", "RunConfig", "PIPELINES",
           "PIPELINE_KIND_READS", "PRESETS", "load_config", "parse_overrides", "validate_config",
           "dump_config", "absolute_root", "ignored_keys", "used_config",
           "pipeline_config", "run_notes"]
