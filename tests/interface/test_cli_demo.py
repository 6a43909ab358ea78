"""``physiosync demo --dataset NAME``: a synthetic copy in the dataset's real format, studied.

The whole pipeline on DEAP (the default) is tested in test_cli.py; here each other dataset
runs at the smallest size that still goes through every stage (tiny model, 2 folds), and
the default demo is checked to resolve the configuration it resolved before ``--dataset``.
"""

import json

import pytest

from physiosync.cli import main
from physiosync.cli._demo import DEMO_DATA, demo_datasets
from physiosync.config import PRESETS, dump_config, load_config
from physiosync.dataset_specs import DATASET_SPECS
from physiosync.exceptions import PhysioSyncError


def _mat_v5(path) -> bool:
    return path.read_bytes()[:19] == b"MATLAB 5.0 MAT-file"


def _bdf(path) -> bool:
    return path.read_bytes()[:8] == b"\xffBIOSEMI"


# 2 s windows (1 s short ones) keep the clips short: the tiny model's LS-TCL batch needs
# four (clip, window) slots seen by two subjects of a fold's training units
WINDOWS = ["--set", "data.long_seconds=2", "--set", "data.n_sub=2"]
# dataset, its smallest demo (every stage runs), the files of the real format it must write
# (under --out)
SMALL = {
    "dreamer": (["--subjects", "3", "--trials", "6", "--seconds", "8"],
                {"DREAMER.mat": _mat_v5}),
    # P01 holds a NaN trial, P02 an empty one (the release's quirks, skipped by the reader)
    "amigos": (["--subjects", "3", "--trials", "8", "--seconds", "8"],
               {"AMIGOS/Data_Preprocessed_P01/Data_Preprocessed_P01.mat": _mat_v5,
                "AMIGOS/Data_Preprocessed_P03/Data_Preprocessed_P03.mat": _mat_v5}),
    # subject 2 misses one of its trials, subject 4 has no usable session (the quirks)
    "mahnob": (["--subjects", "3", "--trials", "6", "--seconds", "8"],
               {"MAHNOB-HCI/Sessions/2/session.xml": lambda p: "<session" in p.read_text(),
                "MAHNOB-HCI/Sessions/2/Part_1_S_Trial1_emotion.bdf": _bdf}),
    # every clip of every session (the reader warns about files that lack some)
    "seed": (["--subjects", "2", "--seconds", "6"],
             {"SEED_EEG/Preprocessed_EEG/1_20131027.mat": _mat_v5,
              "SEED_EEG/Preprocessed_EEG/label.mat": _mat_v5}),
    "seed-iv": (["--subjects", "2", "--seconds", "6"],
                {"SEED_IV/eeg_raw_data/1/1_20160518.mat": _mat_v5,
                 "SEED_IV/eeg_raw_data/3/2_20151012.mat": _mat_v5,
                 "SEED_IV/ReadMe.txt": lambda p: "session3_label" in p.read_text()}),
}


def test_every_dataset_with_a_writer_has_a_demo_whose_clips_hold_a_window():
    writers = tuple(n for n, s in DATASET_SPECS.items() if n in s.synthetic)
    assert demo_datasets() == writers and set(DEMO_DATA) == set(writers)
    assert set(SMALL) == set(writers) - {"deap"}  # DEAP's demo: test_cli.py
    window = PRESETS["demo"]["data"]["long_seconds"]
    for name, demo in DEMO_DATA.items():
        clips = [demo.seconds] if demo.clips is None else demo.clips(demo.trials,
                                                                     demo.seconds, 0)
        assert min(clips) >= window, name


@pytest.mark.parametrize("name", list(SMALL))
def test_demo_of_each_dataset_runs_end_to_end_on_its_real_format(name, tmp_path, capsys):
    options, files = SMALL[name]
    spec = DATASET_SPECS[name]
    out = tmp_path / "demo"
    assert main(["demo", "--dataset", name, "--out", str(out), *options, "--config", "tiny",
                 "--set", "protocol.n_splits=2", *WINDOWS, "--no-estimate", "-q"]) == 0
    text = capsys.readouterr().out
    for path, real_format in files.items():
        assert (out / path).is_file() and real_format(out / path), path
    said = text.splitlines()[1]
    assert said.startswith(f"1/3 writing a synthetic {spec.display_name} set ({options[1]} "
                           "subjects x ")
    assert (" x 3 sessions x " in said) == (len(spec.sessions) > 1)
    target = spec.default_target
    classes = spec.classes.get(target)
    assert f"target {target}" + (f" ({', '.join(classes)})" if classes else "") in text
    assert (spec.eeg_only_note() in text) == spec.eeg_only
    report = json.loads((out / "run" / "report.json").read_text())
    assert report["data"]["dataset"] == spec.display_name and report["target"] == target
    assert report["class_names"] == list(spec.class_names(target))
    assert (out / "run" / "report.html").is_file()
    assert text.strip().splitlines()[-1] == f"report: {out / 'run' / 'report.html'}"


def test_default_demo_resolves_the_configuration_and_data_it_did_before(monkeypatch,
                                                                         tmp_path, capsys):
    import physiosync.experiment
    import physiosync.synthetic.deap

    written, seen = [], []

    def make_deap(out, **kw):
        written.append((out, kw))
        out.mkdir(parents=True)
        return out

    def run_experiment(cfg, out, **kw):
        seen.append(cfg)
        raise PhysioSyncError("stopped before training")

    monkeypatch.setattr(physiosync.synthetic.deap, "make_deap", make_deap)
    monkeypatch.setattr(physiosync.experiment, "run_experiment", run_experiment)
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "-q"]) == 2
    data = out / "data_preprocessed_python"
    # what `physiosync demo` wrote and resolved before --dataset (main at 54dbb3f)
    assert written == [(data, dict(n_subjects=6, n_trials=12, seconds=30.0, effect=3.0,
                                   seed=0, synchrony=1.0, affect="static",
                                   affect_share=None, control="none"))]
    before = load_config(["demo"], None, data={"name": "deap", "root": str(data),
                                               "cache_dir": str(out / "cache")}, seed=0)
    assert dump_config(seen[0]) == dump_config(before)
    assert capsys.readouterr().out.splitlines()[1:3] == [
        "1/3 writing a synthetic DEAP set (6 subjects x 12 videos x 30 s, effect 3, synchrony "
        f"1, affect static) to {data}",
        "2/3 cross-validating physiosync, no-pretrain, bandpower (within-trial-kfold, 4 folds, "
        "target valence): prepare, pre-train, fine-tune, predict"]


@pytest.mark.parametrize("name, options, said", [
    ("seed", ["--affect", "dynamics"], "--affect dynamics needs rated trials, and SEED has "
                                       "emotion classes only"),
    ("seed-iv", ["--affect", "dynamics"], "SEED-IV has emotion classes only"),
    ("amigos", ["--affect-share", "0.3"], "apply to affect='dynamics' only"),
    ("dreamer", ["--trials", "0"], "--trials and --seconds must be positive, got 6, 0 and 30"),
])
def test_an_option_the_writer_cannot_take_is_one_line_before_anything_is_written(
        name, options, said, tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--dataset", name, "--out", str(out), *options, "-q"]) == 2
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("physiosync: error: ") and said in lines[0]
    assert captured.out == "" and not out.exists()
