"""A categorical target on EEG-only data recorded in sessions, end to end: a toy SEED (three
classes, three sessions that show the same clips, no peripheral signal) through the
configuration, the folds, every kind of pipeline and the report."""

import numpy as np
import pandas as pd
import pytest
import yaml

from physiosync.config import ConfigError, load_config
from physiosync.dataset_specs import DATASET_SPECS, DatasetSpec
from physiosync.datasets import DEAP, Recording
from physiosync.synthetic import make_deap

N_CLIPS, N_SESSIONS = 3, 3
CLASSES = ("negative", "neutral", "positive")


class ToySeed(DEAP):
    """The EEG of a small synthetic DEAP folder, as a SEED-like study: trial ``t`` is clip
    ``t % 3`` of session ``t // 3 + 1``, and its class is the clip's (as on SEED)."""

    name = "TOYSEED"
    modalities = ("eeg",)
    root_description = "toy folder"

    def load_subject(self, subject):
        rec = super().load_subject(subject)
        trials = rec.ratings.index.to_numpy()
        ratings = pd.DataFrame({"emotion": trials % N_CLIPS, "stimulus": trials % N_CLIPS},
                               index=rec.ratings.index)
        return Recording(subject, dataset=self.name, source=rec.source,
                         modalities={"eeg": rec.info("eeg")},
                         baseline={"eeg": rec.baseline_array("eeg")},
                         stimulus={"eeg": rec.stimulus_array("eeg")}, ratings=ratings,
                         sessions=[str(1 + t // N_CLIPS) for t in trials])


TOY_SEED = DatasetSpec(
    "toyseed", "TOYSEED", f"{__name__}:ToySeed", modalities=("eeg",),
    default_modalities=("eeg",), rating_scale=None, threshold=None, targets=("emotion",),
    root_description="toy folder", sessions=("1", "2", "3"),
    classes={"emotion": CLASSES}, session_train_trials=2)


@pytest.fixture
def toy_seed(monkeypatch):
    monkeypatch.setitem(DATASET_SPECS, "toyseed", TOY_SEED)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return make_deap(tmp_path_factory.mktemp("toyseed") / "d", n_subjects=4,
                     n_trials=N_CLIPS * N_SESSIONS, seconds=10, effect=3.0, seed=2)


def _config(root, tmp_path, *extra):
    return load_config("tiny", [
        "data.name=toyseed", f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}",
        "data.target=emotion", "data.modalities=null", "protocol.one_class=constant",
        "device=cpu", *extra])


def test_a_categorical_study_on_sessions_runs_every_pipeline_kind(toy_seed, root, tmp_path):
    from physiosync.experiment import run_experiment

    cfg = _config(root, tmp_path, "protocol.name=cross-session", "protocol.permutations=20",
                  "pipelines=[physiosync, simclr, bandpower, de-lr, de-svm, stimulus-prior]")
    out = run_experiment(cfg, tmp_path / "run", verbose=False, html=False)
    report = out["report"]
    assert report["n_classes"] == 3 and report["class_names"] == list(CLASSES)
    assert "same clips" in report["caveat"]
    for name, part in report["pipelines"].items():
        headline = part["headline"]
        assert headline["metric"] == "subject.macro_f1", name
        assert 0 <= headline["mean"] <= 1 and headline["chance"] is not None, name
        assert "subject.balanced_accuracy" in part["summary"], name
        assert part["p_value"]["null_name"] == "within-subject", name
        assert np.shape(part["confusion"]["window"]) == (3, 3), name
        # one fold per session, each testing every subject on that session's three clips
        assert [len(f["test"]) for f in part["folds"]] == [4 * N_CLIPS] * N_SESSIONS
    # the clips of the test session are in training: the stimulus prior names them all
    assert report["pipelines"]["stimulus-prior"]["headline"]["mean"] == 1.0
    # EEG-only pre-training is said, in the report and in config.yaml
    text = report["pipelines"]["physiosync"]["model"]["text"]
    assert "on EEG alone, without CM-CA: TOYSEED has no peripheral signal" in text
    written = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert written["run"]["notes"] == [
        "TOYSEED records EEG only: PhysioSync pre-trains LS-TCL on the EEG alone, without "
        "CM-CA (the eeg-only ablation's objective)."]
    assert "train_trials" not in written["protocol"]  # only session-split reads it


def test_the_declared_classes_count_even_when_absent_and_the_seed_split(toy_seed, root,
                                                                       tmp_path):
    from physiosync.experiment import plan_experiment
    from physiosync.experiment.data import load_experiment_data
    from physiosync.experiment.planning import plan_folds

    cfg = _config(root, tmp_path, "protocol.name=session-split")
    data = load_experiment_data(cfg, verbose=False)
    assert data.n_classes == data.slots.n_classes == 3
    # the declared classes, whatever the labels present (here class 2 is dropped)
    data.labels[data.labels == 2] = 1
    assert data.n_classes == 3
    # session-split, its default from the dataset: the first 2 clips of each session train
    (fold,) = plan_folds(cfg, data)
    assert sorted(set(fold.test[:, 1] % N_CLIPS)) == [2]
    assert sorted(set(np.vstack([fold.train, fold.val])[:, 1] % N_CLIPS)) == [0, 1]
    (fold,) = plan_folds(_config(root, tmp_path, "protocol.name=session-split",
                                 "protocol.train_trials=1"), data)
    assert sorted(set(fold.test[:, 1] % N_CLIPS)) == [1, 2]
    plan = plan_experiment(_config(root, tmp_path, "protocol.name=within-loto",
                                   "pipelines=[bandpower]"), verbose=False)
    assert len(plan["folds"]) == N_CLIPS  # one fold per clip, held out in all sessions


def test_configurations_the_dataset_cannot_run_are_refused_in_one_line(toy_seed, root,
                                                                       tmp_path):
    for extra, said in (
            (["data.modalities=[eeg, gsr]"], "config key 'data.modalities': TOYSEED has no gsr; "
                                             "it has eeg."),
            (["finetune.modalities=[eeg, ecg]"], "config key 'finetune.modalities': TOYSEED has "
                                                 "no ecg"),
            (["data.target=valence"], "target 'valence' does not exist in TOYSEED; it has "
                                      "emotion")):
        with pytest.raises(ConfigError, match=said.replace("(", r"\(").replace(")", r"\)")):
            _config(root, tmp_path, *extra)
    for protocol, said in (("cross-session", "protocol 'cross-session' tests on held-out "
                                             "sessions, but DEAP was recorded in one session"),
                           ("session-split", "protocol 'session-split' needs "
                                             "protocol.train_trials")):
        with pytest.raises(ConfigError, match=said):
            load_config("tiny", [f"protocol.name={protocol}"])
    cfg = load_config("tiny", ["protocol.name=session-split", "protocol.train_trials=30"])
    assert cfg.protocol.train_trials == 30 and cfg.raw["protocol"]["train_trials"] == 30
    # unread, it is left out of config.yaml (and listed as ignored where it was given)
    from physiosync.config import ignored_keys

    assert "train_trials" not in load_config("tiny").raw["protocol"]
    assert "protocol.train_trials" in ignored_keys(load_config("tiny", [
        "protocol.train_trials=3"]))
