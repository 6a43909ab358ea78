"""Parameter declarations: every allowed value and bound is declared once, in params.

The dataclasses of :mod:`physiosync.params` validate through their
``_parameter_constraints``; the configuration loader and the command line derive their
checks and ``choices=`` from the same objects.
"""

import argparse
import math
import re
import subprocess
import sys
import typing
from dataclasses import fields, replace

import pytest

from physiosync import params, pipeline_specs
from physiosync._utils.checks import (AnyOf, Interval, ListOf, MappingOf, Options, check_option,
                                      did_you_mean, validate_params)
from physiosync.config import load_config
from physiosync.exceptions import ConfigError, InvalidParameterError, PhysioSyncError

#: Every params dataclass, and the configuration section it backs.
SECTIONS = {params.DataConfig: "data", params.ProtocolConfig: "protocol",
            params.PretrainConfig: "pretrain", params.FinetuneConfig: "finetune",
            pipeline_specs.BandPowerParams: "baselines.bandpower",
            pipeline_specs.DEParams: "baselines.de",
            params.PrepareParams: None}


def _constraints():
    return [(cls, name, c) for cls in SECTIONS
            for name, c in cls._parameter_constraints.items()]


def _ids(item):
    cls, name, _ = item
    return f"{cls.__name__}.{name}"


def _valid_elem(c):
    """A value that follows constraint *c* (an element of a list, a mapping's value)."""
    if c is None:
        return "eeg"
    if isinstance(c, Options):
        return c.values[0]
    if isinstance(c, AnyOf):
        return _valid_elem(c.constraints[0])
    lo, hi = c.low, c.high
    if lo is None:
        return c.type(0) if hi is None or hi > 0 else c.type(hi - 1)
    return c.type(lo) if c.low_inclusive else c.type(lo + 1)


def _cases(c):
    """(accepted values, refused values) at the edges of constraint *c*."""
    if isinstance(c, Options):
        return list(c.values), ["bogus", 1.5]
    if isinstance(c, Interval):
        step = 1 if c.type is int else 1e-9
        good, bad = [], ["text", True]
        if c.low is not None:
            lo = c.type(c.low)
            good += [lo] if c.low_inclusive else [lo + step]
            bad += [lo - step] if c.low_inclusive else [lo]
        if c.high is not None:
            hi = c.type(c.high)
            good += [hi] if c.high_inclusive else [hi - step]
            bad += [hi + step] if c.high_inclusive else [hi]
        if c.type is float:
            bad.append(math.nan)
        return good, bad
    if isinstance(c, ListOf):
        elem = _valid_elem(c.elem_constraint)
        lo = c.min_len or 0
        good = [[elem] * lo, [elem] * max(lo, 1)]
        bad = [[elem] * (lo - 1)] if lo else []
        if c.max_len is not None:
            good.append([elem] * c.max_len)
            bad.append([elem] * (c.max_len + 1))
        if c.elem_constraint is not None:
            bad += [[e] * max(lo, 1) for e in _cases(c.elem_constraint)[1]
                    if not isinstance(e, bool)]
        return good, bad
    if isinstance(c, MappingOf):
        return [{}, {"eeg": _valid_elem(c.value_constraint)}], [{"eeg": "bogus"}, ["eeg"]]
    if isinstance(c, AnyOf):  # what one rule accepts; what every rule refuses
        cases = [_cases(rule) for rule in c.constraints]
        good = [v for g, _ in cases for v in g]
        bad = [v for _, b in cases for v in b
               if not any(rule.is_satisfied_by(v) for rule in c.constraints)]
        return good, bad
    raise AssertionError(f"no test cases for {c!r}")


@pytest.mark.parametrize("item", _constraints(), ids=_ids)
def test_every_constraint_accepts_its_edges_and_refuses_naming_the_parameter(item):
    cls, name, c = item
    good, bad = _cases(c)
    assert good and bad
    for value in good:
        obj = cls(**{name: value})
        validate_params(obj)
        assert c.is_satisfied_by(value)
    if c.allow_none:
        cls(**{name: None})
    for value in bad:
        with pytest.raises(PhysioSyncError, match=rf"\b{name}\b") as err:
            cls(**{name: value})
        assert "\n" not in str(err.value)
        assert not c.is_satisfied_by(value)


@pytest.mark.parametrize("cls", [c for c, s in SECTIONS.items() if s], ids=lambda c: c.__name__)
def test_config_sections_validate_with_the_same_constraints(cls):
    section = SECTIONS[cls]
    for name, c in cls._parameter_constraints.items():
        good, bad = _cases(c)
        for value in good[:3]:
            if name == "subjects" and len(value) > 100:
                continue
            load_config(overrides={section.split(".")[0]: _nest(section, name, value)})
        for value in bad:
            if isinstance(value, bool) or isinstance(value, float) and math.isnan(value):
                continue  # types are checked by the loader (true/false, .nan)
            with pytest.raises(ConfigError, match=re.escape(f"config key '{section}.{name}")):
                load_config(overrides={section.split(".")[0]: _nest(section, name, value)})


def _nest(section, name, value):
    parts = section.split(".")[1:] + [name]
    tree = value
    for part in reversed(parts):
        tree = {part: tree}
    return tree


def test_pretrain_long_and_short_sub_mappings_use_the_pretrain_constraints():
    with pytest.raises(ConfigError, match=r"config key 'pretrain.long.depth' must be <= 64"):
        load_config(overrides={"pretrain": {"long": {"depth": 65}}})
    with pytest.raises(ConfigError, match=r"'pretrain.short.optimizer': invalid value 'sgd'; "
                                          r"allowed values are 'adam', 'adamw'\.$"):
        load_config(overrides={"pretrain": {"short": {"optimizer": "sgd"}}})


def test_one_message_format_for_an_invalid_choice():
    with pytest.raises(PhysioSyncError, match=r"^Invalid optimizer 'sgd'; allowed values are "
                                              r"'adam', 'adamw'\.$"):
        params.FinetuneConfig(optimizer="sgd")
    with pytest.raises(PhysioSyncError, match=r"^Invalid optimizer 'sgd'; allowed values are "
                                              r"'adam', 'adamw'\.$"):
        params.PretrainConfig(optimizer="sgd")
    with pytest.raises(PhysioSyncError, match=r"^Invalid target 'valance'; allowed values are "
                                              r"'valence', .* Did you mean 'valence'\?$"):
        check_option("target", "valance", params.TARGETS)
    with pytest.raises(ConfigError, match=r"^config key 'finetune.optimizer': invalid value "
                                          r"'adamm'; allowed values are 'adam', 'adamw'\. "
                                          r"Did you mean 'adam'\?$"):
        load_config(overrides={"finetune": {"optimizer": "adamm"}})
    with pytest.raises(ConfigError, match=r"config key 'data.norm.gsr': invalid value 'z'"):
        load_config(overrides={"data": {"norm": {"gsr": "z"}}})


def test_invalid_parameters_are_value_errors_as_in_scikit_learn_and_mne():
    # ``except ValueError`` (scikit-learn's and MNE's convention) and ``except
    # PhysioSyncError`` both catch a refused parameter, whichever check refused it.
    refusals = [lambda: check_option("target", "valance", params.TARGETS),
                lambda: params.FinetuneConfig(optimizer="sgd"),
                lambda: params.PretrainConfig(depth=0),
                lambda: Interval(int, 1, 4).check(9, "n"),
                lambda: ListOf(str, Options(("a", "b"))).check(["c"], "xs")]
    for refuse in refusals:
        with pytest.raises(InvalidParameterError) as info:
            refuse()
        assert isinstance(info.value, ValueError) and isinstance(info.value, PhysioSyncError)
    # a caller that names its own class still gets it (the configuration loader's)
    with pytest.raises(ConfigError):
        Options(("a",)).check("b", "x", error=ConfigError)
    assert not Options(("a",)).is_satisfied_by("b")


def test_the_models_and_training_check_against_params():
    from physiosync.models import encoders, losses
    from physiosync.training.engine import make_optimizer

    assert encoders.EMBEDDINGS is params.EMBEDDINGS
    assert "CMCA_VARIANTS" not in losses.__all__  # params.CMCA_VARIANTS includes "none"
    with pytest.raises(PhysioSyncError, match=r"^Invalid embedding 'dense'; allowed values "
                                              r"are 'multiview', 'factorised', 'spectral'\.$"):
        encoders.SignalEncoder(4, 32, 16, embedding="dense")
    with pytest.raises(PhysioSyncError, match=r"^Invalid cmca_variant 'both'; allowed values "
                                              r"are 'cross-subject', 'same-subject', 'none'\.$"):
        losses.collapsed_loss(4, cmca_variant="both")
    with pytest.raises(PhysioSyncError, match=r"^Invalid optimizer 'sgd'; allowed values "
                                              r"are 'adam', 'adamw'\.$"):
        make_optimizer([], "sgd", 1e-3, 0.0)


def test_cross_field_checks_stay_in_the_dataclasses():
    with pytest.raises(PhysioSyncError, match=r"loss_weights must be \(w_eeg, w_pps, w_cmca\)"):
        params.PretrainConfig(loss_weights=(1.0, 1.0))
    with pytest.raises(PhysioSyncError, match="use_long and use_short"):
        params.FinetuneConfig(use_long=False, use_short=False)
    with pytest.raises(PhysioSyncError, match=r"^modalities must hold at least 1 element, "
                                              r"got 0\.$"):
        params.PrepareParams(modalities=())
    cfg = replace(params.PretrainConfig(), loss_weights=[1, 2, 3], projector_dims=[8])
    assert cfg.loss_weights == (1.0, 2.0, 3.0) and cfg.projector_dims == (8,)


def test_every_numeric_field_has_a_constraint():
    for cls in SECTIONS:
        hints = typing.get_type_hints(cls)
        for f in fields(cls):
            tp = hints[f.name]
            args = typing.get_args(tp) or (tp,)
            if any(a in (int, float) for a in args):
                assert f.name in cls._parameter_constraints, f"{cls.__name__}.{f.name}"
        unknown = set(cls._parameter_constraints) - {f.name for f in fields(cls)}
        assert not unknown, f"{cls.__name__}: constraints of no field: {unknown}"


def test_config_declares_no_allowed_value_or_bound():
    import inspect

    import physiosync.config as config
    from physiosync.config import provenance, reading, schema

    source = "".join(inspect.getsource(m) for m in (config, schema, reading, provenance))
    for name in ("_RANGES", "_LISTS", "_CHOICES", "_MAX_SEED"):
        assert name not in source
    for values in (params.TARGETS, params.OPTIMIZERS, params.EMBEDDINGS, params.SCHEDULERS,
                   params.EPOCH_SELECTIONS, params.BASELINE_METHODS, params.ONE_CLASS_RULES):
        assert repr(values) not in source and repr(list(values)) not in source


def _choices(parser, command, option):
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    action = next(a for a in sub.choices[command]._actions
                  if option in a.option_strings or a.dest == option)
    return tuple(action.choices)


def test_cli_choices_come_from_params():
    from physiosync.cli import build_parser

    parser = build_parser()
    for command in ("cv", "pretrain", "finetune"):
        assert _choices(parser, command, "--target") == params.TARGETS
        assert _choices(parser, command, "--dataset") == params.DATASETS
    assert _choices(parser, "cv", "--protocol") == params.PROTOCOLS
    assert _choices(parser, "info", "dataset") == params.DATASETS
    assert _choices(parser, "prepare", "dataset") == params.DATASETS
    assert _choices(parser, "prepare", "--baseline") == params.BASELINE_METHODS
    assert _choices(parser, "prepare", "--bdf-preprocessing") == params.BDF_PREPROCESSING


def test_protocol_registry_reads_the_traits_in_params():
    from physiosync.evaluation import protocols

    assert tuple(protocols.PROTOCOLS) == params.PROTOCOLS == tuple(params.PROTOCOL_TRAITS)
    for name, protocol in protocols.PROTOCOLS.items():
        assert protocol.traits is params.PROTOCOL_TRAITS[name]
        assert protocol.name == name
    traits = params.PROTOCOL_TRAITS
    assert [n for n, t in traits.items() if t.per_subject_models] == [
        "within-trial-kfold", "within-loto", "cross-session", "session-split"]
    assert [n for n, t in traits.items() if not t.uses_n_splits] == [
        "within-loto", "loso", "cross-session", "session-split"]
    assert [n for n, t in traits.items() if t.needs_sessions] == ["cross-session"]
    assert [n for n, t in traits.items() if t.leaky] == ["legacy-segment"]
    assert traits["legacy-segment"].splits_windows and not traits["loso"].splits_windows


def test_default_modalities():
    assert params.default_modalities("DREAMER") == params.DEFAULT_MODALITIES["dreamer"]
    assert params.default_modalities("deap") == params.PrepareParams().modalities
    # an unknown name is refused, never given another dataset's modalities
    with pytest.raises(ConfigError, match="Unknown dataset 'other'; choose one of deap, dreamer"):
        params.default_modalities("other")


def test_constraints_describe_themselves():
    assert Options(("adam", "adamw")).describe() == "one of 'adam', 'adamw'"
    assert Interval(int, 1, 64).describe() == "an int in [1, 64]"
    assert Interval(float, 0, 1, closed="left").describe() == "a float in [0, 1)"
    assert Interval(float, 0, None, closed="neither", allow_none=True).describe() == \
        "a float > 0 or None"
    assert ListOf(int, Interval(int, 1, 8), 1, 3).describe() == \
        "a list of 1 to 3 elements, each an int in [1, 8]"
    assert did_you_mean("valance", params.TARGETS) == " Did you mean 'valence'?"
    assert did_you_mean("xyz", params.TARGETS) == ""
    with pytest.raises(PhysioSyncError, match="closed"):
        Interval(int, 0, 1, closed="open")


def test_loading_a_config_and_building_the_parser_do_not_import_torch():
    code = ("import sys\n"
            "import physiosync.config\n"
            "assert 'torch' not in sys.modules, 'import physiosync.config'\n"
            "from physiosync.config import load_config\n"
            "for preset in ('demo', 'tiny'):\n"
            "    load_config(preset)\n"
            "assert 'torch' not in sys.modules, 'load_config'\n"
            "from physiosync.cli import build_parser\n"
            "build_parser()\n"
            "assert 'torch' not in sys.modules, 'build_parser'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr


def test_protocol_traits_refuse_an_unknown_held_out_column():
    with pytest.raises(PhysioSyncError,
                       match=r"protocol 'x': held_out must be .*got \('stimulus',\)"):
        params.ProtocolTraits("x", held_out=("stimulus",))
    assert params.ProtocolTraits("x", held_out=()).leaky
