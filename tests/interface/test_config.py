"""Run configurations: schema validation, overrides, presets and the shipped YAML files."""

from pathlib import Path

import pytest
import yaml

from conftest import one_line_error
from physiosync.cli import main
from physiosync.config import (PRESETS, ConfigError, dump_config, load_config, parse_overrides,
                               pipeline_config)

CONFIGS = Path(__file__).resolve().parents[2] / "physiosync" / "configs"


@pytest.mark.parametrize("tree,message", [
    ({"pretrain": {"lrr": 1e-3}}, r"unknown config key 'pretrain.lrr'. Did you mean 'lr'\?"),
    ({"protocl": {}}, r"unknown config key 'protocl'. Did you mean 'protocol'\?"),
    ({"pretrain": {"short": {"dept": 2}}}, r"'pretrain.short.dept'. Did you mean 'depth'\?"),
    ({"protocol": {"name": "loso2"}},
     r"'protocol.name': invalid value 'loso2'; allowed values are 'within-trial-kfold', "
     r".*Did you mean 'loso'\?"),
    ({"data": {"target": "valance"}}, r"Did you mean 'valence'\?"),
    ({"pipelines": ["physiosyn"]}, r"unknown pipeline 'physiosyn'. Did you mean 'physiosync'\?"),
    ({"finetune": {"epochs": 0}}, r"'finetune.epochs' must be >= 1, got 0"),
    ({"finetune": {"epochs": 2.5}}, r"'finetune.epochs' must be an integer"),
    ({"pretrain": {"lr": "fast"}}, r"'pretrain.lr' must be a number, got 'fast'"),
    ({"pretrain": {"lr": -1.0}}, r"'pretrain.lr' must be > 0"),
    ({"protocol": {"val_size": 1.5}}, r"'protocol.val_size' must be >= 0 and <= 0.5"),
    ({"protocol": {"pooled": "yes"}}, r"'protocol.pooled' must be true or false"),
    ({"finetune": {"select": "test_accuracy"}},
     r"'finetune.select': invalid value 'test_accuracy'; allowed values are 'val_loss', "),
    ({"pretrain": {"embedding": "spectal"}}, r"Did you mean .spectral."),
    ({"data": {"name": "dreamer", "target": "liking"}}, r"target 'liking' does not exist in DREAMER; it has valence"),
    ({"seed": "zero"}, r"'seed' must be an integer"),
])
def test_invalid_configs_are_rejected_with_the_key_and_a_suggestion(tree, message):
    with pytest.raises(ConfigError, match=message):
        load_config(tree)


def test_yaml_strings_like_1e_3_are_numbers_and_overrides_apply_last(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("pretrain:\n  lr: 1e-3\n  steps: 5\nprotocol:\n  n_splits: 3\n")
    cfg = load_config(path, ["pretrain.lr=2e-4", "finetune.modalities=[eeg]",
                             "pretrain.long.depth=2", "protocol.pooled=true"])
    assert cfg.pretrain_long.lr == pytest.approx(2e-4) and cfg.pretrain_long.steps == 5
    assert cfg.pretrain_long.depth == 2 and cfg.pretrain_short.depth == 3
    assert cfg.finetune.modalities == ("eeg",) and cfg.protocol.pooled is True
    assert cfg.protocol.n_splits == 3


def test_layered_configs_later_wins_and_seeds_follow_the_global_seed():
    cfg = load_config([CONFIGS / "deap_within.yaml", "tiny"], ["seed=7"])
    assert cfg.protocol.name == "within-trial-kfold" and cfg.pretrain_long.embed_dim == 8
    assert cfg.pretrain_long.seed == cfg.finetune.seed == 7
    assert load_config({"seed": 7, "pretrain": {"seed": 1}}).pretrain_long.seed == 1


@pytest.mark.parametrize("item,message", [("pretrain.lr", "key=value"), ("=3", "empty key"),
                                          ("a.b=[1", "cannot parse")])
def test_bad_overrides(item, message):
    with pytest.raises(ConfigError, match=message):
        parse_overrides([item])


def test_missing_config_file_suggests_a_preset(tmp_path):
    with pytest.raises(ConfigError, match="neither a file nor a preset.*Did you mean 'demo'"):
        load_config("dmo")
    bad = tmp_path / "bad.yaml"
    bad.write_text("pretrain: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping at the top level"):
        load_config(bad)


def test_every_shipped_config_is_a_preset_by_name_from_any_folder(tmp_path, monkeypatch):
    """``--config deap_within`` and ``load_config("deap_within")`` need no checkout: the
    presets are the package's own files, found wherever the working folder is."""
    assert sorted(PRESETS) == sorted(p.stem for p in CONFIGS.glob("*.yaml"))
    monkeypatch.chdir(tmp_path)
    for name in PRESETS:
        assert load_config(name).to_dict() == load_config(CONFIGS / f"{name}.yaml").to_dict()
        assert PRESETS[name] == yaml.safe_load(PRESETS.text(name))
        assert PRESETS.text(name).startswith("# ")  # a header that says what it is for
        assert PRESETS.description(name) and "\n" not in PRESETS.description(name)
    assert PRESETS.description("deap_within") == "DEAP, within-subject, honest"
    cfg = load_config(["deap_within", "tiny"])  # layered by name
    assert cfg.protocol.name == "within-trial-kfold" and cfg.pretrain_long.embed_dim == 8
    tree = PRESETS["tiny"]
    tree["pretrain"]["steps"] = 999  # a copy: the preset itself is unchanged
    assert PRESETS["tiny"]["pretrain"]["steps"] == 2


def test_unknown_preset_is_one_line_listing_the_presets(capsys):
    for name, hint in (("deap_withn", "Did you mean 'deap_within'?"),
                       ("configs/deap_within.yaml", "the preset 'deap_within': --config "
                                                    "deap_within")):
        assert main(["cv", "--config", name, "--dry-run"]) == 2
        line = one_line_error(capsys)
        assert hint in line and "`physiosync configs`" in line
        assert all(p in line for p in PRESETS)
    assert main(["configs", "deap_withn"]) == 2
    line = one_line_error(capsys)
    assert "no preset 'deap_withn'. Did you mean 'deap_within'? Presets: amigos_baselines" in line


def test_configs_command_lists_prints_and_writes_a_copy_never_over_a_file(tmp_path, capsys,
                                                                         monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["configs"]) == 0
    lines = capsys.readouterr().out.splitlines()
    listed = {line.split()[0]: line.split(None, 1)[1] for line in lines[:len(PRESETS)]}
    assert listed == {name: PRESETS.description(name) for name in PRESETS}
    assert main(["configs", "deap_within"]) == 0
    assert capsys.readouterr().out == PRESETS.text("deap_within")
    assert main(["configs", "deap_within", "--out", "mine.yaml"]) == 0
    assert "--config mine.yaml" in capsys.readouterr().out
    assert (tmp_path / "mine.yaml").read_text() == PRESETS.text("deap_within")
    assert load_config("./mine.yaml").to_dict() == load_config("deap_within").to_dict()
    (tmp_path / "mine.yaml").write_text("seed: 3\n")  # the user's edits
    assert main(["configs", "tiny", "--out", "mine.yaml"]) == 2
    assert "mine.yaml exists" in one_line_error(capsys)
    assert (tmp_path / "mine.yaml").read_text() == "seed: 3\n"
    assert main(["configs", "--out", "x.yaml"]) == 2
    assert "needs the preset to write" in one_line_error(capsys)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine.yaml"]  # no temporary left


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_validates_with_all_its_pipelines(path):
    cfg = load_config(path)
    names = [spec["name"] for spec in cfg.pipelines]
    assert names and len(set(names)) == len(names)
    base = cfg.to_dict()
    for spec in cfg.pipelines:
        # each pipeline is the file's configuration with exactly its own overrides
        expected = yaml.safe_load(yaml.safe_dump(base))
        for dotted, value in (spec.get("set") or {}).items():
            *parents, leaf = dotted.split(".")
            node = expected
            for part in parents:
                node = node[part]
            assert leaf in node, f"{path.name}: pipeline {spec['name']!r} sets {dotted}"
            node[leaf] = value
        resolved = pipeline_config(cfg, spec).to_dict()
        assert yaml.safe_load(yaml.safe_dump(resolved)) == expected, spec["name"]


def test_pipelines_apply_their_overrides_and_custom_pipelines_validate():
    cfg = load_config({"pipelines": ["physiosync", "eeg-only", "no-pretrain",
                                     {"name": "slow", "set": {"finetune.lr": 1e-4}}]})
    by_name = {p["name"]: pipeline_config(cfg, p) for p in cfg.pipelines}
    assert by_name["eeg-only"].finetune.modalities == ("eeg",)
    assert by_name["no-pretrain"].pretrain_enabled is False
    assert by_name["slow"].finetune.lr == pytest.approx(1e-4)
    with pytest.raises(ConfigError, match="pipeline 'bad'.*finetune.lrr"):
        load_config({"pipelines": [{"name": "bad", "set": {"finetune.lrr": 1}}]})
    with pytest.raises(ConfigError, match="listed twice"):
        load_config({"pipelines": ["physiosync", "physiosync"]})


def test_dumped_config_round_trips(tmp_path):
    cfg = load_config("demo", ["data.root=/x"])
    text = dump_config(cfg, tmp_path / "config.yaml", extra={"versions": {"torch": "2"}})
    assert "versions" in text
    again = load_config(tmp_path / "config.yaml")  # the provenance block is ignored
    assert again.to_dict() == cfg.to_dict()


def test_dumped_config_marks_the_keys_the_run_ignores(tmp_path):
    from physiosync.config import ignored_keys
    from physiosync.runfolder import run_fingerprint

    # loso: one fold per subject (n_splits unused), one pooled model (pooled unused); the
    # bandpower pipeline alone uses no pre-training, and of finetune only its modalities
    cfg = load_config("tiny", ["protocol.name=loso", "pipelines=[bandpower]",
                               f"data.root={tmp_path}"])
    ignored = ignored_keys(cfg)
    assert {"protocol.n_splits", "protocol.pooled", "pretrain", "finetune.epochs",
            "data.bdf_preprocessing"} <= set(ignored)
    assert "finetune.modalities" not in ignored and "baselines.bandpower" not in ignored
    dump_config(cfg, tmp_path / "config.yaml", extra={"versions": {"torch": "2"}})
    on_disk = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert on_disk["run"]["ignored"] == ignored and on_disk["run"]["versions"] == {"torch": "2"}
    # only what the run used is saved, and it loads back to the same run
    assert "n_splits" not in on_disk["protocol"] and "pretrain" not in on_disk
    assert on_disk["finetune"] == {"modalities": cfg.finetune.modalities}
    again = load_config(tmp_path / "config.yaml")
    assert ignored_keys(again) == ignored
    assert run_fingerprint(again) == run_fingerprint(cfg)  # the same run resumes
    # keys the run ignores do not make it another run
    other = load_config("tiny", ["protocol.name=loso", "pipelines=[bandpower]",
                                 f"data.root={tmp_path}", "protocol.n_splits=9"])
    assert run_fingerprint(other) == run_fingerprint(cfg)

    # an encoder that no pipeline uses; k-fold within subjects uses n_splits and pooled
    cfg = load_config("tiny", ["pipelines=[short-only]", "pretrain.long={embed_dim: 8}"])
    assert ignored_keys(cfg) == (["data.bdf_preprocessing", "pretrain.long"]
                                 + [f"baselines.{k}" for k in cfg.raw["baselines"]])
    # original DEAP recordings use bdf_preprocessing; a .dat beside them wins
    (tmp_path / "s01.bdf").write_bytes(b"")
    cfg = load_config("tiny", [f"data.root={tmp_path}"])
    # (the default pipelines, physiosync and bandpower, read no other baseline's options)
    others = [f"baselines.{k}" for k in cfg.raw["baselines"] if k != "bandpower"]
    assert ignored_keys(cfg) == others
    assert yaml.safe_load(dump_config(cfg)).get("run", {}).get("ignored", []) == others
    (tmp_path / "s01.dat").write_bytes(b"")
    assert ignored_keys(cfg) == ["data.bdf_preprocessing"] + others


def test_ignored_keys_follow_what_each_pipeline_kind_reads(monkeypatch):
    from physiosync import config as config_module
    from physiosync.config import PIPELINE_KIND_READS, ignored_keys

    # every configured kind declares what it reads
    assert {s["kind"] for s in config_module.PIPELINES.values()} == set(PIPELINE_KIND_READS)
    # a signal-free baseline alone reads none of pretrain, finetune or baselines
    cfg = load_config("tiny", ["pipelines=[stimulus-prior]"])
    assert ignored_keys(cfg) == (["data.bdf_preprocessing", "pretrain"]
                                 + [f"finetune.{k}" for k in cfg.raw["finetune"]]
                                 + [f"baselines.{k}" for k in cfg.raw["baselines"]])
    # a kind that declares nothing it reads (reads=None) may read anything
    from physiosync.pipeline_specs import PIPELINE_KIND_SPECS, BandPowerParams, PipelineKindSpec

    monkeypatch.setitem(PIPELINE_KIND_SPECS, "toy", PipelineKindSpec("toy", "toy:TOY", "toy"))
    cfg = load_config("tiny", ["pipelines=[toy]", "pretrain.long={embed_dim: 8}"])
    assert ignored_keys(cfg) == ["data.bdf_preprocessing"]
    # a kind that reads the band-power options and nothing else
    monkeypatch.setitem(PIPELINE_KIND_SPECS, "toy", PipelineKindSpec(
        "toy", "toy:TOY", "toy", reads=(), section="bandpower", params=BandPowerParams))
    assert PIPELINE_KIND_READS["toy"] == ("baselines.bandpower",)
    cfg = load_config("tiny", ["pipelines=[toy]"])
    assert ignored_keys(cfg) == (["data.bdf_preprocessing", "pretrain"]
                                 + [f"finetune.{k}" for k in cfg.raw["finetune"]]
                                 + [f"baselines.{k}" for k in cfg.raw["baselines"]
                                    if k != "bandpower"])


@pytest.mark.parametrize("name, target, baseline", [
    ("deap", "valence", "deviation"), ("dreamer", "valence", "deviation"),
    ("amigos", "valence", "deviation"), ("mahnob", "valence", "deviation"),
    ("seed", "emotion", "none"), ("seed-iv", "emotion", "none")])
def test_unset_target_and_baseline_follow_the_dataset(name, target, baseline):
    cfg = load_config(None, [f"data.name={name}"])
    assert (cfg.data.target, cfg.data.baseline) == (target, baseline)
    # the resolved values are written down, and a pipeline's re-validation keeps them
    assert (cfg.raw["data"]["target"], cfg.raw["data"]["baseline"]) == (target, baseline)
    again = load_config(None, [f"data.name={name}", "pipelines=[physiosync, bandpower]"])
    assert again.raw["data"] == cfg.raw["data"]


def test_an_explicit_target_or_baseline_is_kept_and_checked_against_the_dataset():
    assert load_config(None, ["data.name=seed", "data.baseline=mean"]).data.baseline == "mean"
    with pytest.raises(ConfigError, match="target 'valence' does not exist in SEED; it has "
                                          "emotion"):
        load_config(None, ["data.name=seed", "data.target=valence"])
    # a preset that sets valence keeps it on another dataset, where it is checked
    with pytest.raises(ConfigError, match="target 'valence' does not exist in SEED"):
        load_config([CONFIGS / "deap_within.yaml"], ["data.name=seed"])
