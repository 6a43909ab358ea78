"""Extension points: the dataset, protocol and pipeline-kind registries.

Each test adds a toy entry to one registry (monkeypatched) and runs it through the
code that uses the registry, to show that extending needs the new class plus one line.
"""

import json
import subprocess
import sys
import typing
from dataclasses import dataclass

import numpy as np
import pytest
from sklearn.dummy import DummyClassifier

import physiosync.evaluation.runner as cv
from physiosync import config as config_module
from physiosync import params, pipeline_specs
from physiosync.dataset_specs import DATASET_SPECS, DatasetSpec, synthetic_writer
from physiosync.datasets import DATASETS, DEAP, BaseDataset, Recording, open_dataset
from physiosync.evaluation import pipelines, protocols
from physiosync.evaluation.protocols import PROTOCOLS, Fold, Protocol, get_protocol, make_folds
from physiosync.exceptions import ConfigError, DataNotFoundError, PhysioSyncError
from physiosync.experiment import run_experiment
from physiosync.params import PrepareParams
from physiosync._utils.checks import Options, validate_params
from physiosync.preprocessing.cache import cache_key, prepare
from physiosync.preprocessing.windows import make_windows
from physiosync.synthetic import make_deap
from physiosync.training.sampling import SlotData


@pytest.fixture(scope="module")
def deap_root(tmp_path_factory):
    return make_deap(tmp_path_factory.mktemp("reg") / "deap", n_subjects=3, n_trials=6,
                     seconds=10, effect=3.0, seed=5)


# ---- datasets ---------------------------------------------------------------------------
class ToyDataset(BaseDataset):
    """A toy reader: the first two subjects of a DEAP folder, under another name, with
    each subject's trials split into two sessions (``"a"``: the first half, ``"b"``)."""

    name = "TOY"
    modalities = DEAP.modalities
    format = "dat"
    root_description = "toy folder"

    def __init__(self, root):
        self._deap = DEAP(root)

    @property
    def subjects(self):
        return self._deap.subjects[:2]

    def load_subject(self, subject):
        rec = self._deap.load_subject(subject)
        half = rec.n_trials // 2
        arrays = {m: {"baseline": rec.baseline_array(m), "stimulus": rec.stimulus_array(m)}
                  for m in rec.modalities}
        return Recording(subject, dataset=self.name, source=rec.source,
                         modalities={m: rec.info(m) for m in rec.modalities},
                         baseline={m: a["baseline"] for m, a in arrays.items()},
                         stimulus={m: a["stimulus"] for m, a in arrays.items()},
                         ratings=rec.ratings,
                         sessions=["a"] * half + ["b"] * (rec.n_trials - half))

    def subject_file(self, subject):
        return self._deap.subject_file(subject)

    def source_files(self, subjects=None):
        return self._deap.source_files(subjects or self.subjects)


def write_toy(out, **kwargs):
    """The toy's synthetic writer: a small DEAP folder."""
    return make_deap(out, **{"n_subjects": 2, "n_trials": 4, "seconds": 10, **kwargs})


#: The toy's one declaration: its own threshold, targets, default modalities, sessions
#: and synthetic writer, so that each is seen to reach the code that reads it.
TOY_DATASET = DatasetSpec(
    "toy", "TOY", f"{__name__}:ToyDataset", modalities=DEAP.modalities,
    default_modalities=("eeg", "resp"), rating_scale=(1, 9), threshold=6.0,
    targets=("valence", "arousal"), root_description="toy folder",
    synthetic={"toy": f"{__name__}:write_toy"}, sessions=("a", "b"))


def test_every_declared_dataset_agrees_with_its_reader_and_writers():
    assert tuple(DATASETS) == tuple(params.DATASETS) == tuple(DATASET_SPECS)
    for name, spec in DATASET_SPECS.items():
        reader = DATASETS[name]
        assert issubclass(reader, BaseDataset) and reader is spec.load_reader()
        assert (reader.name, reader.modalities, reader.root_description) == (
            spec.display_name, spec.modalities, spec.root_description)
        assert params.THRESHOLDS[name] == params.THRESHOLDS[spec.display_name] == spec.threshold
        assert params.default_modalities(spec.display_name) == spec.default_modalities
        for kind in spec.synthetic:
            assert callable(synthetic_writer(kind))
    # one key form (the configuration name); the display name finds the same entry
    assert dict(params.THRESHOLDS) == {n: s.threshold for n, s in DATASET_SPECS.items()}
    assert (params.THRESHOLDS["deap"], params.THRESHOLDS["dreamer"]) == (5.0, 3.0)
    assert params.DATASET_TARGETS["DREAMER"] == ("valence", "arousal", "dominance", "four")
    with pytest.raises(KeyError, match="Unknown dataset 'DEEP'.*Did you mean 'deap'"):
        params.THRESHOLDS["DEEP"]
    assert "DEEP" not in params.THRESHOLDS and params.THRESHOLDS.get("DEEP") is None


def test_importing_a_spec_never_imports_its_reader():
    code = ("import sys; from physiosync import params; "
            "params.dataset_spec('DREAMER').threshold; params.DataConfig(name='dreamer'); "
            "print(sorted(m for m in sys.modules if m.startswith('physiosync.datasets') "
            "or m.startswith('physiosync.synthetic') or m == 'torch'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_a_spec_is_checked_when_declared():
    with pytest.raises(PhysioSyncError, match="threshold 10.0 must lie in the rating scale"):
        DatasetSpec("x", "X", "m:X", ("eeg",), ("eeg",), (1, 9), 10.0, ("valence",), "x")
    with pytest.raises(PhysioSyncError, match="targets must be among"):
        DatasetSpec("x", "X", "m:X", ("eeg",), ("eeg",), (1, 9), 5.0, ("joy",), "x")
    with pytest.raises(PhysioSyncError, match="default_modalities must start with 'eeg'"):
        DatasetSpec("x", "X", "m:X", ("eeg", "ecg"), ("ecg",), (1, 9), 5.0, ("valence",), "x")


def test_a_recording_names_its_sessions_among_the_declared_ones():
    import pandas as pd

    from physiosync.datasets import ModalityInfo
    from physiosync.exceptions import DataFormatError

    def recording(dataset, sessions):
        x = np.zeros((2, 1, 8))
        return Recording(1, dataset=dataset, source="x.mat",
                         modalities={"eeg": ModalityInfo.standard("eeg", 8.0, ["Cz"])},
                         baseline={"eeg": x}, stimulus={"eeg": x},
                         ratings=pd.DataFrame({"valence": [1.0, 5.0]}), sessions=sessions)

    assert recording("DREAMER", None).sessions.tolist() == ["0", "0"]  # recorded once
    with pytest.raises(DataFormatError, match=r"session\(s\) \['1'\] are not among the "
                                              r"sessions declared for DREAMER \(0\)"):
        recording("DREAMER", ["0", "1"])
    with pytest.raises(DataFormatError, match="1 session names for 2 trials"):
        recording("DREAMER", ["0"])
    assert recording("UNDECLARED", ["x", "y"]).sessions.tolist() == ["x", "y"]


def test_a_dataset_declared_once_is_read_everywhere(deap_root, tmp_path, monkeypatch,
                                                    capsys):
    from physiosync.cli import build_parser, main
    from physiosync.experiment import load_experiment_data

    monkeypatch.setitem(DATASET_SPECS, "toy", TOY_DATASET)
    # the reader, through the normal load path
    ds = open_dataset("toy", deap_root)
    assert isinstance(ds, ToyDataset) and len(ds) == 2 and repr(ds) == "<TOY dat: 2 subjects>"
    assert [rec.subject for rec in ds] == [1, 2]
    prepared = prepare(ds, cache_dir=tmp_path / "cache")  # the spec's default modalities
    assert list(prepared) == [1, 2] and prepared[1].modalities == ("eeg", "resp")
    assert sorted(p.name[:6] for p in (tmp_path / "cache").iterdir()) == ["TOY-s0", "TOY-s0"]
    # the same files read by another reader are another cache entry
    key, material = cache_key(ds, 1, PrepareParams())
    assert material["dataset"] == "TOY" and material["format"] == "dat"
    assert key != cache_key(DEAP(deap_root), 1, PrepareParams())[0]
    again = prepare(ds, cache_dir=tmp_path / "cache")  # served from the cache
    np.testing.assert_array_equal(again[2].data["eeg"], prepared[2].data["eeg"])
    # the sessions survive the cache and reach the windows' ids
    assert again[1].sessions.tolist() == ["a"] * 3 + ["b"] * 3
    meta = [json.loads(p.read_text()) for p in (tmp_path / "cache").glob("*/meta.json")]
    assert [m["sessions"] for m in meta] == [["a"] * 3 + ["b"] * 3] * 2
    # a dataset recorded once writes its cache entries as before sessions existed
    prepare(DEAP(deap_root), [1], cache_dir=tmp_path / "deap")
    (entry,) = (tmp_path / "deap").glob("*/meta.json")
    assert "sessions" not in json.loads(entry.read_text())
    X, y, ids = make_windows(again, lengths=(5.0,)).to_sklearn(5.0, "valence")
    assert sorted(set(zip(ids["session"], ids["trial"]))) == [
        ("a", 0), ("a", 1), ("a", 2), ("b", 3), ("b", 4), ("b", 5)]
    # its threshold labels the trials (6 here, not DEAP's 5)
    ratings = again[1].ratings["valence"].to_numpy()
    np.testing.assert_array_equal(again[1].labels("valence"), (ratings >= 6).astype(int))
    # configuration validation: its name, targets and data options
    cfg = config_module.load_config("tiny", [
        "data.name=toy", f"data.root={deap_root}", f"data.cache_dir={tmp_path / 'cache'}",
        "data.target=arousal", "data.modalities=null"])
    data = load_experiment_data(cfg, verbose=False)
    assert data.source["dataset"] == "TOY" and data.slots.modalities == ("eeg", "resp")
    # the training grid describes each unit with its session
    units = data.slots.description
    assert sorted(set(zip(units["session"], units["trial"]))) == [
        ("a", 0), ("a", 1), ("a", 2), ("b", 3), ("b", 4), ("b", 5)]
    with pytest.raises(ConfigError, match="target 'dominance' does not exist in TOY; it has "
                                          "valence, arousal"):
        config_module.load_config("tiny", ["data.name=toy", "data.target=dominance"])
    with pytest.raises(ConfigError, match="TOY holds its ratings in its own files"):
        config_module.load_config("tiny", ["data.name=toy", "data.ratings_csv=r.csv"])
    # the command line's choices, and its synthetic writer
    parser = build_parser()
    for command in (["cv", "--dataset", "toy"], ["info", "toy", "x"], ["prepare", "toy", "x"]):
        assert parser.parse_args(command).__dict__.get("dataset") == "toy"
    assert main(["synth", "toy", str(tmp_path / "synth"), "--seed", "1"]) == 0
    assert DEAP(tmp_path / "synth").subjects == [1, 2]
    assert main(["info", "toy", str(tmp_path / "synth")]) == 0
    assert "<TOY dat: 2 subjects>" in capsys.readouterr().out


def test_a_dataset_not_declared_is_refused_everywhere(capsys):
    from physiosync.cli import main

    assert "toy" not in params.DATASETS
    with pytest.raises(ConfigError, match="Unknown dataset 'toy'"):
        open_dataset("toy", ".")
    with pytest.raises(ConfigError, match="'data.name': invalid value 'toy'"):
        config_module.load_config("tiny", ["data.name=toy"])
    with pytest.raises(SystemExit):
        main(["synth", "toy", "out"])
    assert "invalid choice: 'toy'" in capsys.readouterr().err


def test_open_dataset_errors_name_the_value_and_what_to_do(tmp_path):
    with pytest.raises(ConfigError, match="Unknown dataset 'deep'.*Did you mean 'deap'"):
        open_dataset("deep", tmp_path)
    with pytest.raises(ConfigError, match="data.root is not set"):
        open_dataset("deap", None)
    with pytest.raises(DataNotFoundError, match="does not exist; expected the DREAMER.mat file"):
        open_dataset("dreamer", tmp_path / "nope.mat")


def test_a_reader_must_implement_the_interface():
    class Incomplete(BaseDataset):
        name = "X"

    with pytest.raises(TypeError, match="abstract"):
        Incomplete()


# ---- protocols --------------------------------------------------------------------------
def test_protocol_objects_know_what_they_hold_out():
    within = {n for n, p in PROTOCOLS.items() if p.within_subject}
    assert within == {"within-trial-kfold", "within-loto", "cross-session", "session-split"}
    assert [n for n, p in PROTOCOLS.items() if p.leaky] == ["legacy-segment"]
    assert get_protocol("legacy-segment").splits_windows
    assert not get_protocol("legacy-segment").per_subject_models
    assert get_protocol("within-loto").per_subject_models
    assert not get_protocol("loso").per_subject_models
    assert not get_protocol("loso").uses_n_splits and get_protocol("subject-kfold").uses_n_splits
    assert protocols.CAVEATS == {n: p.caveat for n, p in PROTOCOLS.items() if p.caveat}
    assert set(protocols.CROSS) == {"loso", "subject-kfold", "subject-stimulus-kfold"}
    with pytest.raises(PhysioSyncError, match="Unknown protocol 'los'.*Did you mean 'loso'"):
        get_protocol("los")


def test_protocol_registry_agrees_with_the_allowed_names_in_params():
    assert tuple(params.PROTOCOLS) == tuple(PROTOCOLS)
    # the flags are the traits config validation reads, not copies of them
    for name, protocol in PROTOCOLS.items():
        assert protocol.traits is params.PROTOCOL_TRAITS[name]


def test_a_protocol_registered_in_one_line_makes_folds(monkeypatch):
    def first_subject_out(units, *, n_splits, labels, val_size, seed, n_windows):
        test = units[units[:, 0] == units[0, 0]]
        rest = units[units[:, 0] != units[0, 0]]
        return [Fold(0, rest, rest[:0], test, rest, held_out=("subject",))]

    traits = params.ProtocolTraits("first-out", held_out=("subject",))
    monkeypatch.setitem(PROTOCOLS, "first-out", Protocol(traits, first_subject_out))
    units = np.array([[1, 0], [1, 1], [2, 0], [2, 1]])
    (fold,) = make_folds(units, "first-out")
    assert fold.test.tolist() == [[1, 0], [1, 1]] and fold.train.tolist() == [[2, 0], [2, 1]]


# ---- pipeline kinds ---------------------------------------------------------------------
def test_every_declared_pipeline_kind_loads_its_implementation():
    kinds = {spec["kind"] for spec in config_module.PIPELINES.values()}
    assert kinds == set(pipeline_specs.PIPELINE_KIND_SPECS) == set(pipelines.PIPELINE_KINDS)
    for kind in kinds:
        assert pipelines.get_pipeline_kind(kind).name == kind
    # the baselines sections config validates are those the kinds declare
    sections = {s.section for s in pipeline_specs.PIPELINE_KIND_SPECS.values() if s.section}
    assert set(config_module.load_config("tiny").baselines) == sections
    with pytest.raises(PhysioSyncError, match="no runner for pipeline kind 'svm'"):
        pipelines.get_pipeline_kind("svm")


def test_a_declaration_whose_implementation_is_missing_or_wrong_fails_clearly(monkeypatch):
    for where, why in (("physiosync.nowhere:KIND", "cannot load its implementation"),
                       ("physiosync.evaluation.pipelines:DE_LR", "not a PipelineKind named")):
        monkeypatch.setitem(pipeline_specs.PIPELINE_KIND_SPECS, "broken",
                            pipeline_specs.PipelineKindSpec("broken", where, "broken"))
        with pytest.raises(PhysioSyncError, match=f"pipeline kind 'broken'.*{why}"):
            pipelines.get_pipeline_kind("broken")
    with pytest.raises(PhysioSyncError, match="give both section and params"):
        pipeline_specs.PipelineKindSpec("x", "m:X", "x", section="x")
    with pytest.raises(PhysioSyncError, match="'module:attribute'"):
        pipeline_specs.PipelineKindSpec("x", "m.X", "x")
    monkeypatch.setitem(pipeline_specs.PIPELINE_KIND_SPECS, "clash", pipeline_specs.PipelineKindSpec(
        "clash", "m:X", "x", section="de", params=pipeline_specs.BandPowerParams))
    with pytest.raises(ConfigError, match="declares baselines.de with BandPowerParams"):
        config_module.load_config("tiny")


@pytest.fixture(scope="module")
def slots(deap_root):
    windows = make_windows(prepare(DEAP(deap_root), cache_dir=False), lengths=(5.0,))
    return SlotData.from_windows(windows, 5.0, target="valence")


def _units(data):
    s, t = np.nonzero(data.valid.any(axis=2))
    return np.column_stack([np.asarray(data.subjects)[s], np.asarray(data.trials)[t]])


class _RecordingClassifier(DummyClassifier):
    """DummyClassifier that records what ``fit`` received."""

    seen = []

    def fit(self, X, y, X_val=None, y_val=None):
        type(self).seen.append((sorted(X), np.shape(X["eeg"]), None if X_val is None
                                else np.shape(X_val["eeg"])))
        return super().fit(X["eeg"].reshape(len(y), -1), y)

    def predict_proba(self, X):
        return super().predict_proba(X["eeg"].reshape(len(X["eeg"]), -1))


def test_any_sklearn_classifier_runs_the_shared_fold_loop(slots, tmp_path):
    folds = make_folds(_units(slots), "within-trial-kfold", n_splits=3, seed=0)
    _RecordingClassifier.seen = []
    model = cv.EstimatorRunner(lambda: _RecordingClassifier(strategy="prior"),
                               modalities=("eeg",), validation="fit")
    results = cv.cross_validate(slots, folds, tmp_path, runner=cv.run_fold_with, model=model,
                                per_subject=True, one_class="constant", val_size=0.2, seed=0,
                                verbose=False)
    assert len(results) == 3
    n_eeg = slots.n_chans("eeg")
    for keys, x_shape, val_shape in _RecordingClassifier.seen:
        assert keys == ["eeg"] and x_shape[1] == n_eeg  # windows, (n, ch, t)
        assert val_shape is None or val_shape[1] == n_eeg
    assert any(v is not None for *_, v in _RecordingClassifier.seen)
    for record in results:
        pred = record["predictions"]
        assert len(pred) == sum(int(slots.valid[slots.subjects.index(s), slots.trials.index(t)]
                                    .sum()) for s, t in record["test"])
        assert record["channel_importance"] is None and record["curves"] == {}
    # the key holds the estimator's parameters: a finished fold is reused, a changed one not
    path = tmp_path / "fold_00.json"
    key = json.loads(path.read_text())["key"]
    again = cv.cross_validate(slots, folds[:1], tmp_path, runner=cv.run_fold_with,
                              model=model, per_subject=True, one_class="constant",
                              val_size=0.2, seed=0, verbose=False)
    assert again[0]["key"] == key
    other = cv.EstimatorRunner(lambda: _RecordingClassifier(strategy="uniform"),
                               modalities=("eeg",), validation="fit")
    changed = cv.cross_validate(slots, folds[:1], tmp_path, runner=cv.run_fold_with,
                                model=other, per_subject=True, one_class="constant",
                                val_size=0.2, seed=0, verbose=False)
    assert changed[0]["key"] != key


# A configurable baseline in one file (here, this test module) plus one declaration: the
# classifier, its parameters section and its kind, then the declaration alone registers it.
@dataclass
class ToyParams:
    """Options of the toy baseline (``baselines.toy``)."""

    strategy: str = "prior"

    _parameter_constraints: typing.ClassVar[dict] = {
        "strategy": Options(("prior", "uniform", "most_frequent"))}

    def __post_init__(self):
        validate_params(self)


TOY_PRIOR = pipelines.EstimatorKind(
    "toy-prior", lambda cfg, data: DummyClassifier(strategy=cfg.baselines["toy"]["strategy"]),
    inputs="units", text="the training class prior", uses_signal=False)

TOY_KIND = pipeline_specs.PipelineKindSpec(
    "toy-prior", f"{__name__}:TOY_PRIOR", "toy baseline: the training class prior",
    reads=(), section="toy", params=ToyParams)


@pytest.fixture
def toy_declared(monkeypatch):
    monkeypatch.setitem(pipeline_specs.PIPELINE_KIND_SPECS, "toy-prior", TOY_KIND)


def test_a_declared_baseline_is_known_to_config_cli_and_registry(toy_declared, capsys):
    from physiosync.cli import build_parser

    # config: its pipeline name, its parameters section with defaults, validation, reads
    assert config_module.PIPELINES["toy-prior"] == {
        "kind": "toy-prior", "set": {}, "doc": "toy baseline: the training class prior"}
    cfg = config_module.load_config("tiny", ["pipelines=[toy-prior]",
                                             "baselines.toy.strategy=most_frequent"])
    assert cfg.baselines["toy"] == {"strategy": "most_frequent"}
    assert config_module.load_config("tiny").baselines["toy"] == {"strategy": "prior"}
    assert "baselines.toy" not in config_module.ignored_keys(cfg)
    assert "baselines.toy" in config_module.ignored_keys(
        config_module.load_config("tiny"))  # no toy pipeline: its options are ignored
    with pytest.raises(ConfigError, match="baselines.toy.strategy"):
        config_module.load_config("tiny", ["baselines.toy.strategy=median"])
    with pytest.raises(ConfigError, match="unknown config key 'baselines.toy.C'"):
        config_module.load_config("tiny", ["baselines.toy.C=1"])
    # the CLI lists it
    with pytest.raises(SystemExit):
        build_parser().parse_args(["cv", "--help"])
    assert "toy-prior" in capsys.readouterr().out
    # the registry loads it
    assert pipelines.get_pipeline_kind("toy-prior") is TOY_PRIOR


def test_an_undeclared_baseline_section_is_refused():
    with pytest.raises(ConfigError, match="unknown config key 'baselines.toy'"):
        config_module.load_config("tiny", ["baselines.toy.strategy=prior"])


def test_a_declared_baseline_runs_in_an_experiment(deap_root, tmp_path, toy_declared,
                                                   monkeypatch):
    cfg = config_module.load_config("tiny", [
        f"data.root={deap_root}", f"data.cache_dir={tmp_path / 'cache'}",
        "pipelines=[toy-prior,stimulus-prior]", "protocol.name=within-trial-kfold",
        "protocol.n_splits=2", "protocol.one_class=constant"])
    # each pipeline is resolved once (its configuration and kind), then handed down
    calls = []
    for module, name in ((config_module, "pipeline_config"), (pipelines, "get_pipeline_kind")):
        real = getattr(module, name)
        monkeypatch.setattr(module, name, lambda *a, _real=real, _name=name, **k:
                            calls.append(_name) or _real(*a, **k))
    report = run_experiment(cfg, tmp_path / "run", verbose=False, html=False)["report"]
    assert sorted(calls) == ["get_pipeline_kind"] * 2 + ["pipeline_config"] * 2
    part = report["pipelines"]["toy-prior"]
    assert part["model"]["text"] == "the training class prior"
    assert part["model"]["modalities"] == [] and part["channel_importance"] is None
    run = tmp_path / "run" / "folds"
    for path in sorted((run / "toy-prior").glob("fold_*.json")):
        ours = json.loads(path.read_text())
        theirs = json.loads((run / "stimulus-prior" / path.name).read_text())
        assert ours["test"] == theirs["test"]  # same folds
        assert len(ours["predictions"]) == len(theirs["predictions"])
        for subject in {p["subject"] for p in ours["predictions"]}:  # one prior per model
            rows = {(p["p0"], p["p1"]) for p in ours["predictions"] if p["subject"] == subject}
            assert len(rows) == 1
    assert len(list((run / "toy-prior").glob("fold_*.json"))) == 2
