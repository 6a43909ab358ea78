"""braindecode's EEGNet, ShallowFBCSPNet and Deep4Net as pipelines (extra ``deep``)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from _numerics import above_chance, chance_band

from physiosync.config import (PIPELINES, PIPELINE_KIND_READS, load_config, pipeline_config,
                               used_config)
from physiosync.exceptions import ConfigError, PhysioSyncError, ShapeError
from physiosync.experiment import plan_experiment, run_experiment
from physiosync.synthetic import make_deap

pytest.importorskip("braindecode")

from physiosync.evaluation import deep  # noqa: E402
from physiosync.evaluation.deep import BraindecodeClassifier, build_network  # noqa: E402
from physiosync.evaluation.pipelines import PIPELINE_KINDS  # noqa: E402

KINDS = ("eegnet", "shallow-fbcsp", "deep4")


@pytest.fixture(scope="module")
def null_root(tmp_path_factory):
    return make_deap(tmp_path_factory.mktemp("deep") / "null", n_subjects=4, n_trials=8,
                     seconds=10, effect=0.0, seed=3, verbose=False)


def _toy(n=48, n_chans=4, n_times=256, seed=0, shift=1.5):
    """Windows whose class is a 10 Hz oscillation on channel 0 (a strong, learnable effect)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.standard_normal((n, n_chans, n_times)).astype(np.float32)
    t = np.arange(n_times) / 128.0
    x[:, 0] += shift * y[:, None] * np.sin(2 * np.pi * 10 * t + rng.uniform(0, 6, (n, 1)))
    return x, y


def _cfg(root, tmp_path, pipelines, *extra):
    return load_config("tiny", [
        f"data.root={root}", f"data.cache_dir={tmp_path / 'cache'}",
        f"pipelines=[{','.join(pipelines)}]", "protocol.n_splits=2",
        "protocol.one_class=constant", "device=cpu", "baselines.deep.epochs=2",
        "baselines.deep.batch_size=16", *extra])


def test_every_model_is_registered_as_a_pipeline_that_reads_baselines_deep():
    for kind in KINDS:
        assert PIPELINES[kind]["kind"] == kind
        assert PIPELINES[kind]["set"] == {"finetune.modalities": ["eeg"]}
        assert "baselines.deep" in PIPELINE_KIND_READS[kind]
        assert PIPELINE_KINDS[kind].validation == "fit"  # epochs selected on validation


@pytest.mark.parametrize("model,name", [("eegnet", "EEGNetv4"), ("shallow", "ShallowFBCSPNet"),
                                        ("deep4", "Deep4Net")])
def test_build_network_is_braindecodes_model_returning_logits(model, name):
    import torch
    import braindecode.models

    net = build_network(model, n_chans=32, n_times=640, n_outputs=3)
    assert type(net) is getattr(braindecode.models, name)
    net.eval()
    with torch.no_grad():
        out = net(torch.randn(5, 32, 640))
    assert out.shape == (5, 3)
    assert not torch.allclose(torch.logsumexp(out, 1), torch.zeros(5))  # logits, not log-probs


def test_deep4_refuses_windows_too_short_with_one_line():
    with pytest.raises(ShapeError, match=r"Deep4Net cannot be built for windows of 256 "
                                         r"samples.*Use longer windows"):
        build_network("deep4", 32, 256, 2)
    with pytest.raises(PhysioSyncError, match="Invalid model 'eegnet5'.*Did you mean 'eegnet'"):
        build_network("eegnet5", 32, 256, 2)


@pytest.mark.parametrize("model", ["eegnet", "shallow"])
def test_learns_a_strong_effect_on_held_out_windows(model):
    x, y = _toy(96)
    # small batches: EEGNet's batch normalisation (momentum 0.01) needs many steps
    clf = BraindecodeClassifier(model, n_epochs=12, batch_size=4, lr=3e-3, seed=0)
    clf.fit({"eeg": x[:64]}, y[:64], X_val={"eeg": x[64:80]}, y_val=y[64:80])
    acc = np.mean(clf.predict({"eeg": x[80:]}) == y[80:])
    assert acc > above_chance(len(y[80:])), clf.history_  # 16 independent windows


def test_same_seed_same_probabilities_and_epoch_selection_on_validation():
    x, y = _toy(40, n_times=128)
    kw = dict(n_epochs=4, batch_size=8, seed=7)
    a = BraindecodeClassifier("eegnet", **kw).fit(x[:24], y[:24], X_val=x[24:32], y_val=y[24:32])
    b = BraindecodeClassifier("eegnet", **kw).fit(x[:24], y[:24], X_val=x[24:32], y_val=y[24:32])
    pa, pb = a.predict_proba(x[32:]), b.predict_proba(x[32:])
    np.testing.assert_array_equal(pa, pb)
    np.testing.assert_allclose(pa.sum(1), 1.0, rtol=1e-6)
    other = BraindecodeClassifier("eegnet", **{**kw, "seed": 8}).fit(
        x[:24], y[:24], X_val=x[24:32], y_val=y[24:32])
    assert not np.allclose(other.predict_proba(x[32:]), pa)
    # "val_loss" keeps the epoch of the lowest validation loss, as PhysioSync's fine-tuning
    losses = [h["val_loss"] for h in a.history_]
    assert a.selected_epoch_ == int(np.argmin(losses))
    assert [h.get("selected", False) for h in a.history_].count(True) >= 1
    last = BraindecodeClassifier("eegnet", select="last", **kw).fit(
        x[:24], y[:24], X_val=x[24:32], y_val=y[24:32])
    assert last.selected_epoch_ == 3
    no_val = BraindecodeClassifier("eegnet", **kw).fit(x[:24], y[:24])
    assert no_val.selected_epoch_ == 3 and "val_loss" not in no_val.history_[0]


def test_classifier_checks_its_inputs():
    x, y = _toy(16, n_times=128)
    clf = BraindecodeClassifier("eegnet", n_epochs=1, batch_size=8)
    with pytest.raises(PhysioSyncError, match=r"X lacks modalities \['eeg'\]"):
        clf.fit({"gsr": x}, y)
    with pytest.raises(PhysioSyncError, match="one class only"):
        clf.fit(x, np.zeros(16, int))
    clf.fit(x, y)
    with pytest.raises(ShapeError, match="the network was trained on"):
        clf.predict_proba(x[:, :, :100])
    assert set(clf.get_params()) >= {"model", "n_epochs", "lr", "seed", "device", "select"}


def test_missing_braindecode_gives_one_line_before_any_training(null_root, tmp_path,
                                                                 hide_package):
    hide_package("braindecode")
    expected = ("the EEGNet/ShallowFBCSPNet baselines need braindecode: "
                "pip install 'physiosync[deep]'")
    with pytest.raises(PhysioSyncError) as err:
        deep.check_braindecode()
    assert str(err.value) == expected
    cfg = _cfg(null_root, tmp_path, ["bandpower", "eegnet"],
               "protocol.name=within-trial-kfold")
    with pytest.raises(PhysioSyncError, match=r"^pipeline 'eegnet': the EEGNet/Shallow") as err:
        run_experiment(cfg, tmp_path / "run", verbose=False, html=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run" / "folds").exists()  # refused before any fold ran


def test_import_physiosync_does_not_import_braindecode():
    code = ("import sys, physiosync, physiosync.config, physiosync.evaluation.pipelines; "
            "print('braindecode' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_deep4_on_short_windows_fails_preflight(null_root, tmp_path):
    cfg = _cfg(null_root, tmp_path, ["deep4"], "data.long_seconds=2.5",
               "protocol.name=within-trial-kfold")
    with pytest.raises(ShapeError, match=r"^pipeline 'deep4': braindecode's Deep4Net cannot"):
        plan_experiment(cfg, verbose=False)


def test_baselines_deep_is_validated_and_read_only_by_its_pipelines(null_root, tmp_path):
    with pytest.raises(ConfigError, match="baselines.deep.select"):
        load_config("tiny", ["baselines.deep.select=best"])
    with pytest.raises(ConfigError, match="baselines.deep.epochs"):
        load_config("tiny", ["baselines.deep.epochs=0"])
    plain = load_config("tiny", [f"data.root={null_root}", "pipelines=[bandpower]"])
    changed = load_config("tiny", [f"data.root={null_root}", "pipelines=[bandpower]",
                                   "baselines.deep.epochs=7"])
    assert used_config(plain) == used_config(changed)  # same run fingerprint
    assert "deep" not in used_config(plain)["baselines"]
    with_deep = load_config("tiny", [f"data.root={null_root}", "pipelines=[bandpower,eegnet]",
                                     "baselines.deep.epochs=7"])
    assert used_config(with_deep)["baselines"]["deep"]["epochs"] == 7


@pytest.mark.parametrize("protocol", ["within-trial-kfold", "subject-kfold"])
def test_runs_under_within_and_cross_subject_protocols_at_chance_on_null_data(
        null_root, tmp_path, protocol):
    """Same folds as the other pipelines; no signal, no score; device is not in the keys."""
    cfg = _cfg(null_root, tmp_path, ["bandpower", "eegnet", "shallow-fbcsp"],
               f"protocol.name={protocol}")
    report = run_experiment(cfg, tmp_path / "run", verbose=False, html=False)["report"]
    run = tmp_path / "run" / "folds"
    for name in ("eegnet", "shallow-fbcsp"):
        part = report["pipelines"][name]
        assert part["model"]["modalities"] == ["eeg"]
        assert "braindecode" in part["model"]["text"]
        low, high = chance_band(4 * 8)  # the binomial error of the 4 x 8 null trials
        assert low < part["headline"]["mean"] < high
        for path in sorted((run / name).glob("fold_*.json")):
            ours = json.loads(path.read_text())
            theirs = json.loads((run / "bandpower" / path.name).read_text())
            assert ours["test"] == theirs["test"] and ours["val"] == theirs["val"]
            assert len(ours["predictions"]) == len(theirs["predictions"])


def test_device_and_verbose_are_not_in_the_fold_keys():
    from types import SimpleNamespace

    data = SimpleNamespace(sfreq={"eeg": 128.0, "gsr": 128.0})
    keys = []
    for device in ("cpu", "cuda"):
        cfg = load_config("tiny", ["pipelines=[eegnet]", f"device={device}"])
        cfg = pipeline_config(cfg, cfg.pipelines[0])
        runner = PIPELINE_KINDS["eegnet"].fold_kwargs(cfg, data)["model"]
        keys.append(runner.hyperparameters())
    assert keys[0] == keys[1]
    assert "device" not in keys[0]["params"] and "verbose" not in keys[0]["params"]
    assert keys[0]["params"]["model"] == "eegnet" and keys[0]["modalities"] == ("eeg",)
    assert keys[0]["params"]["modalities"] == ("eeg",)


def test_refit_on_other_shapes_and_validation_must_match():
    x, y = _toy(16, n_times=128)
    clf = BraindecodeClassifier("eegnet", n_epochs=1, batch_size=8)
    clf.fit(x, y)
    clf.fit(x[:, :3], y)  # a refit starts afresh
    assert clf.predict_proba(x[:, :3]).shape == (16, 2)
    with pytest.raises(ShapeError, match="X_val has windows of shape"):
        clf.fit(x, y, X_val=x[:, :3], y_val=y)


@pytest.fixture(scope="module")
def strong_arousal_windows(tmp_path_factory):
    """5 s EEG windows of a strong-effect synthetic DEAP, split by stimulus: 3 of the 12
    videos held out for test and 2 for validation, for every subject (pooled)."""
    from physiosync.datasets import DEAP
    from physiosync.preprocessing.cache import prepare
    from physiosync.preprocessing.windows import make_windows
    from physiosync.training.sampling import SlotData

    root = make_deap(tmp_path_factory.mktemp("deep") / "strong", n_subjects=6, n_trials=12,
                     seconds=15, effect=3.0, seed=1, verbose=False)
    slots = SlotData.from_windows(make_windows(prepare(DEAP(root), cache_dir=False,
                                                       verbose=False), lengths=(5.0,)),
                                  5.0, target="arousal")
    units = slots.description[["subject", "trial"]].to_numpy()

    def part(trials):
        import torch

        cells = slots.cells(units[np.isin(units[:, 1], trials)])
        idx = torch.from_numpy(cells)
        return (slots.gather("eeg", idx[:, 0], idx[:, 1], idx[:, 2]).numpy(),
                slots.labels[cells[:, 0], cells[:, 1]])

    trials = np.unique(units[:, 1])
    return part(trials[:7]), part(trials[7:9]), part(trials[9:])


@pytest.mark.parametrize("model", ["eegnet", "shallow"])
def test_learns_the_synthetic_effect_on_held_out_stimuli(strong_arousal_windows, model):
    """The arousal effect (beta/gamma power, posterior alpha) of held-out videos is found.

    Measured on this data (balanced accuracy, seed 0, 20 epochs): with 2 steps per epoch
    (batch 64, lr 1e-3) EEGNet scored 0.39 with its own running statistics and 0.60
    with them re-estimated after each epoch (see ``deep``'s docstring); with the 8
    steps per epoch used here, 0.87 and 0.85. ShallowFBCSPNet: 0.74-0.77 either way.
    """
    from sklearn.metrics import balanced_accuracy_score

    (X, y), (Xv, yv), (Xt, yt) = strong_arousal_windows
    assert len(np.unique(yt)) == 2
    clf = BraindecodeClassifier(model, n_epochs=20, batch_size=16, lr=3e-3,
                                weight_decay=1e-2, seed=0)
    clf.fit(X, y, X_val=Xv, y_val=yv)
    score = balanced_accuracy_score(yt, clf.predict(Xt))
    # 3 held-out videos x 6 subjects: 18 independent units (tests/_numerics.py)
    assert score > above_chance(6 * 3), (score, clf.history_)


def test_batch_norm_statistics_are_those_of_the_training_windows():
    """After fit, the statistics are re-estimated over X: the first layer's running mean
    is its input's mean over X, and every layer counts the batches of one pass only."""
    import torch

    x, y = _toy(40, n_times=128)
    clf = BraindecodeClassifier("eegnet", n_epochs=2, batch_size=8, seed=0).fit(x, y)
    norms = [m for m in clf.network_.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    seen = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.setdefault(mod, inp[0]))
             for m in norms]
    with torch.no_grad():
        clf.network_(torch.from_numpy(x))
    for h in hooks:
        h.remove()
    assert len(seen) == len(norms) >= 2
    first = norms[0]
    np.testing.assert_allclose(first.running_mean.numpy(), seen[first].mean((0, 2, 3)).numpy(),
                               rtol=1e-4, atol=1e-6)
    assert [int(m.num_batches_tracked) for m in norms] == [5] * len(norms)  # 40 windows / 8
    assert [m.momentum for m in norms] == [0.01] * len(norms)  # braindecode's, restored


def test_losses_are_read_once_per_epoch_and_a_nan_names_its_epoch(monkeypatch):
    """The loop keeps an epoch's losses on the device and reads them once; the history's
    mean is that of the steps' losses, and a NaN loss stops the fit naming its epoch."""
    from physiosync.exceptions import TrainingDivergedError
    from physiosync.training.engine import EpochLosses

    x, y = _toy(n=40)
    reads, real = [], EpochLosses.read

    def counted(self):
        values = real(self)
        reads.append(values)
        return values

    monkeypatch.setattr(EpochLosses, "read", counted)
    clf = BraindecodeClassifier("shallow", n_epochs=2, batch_size=16, seed=0, device="cpu")
    clf.fit(x, y)
    assert [len(r) for r in reads] == [h["steps"] for h in clf.history_] == [3, 3]
    assert [h["train_loss"] for h in clf.history_] == [float(np.mean(r)) for r in reads]
    x[5] = np.nan  # a window of every epoch's batches
    with pytest.raises(TrainingDivergedError, match=r"ShallowFBCSPNet: the loss became nan in "
                                                    r"epoch 0; try a lower lr\.$"):
        BraindecodeClassifier("shallow", n_epochs=2, batch_size=16, device="cpu").fit(x, y)
