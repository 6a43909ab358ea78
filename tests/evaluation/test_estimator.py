"""PhysioSyncClassifier: scikit-learn compatibility, pre-training from ids, inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from physiosync import PhysioSyncError
from physiosync.estimators import InputShapeError, PhysioSyncClassifier

TINY = dict(n_sub=1, use_short=False, embed_dim=8, depth=1, n_heads=1, n_prompts=0,
            projector_dims=(16, 16), epochs=5, batch_size=16, lr=1e-2, val_size=0,
            random_state=0, pretrain=False, device="cpu")


# --------------------------------------------------------------- scikit-learn checks
@parametrize_with_checks([PhysioSyncClassifier(**TINY)])
def test_sklearn_compatible(estimator, check):
    check(estimator)


# ------------------------------------------------------------------- real windows
@pytest.fixture(scope="module")
def windows(strong_deap_slots):
    """Flat 5 s windows (EEG + GSR as 33 channels) with subject/trial/window ids."""
    data = strong_deap_slots
    s, t, w = np.nonzero(data.valid)
    x = torch.cat([data.x["eeg"], data.x["gsr"]], dim=3)[s, t, w].numpy()
    y = data.labels[s, t]
    subject = np.asarray(data.subjects)[s]
    trial = np.asarray(data.trials)[t]
    return x, y, subject, trial, w


def small(**kw):
    params = dict(n_eeg_channels=32, n_sub=5, embed_dim=20, depth=1, n_heads=2, n_prompts=1,
                  projector_dims=(16, 16), pretrain_steps=3, batch_slots=4, group_size=2,
                  epochs=2, batch_size=16, random_state=0, device="cpu")
    params.update(kw)
    return PhysioSyncClassifier(**params)


@pytest.fixture(scope="module")
def fitted(windows):
    x, y, subject, trial, w = windows
    return small().fit(x, y, subject=subject, trial=trial, window=w)


def test_fit_with_ids_pretrains_long_and_short(fitted, windows):
    x, y, *_ = windows
    est = fitted
    assert set(est.history_) == {"pretrain_long", "pretrain_short", "finetune"}
    assert len(est.history_["pretrain_long"]) == len(est.history_["pretrain_short"]) == 3
    assert len(est.history_["finetune"]) == 2
    # Fine-tuning selected its epoch on held-out training trials (val_size 0.2).
    assert all("val_loss" in h for h in est.history_["finetune"])
    assert set(est.pretrain_models_) == {"long", "short"}
    assert est.pretrain_models_["long"].encoders["eeg"].n_times == 640
    assert est.pretrain_models_["short"].encoders["pps"].n_times == 128
    assert est.input_shapes_ == {"eeg": (32, 640), "pps": (1, 640)}
    assert est.n_features_in_ == 33  # channels, scikit-learn's convention for n-d input
    np.testing.assert_array_equal(est.classes_, [0, 1])


def test_predict_proba_score_transform(fitted, windows):
    x, y, *_ = windows
    est = fitted
    proba = est.predict_proba(x)
    assert proba.shape == (len(x), 2) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    pred = est.predict(x)
    assert pred.shape == (len(x),) and set(pred) <= {0, 1}
    np.testing.assert_array_equal(pred, est.classes_[proba.argmax(1)])
    assert est.score(x, y) == pytest.approx(np.mean(pred == y))
    feats = est.transform(x)
    # (4 * 20 long + 5 sub-windows x 4 * 4 short) per modality, two modalities.
    assert feats.shape == (len(x), 2 * (80 + 5 * 16))
    assert np.isfinite(feats).all()
    # Batched prediction does not depend on how many windows are passed at once.
    np.testing.assert_allclose(est.predict_proba(x[:3]), proba[:3], rtol=1e-5, atol=1e-6)


def test_export_encoders(fitted, windows):
    x = windows[0]
    est = fitted
    fine = est.export_encoders()
    pre = est.export_encoders("pretrained")
    assert set(fine) == set(pre) == {"long", "short"}
    assert set(fine["long"]) == {"eeg", "pps"}
    for branch in ("long", "short"):
        for m in ("eeg", "pps"):
            want = est.pretrain_models_[branch].encoders[m].state_dict()
            got = pre[branch][m].state_dict()
            assert all(torch.equal(want[k], got[k]) for k in want)
    # Fine-tuning updated the pre-trained encoders end to end.
    w_fine = fine["long"]["eeg"].embed.value.weight
    assert not torch.equal(w_fine, pre["long"]["eeg"].embed.value.weight)
    # Exports are independent copies: changing one leaves the estimator intact.
    before = est.predict_proba(x[:4])
    with torch.no_grad():
        fine["long"]["eeg"].embed.value.weight.zero_()
        pre["short"]["eeg"].embed.value.weight.zero_()
    np.testing.assert_array_equal(est.predict_proba(x[:4]), before)
    assert est.pretrain_models_["short"].encoders["eeg"].embed.value.weight.abs().sum() > 0
    # An exported encoder is a plain module that encodes windows.
    enc = est.export_encoders()["short"]["eeg"].eval()
    assert enc(torch.from_numpy(x[:2, :32, :128])).shape == (2, 16)
    with pytest.raises(ValueError, match="which must be"):
        est.export_encoders("both")
    with pytest.raises(NotFittedError):
        small().export_encoders()


def test_pretraining_needs_ids(windows):
    x, y, subject, trial, w = windows
    est = small(epochs=1, pretrain="auto").fit(x, y)
    assert "pretrain_long" not in est.history_ and est.pretrain_models_ == {}
    with pytest.raises(PhysioSyncError, match="no pre-training ran"):
        est.export_encoders("pretrained")
    with pytest.raises(PhysioSyncError, match="needs subject and trial"):
        small(pretrain=True).fit(x, y)
    with pytest.raises(PhysioSyncError, match="both subject and trial"):
        small().fit(x, y, subject=subject)
    dup = np.zeros_like(w)
    with pytest.raises(PhysioSyncError, match="same .subject, trial, window. position"):
        small().fit(x, y, subject=subject, trial=trial, window=dup)
    # Too few subjects for two groups of group_size: "auto" skips pre-training.
    few = np.isin(subject, subject[:1]) | np.isin(subject, [subject.max()])
    est = small(epochs=1).fit(x[few], y[few], subject=subject[few], trial=trial[few])
    assert "pretrain_long" not in est.history_


def test_clone_and_params_round_trip():
    est = small(lr=3e-3, projector_dims=(8, 4))
    params = est.get_params()
    assert params["lr"] == 3e-3 and params["projector_dims"] == (8, 4)
    twin = clone(est)
    assert twin is not est and twin.get_params() == params
    twin.set_params(epochs=9, gate=False)
    assert twin.epochs == 9 and twin.gate is False and est.epochs == 2
    rebuilt = PhysioSyncClassifier(**twin.get_params())
    assert rebuilt.get_params() == twin.get_params()
    with pytest.raises(ValueError):
        est.set_params(not_a_parameter=1)


def test_clone_of_fitted_is_unfitted(fitted, windows):
    twin = clone(fitted)
    assert not hasattr(twin, "model_")
    with pytest.raises(NotFittedError):
        twin.predict_proba(windows[0][:2])


def test_dict_input_with_modalities_at_different_rates():
    rng = np.random.default_rng(0)
    n = 40
    y = np.repeat([0, 1], n // 2)
    eeg = rng.standard_normal((n, 4, 640)).astype(np.float32)
    ecg = rng.standard_normal((n, 1, 1280)).astype(np.float32)  # twice the EEG rate
    ecg[y == 1] += np.sin(np.linspace(0, 20 * np.pi, 1280, dtype=np.float32))
    est = small(n_eeg_channels=None, epochs=4, val_size=0, lr=3e-3)
    est.fit({"eeg": eeg, "ecg": ecg}, y)
    assert est.input_shapes_ == {"eeg": (4, 640), "ecg": (1, 1280)}
    assert est.model_.short["ecg"].n_times == 256 and est.model_.short["eeg"].n_times == 128
    proba = est.predict_proba({"eeg": eeg, "ecg": ecg})
    assert proba.shape == (n, 2)
    assert est.transform({"eeg": eeg[:3], "ecg": ecg[:3]}).shape[0] == 3
    with pytest.raises(InputShapeError, match=r"ecg \(n_windows, 1, 1280\)"):
        est.predict({"eeg": eeg, "ecg": ecg[:, :, :640]})
    with pytest.raises(InputShapeError, match="expected eeg"):
        est.predict({"eeg": eeg})
    with pytest.raises(InputShapeError, match="different numbers of windows"):
        est.predict({"eeg": eeg, "ecg": ecg[:5]})
    with pytest.raises(InputShapeError, match="empty dict"):
        est.fit({}, y)


def test_wrong_shapes_raise_input_shape_error(fitted, windows):
    x = windows[0]
    est = fitted
    extra = np.concatenate([x[:4], x[:4, -1:]], axis=1)  # 34 channels: 2 peripheral
    for bad in (x[:, :, :600], extra, x[:4, :, :1280:2]):
        with pytest.raises(InputShapeError, match=r"expected eeg \(n_windows, 32, 640\), "
                                                  r"pps \(n_windows, 1, 640\)"):
            est.predict(bad)
    with pytest.raises(InputShapeError, match="expected"):
        est.transform(x[:, :, :128])
    assert issubclass(InputShapeError, ValueError) and issubclass(InputShapeError,
                                                                  PhysioSyncError)
    with pytest.raises(InputShapeError, match="n_sub=3"):
        small(n_sub=3).fit(x, windows[1])
    with pytest.raises(InputShapeError, match="n_eeg_channels=40"):
        small(n_eeg_channels=40).fit(x, windows[1])
    with pytest.raises(InputShapeError, match=r"expected \(n_windows, n_channels, n_times\)"):
        small().fit(x[:, :, :, None], windows[1])


def test_string_labels(windows):
    x, y, subject, trial, w = windows
    names = np.array(["low", "high"])[y]
    est = small(epochs=1, pretrain=False).fit(x, names, subject=subject, trial=trial)
    np.testing.assert_array_equal(est.classes_, ["high", "low"])
    pred = est.predict(x)
    assert pred.dtype.kind == "U" and set(pred) <= {"low", "high"}
    assert est.predict_proba(x).shape == (len(x), 2)
    assert 0 <= est.score(x, names) <= 1


def test_fit_is_reproducible_with_random_state(windows):
    x, y, subject, trial, w = windows
    keep = subject <= 4
    kw = dict(subject=subject[keep], trial=trial[keep])
    a = small(epochs=1).fit(x[keep], y[keep], **kw).predict_proba(x[:8])
    b = small(epochs=1).fit(x[keep], y[keep], **kw).predict_proba(x[:8])
    c = small(epochs=1, random_state=1).fit(x[keep], y[keep], **kw).predict_proba(x[:8])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_too_few_channels_at_predict_states_the_expected_shape(fitted, windows):
    x = windows[0]
    for bad in (x[:4, :30], x[:4, 0]):
        with pytest.raises(InputShapeError) as info:
            fitted.predict(bad)
        assert "eeg (n_windows, 32, 640)" in str(info.value), str(info.value)


def test_token_size_from_long_windows_is_not_checked_as_if_typed():
    from physiosync.models.physiosync import PhysioSyncNet
    from physiosync.params import FinetuneConfig

    # 10 s at 500 Hz: longer than the largest embed_dim a user may type (4096)
    est = PhysioSyncClassifier(n_sub=2, depth=1, n_heads=4, n_prompts=0, device="cpu")
    long_cfg, short_cfg = est._encoder_configs(seed=0)
    assert long_cfg.embed_dim is None and short_cfg.embed_dim is None
    with torch.device("meta"):  # shapes only, nothing allocated
        net = PhysioSyncNet({"eeg": 2, "gsr": 1}, {"eeg": 5002, "gsr": 5002}, n_sub=2,
                            n_classes=2, config=FinetuneConfig(), long_config=long_cfg,
                            short_config=short_cfg)
    # the window length (2501 samples for the short windows), rounded to the heads
    assert net.long["eeg"].embed_dim == net.long["gsr"].embed_dim == 5000
    assert net.short["eeg"].embed_dim == 2500
    # a size the user types is still held to the bound, with or without rounding
    with pytest.raises(PhysioSyncError, match="embed_dim must be <= 4096, got 5000"):
        PhysioSyncClassifier(embed_dim=5000)._encoder_configs(seed=0)
    typed = PhysioSyncClassifier(embed_dim=18, n_heads=4, n_sub=2)._encoder_configs(seed=0)
    assert [c.embed_dim for c in typed] == [16, 8]


def test_verbose_info_logs_each_stage_and_its_progress(windows, caplog):
    x, y, subject, trial, w = windows
    caplog.set_level("INFO", logger="physiosync")
    small(pretrain_steps=20, epochs=3, verbose="info").fit(x, y, subject=subject, trial=trial)
    lines = [r.getMessage() for r in caplog.records if r.name == "physiosync"]
    for name in ("long", "short"):
        start = lines.index(next(m for m in lines if m.startswith(f"pre-training the {name} ")))
        steps = [m for m in lines[start + 1:start + 12] if m.startswith("pre-training step")]
        # one line every pretrain_steps // 10 steps, the last at the last step
        assert [m.split()[2] for m in steps] == [f"{k}/20:" for k in range(2, 21, 2)]
        assert all(" loss " in m and "s/step" in m and " left)" in m for m in steps)
    epochs = [m for m in lines if m.startswith("fine-tuning epoch")]
    assert [m.split()[2] for m in epochs] == ["1/3:", "2/3:", "3/3:"]
    assert all("train loss" in m and "val balanced accuracy" in m for m in epochs)
    assert any(m.startswith("fine-tuning: 3 epochs on") for m in lines)

    caplog.clear()
    caplog.set_level("WARNING", logger="physiosync")
    small(pretrain_steps=4, epochs=1).fit(x, y, subject=subject, trial=trial)  # quiet
    assert not [r for r in caplog.records if r.levelname == "INFO"]


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_log_every_must_be_a_positive_count(strong_deap_slots, bad):
    from physiosync.training.finetune import finetune
    from physiosync.training.pretrain import pretrain

    with pytest.raises(ValueError, match="log_every must be None or a positive number of steps"):
        pretrain(strong_deap_slots, log_every=bad)
    with pytest.raises(ValueError, match="log_every must be None or a positive number of epochs"):
        finetune(strong_deap_slots, [[0, 0, 0], [1, 0, 0]], log_every=bad)


# ------------------------------------------------------------ scikit-learn conventions
def _two_class_windows(n=24, seed=0):
    rng = np.random.default_rng(seed)
    y = np.repeat([0, 1], n // 2)
    x = rng.standard_normal((n, 2, 16)).astype(np.float32) + y[:, None, None]
    return x, y


def test_random_state_accepts_an_int_a_random_state_a_generator_or_none():
    x, y = _two_class_windows()
    # an int is the seed itself: the same int, the same model
    assert PhysioSyncClassifier(random_state=7)._seed() == 7
    a = PhysioSyncClassifier(**TINY).fit(x, y).predict_proba(x)
    np.testing.assert_array_equal(PhysioSyncClassifier(**TINY).fit(x, y).predict_proba(x), a)
    # a RandomState or a Generator draws the seed: reproducible from the same state, and
    # a fit advances it (scikit-learn's convention)
    for make in (np.random.RandomState, np.random.default_rng):
        est = PhysioSyncClassifier(**{**TINY, "random_state": make(3)})
        first = est.fit(x, y).predict_proba(x)
        twin = PhysioSyncClassifier(**{**TINY, "random_state": make(3)})
        np.testing.assert_array_equal(twin.fit(x, y).predict_proba(x), first)
        assert est._seed() != PhysioSyncClassifier(random_state=make(3))._seed()
    assert 0 <= PhysioSyncClassifier(random_state=None)._seed() < 2**31


def test_parameters_are_checked_by_scikit_learn_before_fitting():
    from sklearn.utils._param_validation import InvalidParameterError
    from sklearn.utils.estimator_checks import check_param_validation

    # scikit-learn's own check of _parameter_constraints (run by its test suite, not by
    # parametrize_with_checks): every parameter declared, and a bad value or type of
    # each refused by fit with its name
    check_param_validation("PhysioSyncClassifier", PhysioSyncClassifier(**TINY))

    x, y = _two_class_windows()
    for bad, name in ((dict(depth=0), "depth"), (dict(embedding="tokens"), "embedding"),
                      (dict(val_size=1.0), "val_size"), (dict(pretrain="yes"), "pretrain"),
                      (dict(random_state="seed"), "random_state"),
                      (dict(pretrain_lr=-1.0), "pretrain_lr")):
        with pytest.raises(InvalidParameterError, match=f"'{name}' parameter"):
            PhysioSyncClassifier(**{**TINY, **bad}).fit(x, y)
    # the estimator's bounds are those declared for the configuration files
    from physiosync.params import PretrainConfig

    rule = PhysioSyncClassifier._parameter_constraints["depth"][0]
    assert rule.right == PretrainConfig._parameter_constraints["depth"].high


def test_prediction_runs_on_the_estimator_device(monkeypatch):
    import physiosync.estimators as module

    x, y = _two_class_windows()
    est = PhysioSyncClassifier(**TINY).fit(x, y)
    asked, seen = [], []
    monkeypatch.setattr(module, "resolve_device",
                        lambda device: asked.append(device) or torch.device("cpu"))
    est.model_.register_forward_pre_hook(
        lambda mod, args: seen.append({v.device.type for v in args[0].values()}))
    est.set_params(device="cpu:0").predict_proba(x)
    est.transform(x[:3])
    assert asked == ["cpu:0", "cpu:0"] and seen == [{"cpu"}]
    assert next(est.model_.parameters()).device.type == "cpu"


def test_score_is_window_accuracy_and_says_what_reports_lead_with():
    doc = PhysioSyncClassifier.score.__doc__
    assert "window" in doc and "balanced accuracy per held-out" in doc.replace("\n", " ")
