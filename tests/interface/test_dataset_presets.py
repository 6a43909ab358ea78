"""The presets of AMIGOS, MAHNOB-HCI, SEED and SEED-IV run end to end on tiny synthetic
copies in the real formats (layered under ``tiny``, with the fast estimators), and their
reports say what the presets promise: protocol, target and classes, sessions, the
EEG-only pre-training note, and a stimulus-prior score that shows where a protocol lets
the clip give the label away."""

import json

import pytest
import yaml

from physiosync.cli import main
from physiosync.config import PRESETS, load_config
from physiosync.dataset_specs import DATASET_SPECS

#: (dataset, synth arguments, extra cv options) of the tiny copies: 4 subjects, short clips;
#: SEED's and SEED-IV's clips are a few seconds, so their windows are shortened.
TINY = {
    "amigos": (["--subjects", "4", "--trials", "8", "--seconds", "12"], []),
    "mahnob": (["--subjects", "4", "--trials", "8", "--seconds", "12"], []),
    "seed": (["--subjects", "3", "--seconds", "12"],
             ["--set", "data.long_seconds=2", "--set", "data.n_sub=2"]),
    "seed-iv": (["--subjects", "3", "--seconds", "12"],
                ["--set", "data.long_seconds=2", "--set", "data.n_sub=2"]),
}
#: The presets of the four datasets, except the baseline suites (validated with all their
#: pipelines by test_config.py; their protocol is the ``_within`` one, run here).
RUNS = sorted(p for p in PRESETS if p.split("_")[0] in ("amigos", "mahnob", "seed")
              and not p.endswith("_baselines"))


def _dataset(preset: str) -> str:
    return load_config(preset).data.name


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    """One tiny synthetic copy per dataset, written by ``physiosync synth``."""
    root = tmp_path_factory.mktemp("copies")
    paths = {}
    for name, (synth, _) in TINY.items():
        assert main(["synth", name, str(root / name), *synth]) == 0
        paths[name] = root / name / ("Preprocessed_EEG" if name == "seed" else "")
    return paths, root / "cache"


def test_every_dataset_with_a_writer_has_within_cross_and_baseline_presets():
    for name, spec in DATASET_SPECS.items():
        key = name.replace("-", "_")
        assert {f"{key}_within", f"{key}_cross", f"{key}_baselines"} <= set(PRESETS), name
        if len(spec.sessions) > 1:
            assert f"{key}_cross_session" in PRESETS
            assert load_config(f"{key}_cross_session").protocol.name == "cross-session"
        for suffix in ("within", "cross", "baselines"):
            cfg = load_config(f"{key}_{suffix}")
            assert cfg.data.name == name and cfg.data.target == spec.default_target
            assert set(cfg.data.modalities) <= set(spec.modalities)
            assert cfg.data.baseline == ("deviation" if spec.has_baseline else "none")


@pytest.mark.parametrize("preset", RUNS)
def test_preset_runs_on_its_tiny_synthetic_copy(preset, copies, tmp_path):
    paths, cache = copies
    name = _dataset(preset)
    spec = DATASET_SPECS[name]
    cfg = load_config(preset)
    folds = [] if cfg.protocol.name in ("loso", "cross-session", "session-split") \
        else ["--folds", "2"]
    out = tmp_path / "run"
    assert main(["cv", "--config", preset, "--config", "tiny", "--data-root",
                 str(paths[name]), "--out", str(out), "--cache-dir", str(cache), "-q",
                 "--threads", "1", "--pipelines", "bandpower,stimulus-prior",
                 "--set", "protocol.permutations=0", *folds, *TINY[name][1]]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["protocol"] == cfg.protocol.name and report["target"] == cfg.data.target
    assert report["data"]["dataset"] == spec.display_name and report["data"]["synthetic"]
    assert tuple(report["class_names"]) == spec.class_names(cfg.data.target)
    markdown = (out / "report.md").read_text()
    if len(spec.sessions) > 1:
        assert report["data"]["sessions"] == list(spec.sessions)
        assert "in 3 sessions (1, 2, 3)" in markdown
    else:
        assert "sessions" not in report["data"]
    assert "bandpower" in report["pipelines"] and "stimulus-prior" in report["pipelines"]
    prior = report["pipelines"]["stimulus-prior"]["headline"]["mean"]
    if preset == "seed_cross_session":
        # every session shows the same clips with the same classes: the clip alone tells
        # the label, and the baseline that knows only the clip scores perfectly
        assert prior == pytest.approx(1.0)
        assert report["caveat"]
    if preset == "seed_iv_cross_session":
        # each session shows clips of its own: knowing the clip gives nothing
        assert prior <= 1 / len(spec.classes["emotion"]) + 1e-9


def test_eeg_only_presets_say_that_pretraining_runs_without_cmca(copies, tmp_path):
    """The note is in the configuration written, and in the report's data line."""
    paths, cache = copies
    out = tmp_path / "run"
    assert main(["cv", "--config", "seed_within", "--config", "tiny", "--data-root",
                 str(paths["seed"]), "--out", str(out), "--cache-dir", str(cache), "-q",
                 "--threads", "1", "--pipelines", "physiosync", "--folds", "2",
                 *TINY["seed"][1]]) == 0
    note = DATASET_SPECS["seed"].eeg_only_note()
    assert yaml.safe_load((out / "config.yaml").read_text())["run"]["notes"] == [note + "."]
    assert note in (out / "report.md").read_text()
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["notes"] == [note + "."]
