"""Provenance of a run: the configuration it used, as ``config.yaml`` writes it.

:func:`ignored_keys` names the keys a run does not read (they cannot change a result),
:func:`used_config` leaves them out (so that the run fingerprint ignores them too), and
:func:`dump_config` writes what remains, with ``run:`` provenance (versions, the data
source, the ignored keys), as YAML that loads back to the same run. :func:`absolute_root`
is how a data path is recorded.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import yaml

from ..dataset_specs import dataset_spec
from ..params import PROTOCOL_TRAITS
from .schema import PIPELINE_KIND_READS, RunConfig, pipeline_config

__all__ = ["ignored_keys", "used_config", "dump_config", "absolute_root", "run_notes"]

#: The sections of :data:`PIPELINE_KIND_READS`, in ``config.yaml`` order, and whether one
#: that no pipeline reads is left out whole (``pretrain``, with its ``long``/``short``
#: sub-sections) rather than key by key.
_OPTIONAL_SECTIONS = {"pretrain": True, "finetune": False, "baselines": False}


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
    - a given ``protocol.train_trials`` under every protocol but ``session-split`` (left
      unset, it is not in the resolved configuration);
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
    if not protocol.first_trials and cfg.protocol.train_trials is not None:
        out.append("protocol.train_trials")
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


def run_notes(cfg: RunConfig) -> list:
    """What the configuration does that its keys do not say, one line each.

    Today one: on a dataset that records EEG alone (SEED), a pre-training PhysioSync
    pipeline runs LS-TCL on the EEG without CM-CA, the ``eeg-only`` ablation's
    objective (:meth:`~physiosync.dataset_specs.DatasetSpec.eeg_only_note`).

    Returns
    -------
    notes : list of str
    """
    spec = dataset_spec(cfg.data.name)
    if spec.eeg_only and any(
            p["kind"] == "physiosync" and pipeline_config(cfg, p).pretrain_enabled
            for p in cfg.pipelines):
        return [spec.eeg_only_note() + "."]
    return []


def dump_config(cfg: RunConfig, path=None, *, extra: dict | None = None) -> str:
    """The configuration a run used, as YAML (written atomically to *path* if given).

    Only what the run uses is written (:func:`used_config`); ``run.ignored`` lists the
    keys left out (:func:`ignored_keys`), ``run.notes`` what the run does that its keys
    do not say (:func:`run_notes`), and *extra* (e.g. versions and the data
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
    notes = run_notes(cfg)
    if notes:
        run["notes"] = notes
    if run:
        tree["run"] = run
    text = yaml.safe_dump(tree, sort_keys=False)
    if path is not None:
        from .._utils import atomic_write

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)
    return text
