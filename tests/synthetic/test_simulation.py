"""Stimulus-locked synchrony and rating priors of the synthetic data, and the collapsed loss.

The synthetic writers give every video an affective time course shared by its viewers
(``synchrony``) and optional per-subject rating offsets (``rating_bias``). These tests
check that the phenomena PhysioSync's pre-training learns from are there when switched
on and absent when off, that ``effect=0`` keeps the signals independent of the ratings,
and that pre-training beats a collapsed encoder only when there is synchrony to learn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.signal import butter, hilbert, sosfiltfilt

import physiosync.reporting.html as html_report
from physiosync import PhysioSyncError
from physiosync.cli import main
from physiosync.datasets import DEAP, DREAMER
from physiosync.datasets._channels import DEAP_EEG_GENEVA
from physiosync.execution import thread_limit
from physiosync.synthetic._generators import _POSTERIOR, StimulusCourses
from physiosync.synthetic._ratings import draw_ratings, simulate_ratings
from physiosync.synthetic._simulate import SubjectSimulator
from physiosync.synthetic import make_deap, make_deap_bdf, make_dreamer
from physiosync.models.losses import collapsed_loss, pretrain_loss
from physiosync.preprocessing.cache import prepare
from physiosync.params import PretrainConfig
from physiosync.training.pretrain import pretrain
from physiosync.training.sampling import SlotData
from physiosync.preprocessing.windows import make_windows

_FRONT = ("AF3", "F3", "FC1", "FC2", "F4", "AF4", "Fz", "FC5", "FC6")


def _seconds(x: np.ndarray, sfreq: int = 128) -> np.ndarray:
    """Means over consecutive whole seconds of the last axis."""
    n = x.shape[-1] // sfreq * sfreq
    return x[..., :n].reshape(*x.shape[:-1], -1, sfreq).mean(-1)


def _corr(a, b) -> float:
    return float(np.corrcoef(a, b)[0, 1])


def _second_features(prepared) -> dict:
    """Per subject, ``(trials, seconds)`` arrays of GSR conductance direction and posterior
    alpha envelope, and ``(trials, samples)`` of the anterior-minus-posterior EEG in the
    4-8 Hz band (where the evoked responses are; the .dat release keeps nothing below
    4 Hz, so the slow component is gone from it)."""
    names = next(iter(prepared.values())).ch_names["eeg"]
    post = [i for i, c in enumerate(names) if c in _POSTERIOR]
    front = [i for i, c in enumerate(names) if c in _FRONT]
    sos = butter(4, [8, 13], btype="band", fs=128, output="sos")
    theta = butter(4, [4, 8], btype="band", fs=128, output="sos")
    out = {}
    for s, p in prepared.items():
        eeg = p.data["eeg"]
        alpha = np.abs(hilbert(sosfiltfilt(sos, eeg, axis=-1)))[:, post].mean(1)
        out[s] = {"gsr": -_seconds(p.data["gsr"][:, 0]),  # resistance falls when SC rises
                  "alpha": _seconds(alpha),
                  "evoked": sosfiltfilt(theta, eeg[:, front].mean(1) - eeg[:, post].mean(1),
                                        axis=-1)}
    return out


# ----------------------------------------------------------------------- time courses
def test_stimulus_courses_are_shared_zero_mean_and_rating_free():
    courses = StimulusCourses(seed=3)
    times, f = courses.shared(0, 20.0)
    inside = (times >= 0) & (times <= 20.0)
    np.testing.assert_allclose(f[:, inside].mean(1), 0, atol=1e-12)
    np.testing.assert_allclose(f[:, inside].std(1), 1, rtol=1e-9)
    # A pure function of (seed, video, length): the same for every subject and instance.
    np.testing.assert_array_equal(StimulusCourses(seed=3).shared(0, 20.0)[1], f)
    # Other videos have unrelated courses.
    others = [_corr(f[1], courses.shared(k, 20.0)[1][1]) for k in range(1, 21)]
    assert abs(np.mean(others)) < 0.15 and max(others) < 0.9
    assert not np.allclose(StimulusCourses(seed=4).shared(0, 20.0)[1], f)
    # Smooth on a seconds scale: neighbouring samples (1/32 s) are nearly equal.
    assert _corr(f[1, 1:], f[1, :-1]) > 0.99
    assert not StimulusCourses(seed=3, synchrony=0.0).active


def test_without_synchrony_the_simulator_draws_nothing_extra():
    plain = SubjectSimulator(np.random.default_rng(5), 2.0)
    off = SubjectSimulator(np.random.default_rng(5), 2.0, StimulusCourses(0, synchrony=0.0))
    assert off.trial_course(0, 5.0) is None
    for m in ("eeg", "gsr", "ecg", "resp", "emg"):
        names = DEAP_EEG_GENEVA if m == "eeg" else ["x"]
        np.testing.assert_array_equal(plain.signal(m, names, 128.0, 640, 0.4, -0.2),
                                      off.signal(m, names, 128.0, 640, 0.4, -0.2))


@pytest.mark.parametrize("synchrony", [1.0, 0.0])
def test_signals_share_the_video_time_course_across_subjects_and_modalities(tmp_path,
                                                                           synchrony):
    root = make_deap(tmp_path / "d", n_subjects=4, n_trials=3, seconds=60.0, effect=0.0,
                     seed=0, synchrony=synchrony)
    feats = _second_features(prepare(DEAP(root), cache_dir=False))
    subjects = list(feats)
    pairs = [(a, b) for i, a in enumerate(subjects) for b in subjects[i + 1:]]
    # Inter-subject correlation over the seconds of the same video.
    isc = {k: np.mean([_corr(feats[a][k][t], feats[b][k][t]) for a, b in pairs
                       for t in range(3)]) for k in ("gsr", "alpha", "evoked")}
    # Cross-modal: skin conductance against posterior alpha suppression, same subject
    # and seconds.
    cross = np.mean([_corr(feats[s]["gsr"][t], -feats[s]["alpha"][t]) for s in subjects
                     for t in range(3)])
    if synchrony:
        assert isc["gsr"] > 0.4 and isc["evoked"] > 0.4 and isc["alpha"] > 0.25, isc
        assert cross > 0.15
    else:
        assert max(abs(v) for v in isc.values()) < 0.25, isc
        assert abs(cross) < 0.2


def test_effect_zero_keeps_signals_independent_of_ratings():
    """With effect=0 the ratings do not enter the signals, with or without synchrony."""
    courses = StimulusCourses(seed=1, synchrony=2.0)
    outputs = []
    for v, a in ((1.0, 1.0), (-1.0, -1.0), (0.2, -0.7)):
        sim = SubjectSimulator(np.random.default_rng(8), 0.0, courses)
        course = sim.trial_course(2, 10.0)
        outputs.append([sim.signal(m, DEAP_EEG_GENEVA if m == "eeg" else ["x"], 128.0, 1280,
                                   v, a, course=course)
                        for m in ("eeg", "eog", "emg", "gsr", "resp", "ppg", "temp", "ecg")])
    for other in outputs[1:]:
        for x, y in zip(outputs[0], other):
            np.testing.assert_array_equal(x, y)
    # The course itself never sees a rating: its trial mean is zero before the
    # subject's private noise.
    times, f = courses.shared(2, 10.0)
    assert np.abs(f[:, (times >= 0) & (times <= 10)].mean(1)).max() < 1e-12


def test_synchrony_follows_the_video_in_bdf_and_dreamer_writers(tmp_path):
    # BDF: each participant sees the videos in another order; the course follows the video.
    bdf = make_deap_bdf(tmp_path / "bdf", n_subjects=2, n_trials=2, seconds=30.0, effect=0.0,
                        seed=2, quirks=False)
    table = pd.read_csv(bdf / "participant_ratings.csv")
    orders = [table[table["Participant_id"] == s].sort_values("Trial")["Experiment_id"].tolist()
              for s in (1, 2)]
    assert orders[0] != orders[1]  # so that sharing by position would not pass
    deap = DEAP(bdf)
    recs = {s: deap.load_subject(s) for s in deap.subjects}
    per_video = [_corr(*(_seconds(recs[s].stimulus("gsr", t)[0], int(recs[s].sfreq("gsr")))
                         for s in recs)) for t in (0, 1)]
    assert min(per_video) > 0.4, per_video
    # DREAMER: EEG (128 Hz) and ECG (256 Hz) of a clip share the course; subjects share
    # the slow EEG component of the same clip.
    mat = make_dreamer(tmp_path / "dreamer", n_subjects=2, n_trials=2, seconds=30.0,
                       effect=0.0, seed=2)
    dreamer = DREAMER(mat)
    slow = {}
    for s in dreamer.subjects:
        rec = dreamer.load_subject(s)
        names = rec.ch_names("eeg")
        front = [i for i, c in enumerate(names) if c in {"FC5", "FC6"}]  # no blinks there
        back = [i for i, c in enumerate(names) if c in _POSTERIOR]
        slow[s] = [_seconds(rec.stimulus("eeg", t)[front].mean(0)
                            - rec.stimulus("eeg", t)[back].mean(0)) for t in (0, 1)]
    assert min(_corr(slow[1][t], slow[2][t]) for t in (0, 1)) > 0.3


# ----------------------------------------------------------------------------- ratings
def _ratings_before_priors(seed, n_subjects, n_trials, *, low, high, integer, n_scales,
                           exact_mid_fraction=0.05):
    """The rating draw of the versions without ``rating_bias`` (kept here verbatim)."""
    rng = np.random.default_rng([int(seed), 7919])
    consensus = rng.uniform(low, high, (n_trials, n_scales))
    noise = rng.normal(0.0, (high - low) / 6.0, (n_subjects, n_trials, n_scales))
    ratings = np.clip(consensus[None] + noise, low, high)
    if integer:
        return np.rint(ratings)
    ratings = np.round(ratings, 2)
    mid = rng.random(ratings.shape) < exact_mid_fraction
    ratings[mid] = (low + high) / 2.0
    return ratings


@pytest.mark.parametrize("integer,low,high", [(False, 1.0, 9.0), (True, 1, 5)])
def test_rating_bias_zero_gives_the_old_ratings(integer, low, high):
    kw = dict(low=low, high=high, integer=integer, n_scales=4)
    old = _ratings_before_priors(11, 6, 10, **kw)
    np.testing.assert_array_equal(draw_ratings(11, 6, 10, **kw), old)
    draw = simulate_ratings(11, 6, 10, **kw)
    np.testing.assert_array_equal(draw.reported, old)
    np.testing.assert_array_equal(draw.felt, old)


def test_rating_bias_makes_subjects_rate_mostly_high_or_low():
    kw = dict(low=1.0, high=9.0, integer=False, n_scales=2)
    plain = simulate_ratings(0, 24, 40, **kw)
    biased = simulate_ratings(0, 24, 40, rating_bias=0.25, **kw)
    rate_plain = (plain.reported[..., 0] >= 5).mean(1)  # share of "high" labels per subject
    rate_biased = (biased.reported[..., 0] >= 5).mean(1)
    assert rate_plain.std() < 0.08  # everyone sees the same videos: similar rates
    assert rate_biased.std() > max(0.15, 3 * rate_plain.std())
    assert rate_biased.max() - rate_biased.min() > 0.6  # some rate most videos high or low
    # A response style: the felt ratings (which drive the signals) are not shifted.
    same = biased.felt == plain.reported
    assert same.mean() > 0.9  # all but the midpoint quirk of the reported ratings
    assert biased.reported.min() >= 1 and biased.reported.max() <= 9


def test_writers_apply_the_rating_bias_to_the_written_labels(tmp_path):
    root = make_deap(tmp_path / "d", n_subjects=3, n_trials=5, seconds=2.0, seed=4,
                     rating_bias=0.3)
    expected = draw_ratings(4, 3, 5, low=1.0, high=9.0, integer=False, n_scales=4,
                            rating_bias=0.3)
    for s in (1, 2, 3):
        np.testing.assert_array_equal(DEAP(root).load_subject(s).ratings.to_numpy(),
                                      expected[s - 1])
    mat = make_dreamer(tmp_path / "m", n_subjects=2, n_trials=3, seconds=2.0, seed=4,
                       rating_bias=0.3, baseline_seconds=2.0)
    expected = draw_ratings(4, 2, 3, low=1, high=5, integer=True, n_scales=3, rating_bias=0.3)
    np.testing.assert_array_equal(DREAMER(mat).load_subject(2).ratings.to_numpy(), expected[1])


@pytest.mark.parametrize("kwargs,match", [
    ({"synchrony": -0.5}, "synchrony must be a finite number >= 0"),
    ({"synchrony": float("nan")}, "synchrony"),
    ({"synchrony": float("inf")}, "synchrony"),
    ({"synchrony": "high"}, "synchrony"),
    ({"rating_bias": 1.5}, r"rating_bias must be a finite number in \[0, 1\]"),
    ({"rating_bias": -0.1}, "rating_bias"),
])
def test_invalid_simulation_options_are_refused(tmp_path, kwargs, match):
    for writer in (make_deap, make_dreamer, make_deap_bdf):
        with pytest.raises(PhysioSyncError, match=match):
            writer(tmp_path / writer.__name__, n_subjects=1, n_trials=1, seconds=1.0, **kwargs)


def test_cli_synth_takes_synchrony_and_rating_bias(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["synth", "deap", str(out), "--subjects", "2", "--trials", "3", "--seconds",
                 "2", "--seed", "5", "--synchrony", "0", "--rating-bias", "0.2"]) == 0
    ref = make_deap(tmp_path / "ref", n_subjects=2, n_trials=3, seconds=2.0, seed=5,
                    synchrony=0.0, rating_bias=0.2)
    assert (out / "s02.dat").read_bytes() == (ref / "s02.dat").read_bytes()
    assert main(["synth", "deap", str(tmp_path / "bad"), "--synchrony", "-1"]) == 2
    assert "synchrony must be a finite number >= 0" in capsys.readouterr().err


# --------------------------------------------------------------------- collapsed loss
@pytest.mark.parametrize("batch_slots", [1, 2, 6, 8])
@pytest.mark.parametrize("variant", ["cross-subject", "same-subject"])
@pytest.mark.parametrize("weights", [(0.5, 0.5, 1.0), (1.0, 0.0, 0.3), (0.0, 2.0, 0.0)])
def test_collapsed_loss_matches_pretrain_loss_on_constant_embeddings(batch_slots, variant,
                                                                     weights):
    rows = 2 * batch_slots
    z = torch.ones(rows, 32, dtype=torch.float64)  # every embedding the same
    cm = torch.full((rows, 8), 0.3, dtype=torch.float64)
    total, _ = pretrain_loss(z, z.clone(), cm, cm.clone(), weights=weights, temperature=0.1,
                             cmca_variant=variant)
    assert collapsed_loss(batch_slots, loss_weights=weights, cmca_variant=variant) == \
        pytest.approx(float(total), rel=1e-9, abs=1e-12)


def test_collapsed_loss_values_and_terms_left_out():
    # 0.5 * 2 log 11 + 0.5 * 2 log 11 + 1.0 * 2 log 11 for the demo's 6 slots
    assert collapsed_loss(6) == pytest.approx(4 * np.log(11))
    assert collapsed_loss(6) == pytest.approx(9.5916, abs=1e-4)
    assert collapsed_loss(8) == pytest.approx(10.8322, abs=1e-4)
    # Without a peripheral modality only the EEG term is left; "none" drops CM-CA.
    assert collapsed_loss(6, has_pps=False) == pytest.approx(0.5 * 2 * np.log(11))
    assert collapsed_loss(6, cmca_variant="none") == pytest.approx(2 * np.log(11))
    z = torch.ones(12, 4)
    total, _ = pretrain_loss(z, None, weights=(0.5, 0.0, 0.0))
    assert collapsed_loss(6, has_pps=False) == pytest.approx(float(total), rel=1e-6)
    with pytest.raises(PhysioSyncError, match="batch_slots must be an integer >= 1"):
        collapsed_loss(0)
    with pytest.raises(PhysioSyncError, match="Invalid cmca_variant 'both'; allowed values"):
        collapsed_loss(4, cmca_variant="both")
    with pytest.raises(PhysioSyncError, match="not all 0"):
        collapsed_loss(4, loss_weights=(0, 1, 1), has_pps=False)


def test_run_fold_records_the_collapsed_loss_with_the_pretrain_curve(tmp_path):
    from physiosync.evaluation import runner as cv
    from physiosync.params import FinetuneConfig
    from physiosync.evaluation.protocols import make_folds

    root = make_deap(tmp_path / "d", n_subjects=3, n_trials=6, seconds=10.0, seed=3)
    data = SlotData.from_windows(make_windows(prepare(DEAP(root), cache_dir=False),
                                              lengths=(5.0,)), 5.0, target="valence")
    tiny = dict(embed_dim=8, depth=1, n_heads=2, n_prompts=1, projector_dims=(16, 16),
                cmca_dim=8, group_size=1, steps=2)
    long, short = PretrainConfig(batch_slots=4, **tiny), PretrainConfig(batch_slots=3, **tiny)
    s, t = np.nonzero(data.valid.any(axis=2))
    units = np.column_stack([np.asarray(data.subjects)[s], np.asarray(data.trials)[t]])
    fold = make_folds(units, "within-trial-kfold", n_splits=3, seed=0)[0]
    _, details = cv.run_fold(data, fold, long_config=long, short_config=short,
                             finetune_config=FinetuneConfig(epochs=1, batch_size=8),
                             one_class="constant", importance=False, device="cpu")
    curves = details["curves"]["pretrain"]
    assert curves["long"]["collapsed"] == pytest.approx(collapsed_loss(4))
    assert curves["short"]["collapsed"] == pytest.approx(collapsed_loss(3))
    assert len(curves["long"]["loss"]) == 2


def test_html_report_draws_the_collapsed_level_as_a_dashed_line(monkeypatch):
    drawn = []
    monkeypatch.setattr(html_report, "_png_uri", lambda fig: drawn.append(fig) or "data:,")
    pipes = {"physiosync": {"curves": {"pretrain": {
        "long": [{"fold": 0, "step": [0, 1, 2, 3], "loss": [19.0, 15.0, 11.0, 8.0],
                  "collapsed": 9.5916}],
        "short": [{"fold": 0, "step": [0, 1, 2, 3], "loss": [18.0, 14.0, 12.0, 9.0],
                   "collapsed": 9.5916}]}}}}
    page = html_report._curves_section(pipes)
    assert "collapsed encoder" in page  # the caption explains the line
    ax = drawn[0].axes[0]
    ref = [line for line in ax.get_lines() if line.get_label() == "collapsed encoder"]
    assert len(ref) == 1  # one line per distinct value
    assert ref[0].get_linestyle() == "--"
    np.testing.assert_allclose(ref[0].get_ydata(), 9.5916)
    assert "collapsed encoder" in [t.get_text() for t in ax.get_legend().get_texts()]
    # Older reports without the value draw no line.
    drawn.clear()
    del pipes["physiosync"]["curves"]["pretrain"]["long"][0]["collapsed"]
    del pipes["physiosync"]["curves"]["pretrain"]["short"][0]["collapsed"]
    page = html_report._curves_section(pipes)
    assert "collapsed encoder" not in page
    assert not [ln for ln in drawn[0].axes[0].get_lines() if "collapsed" in ln.get_label()]


# -------------------------------------------------------------------------- the key test
#: A multi-view (the authors' embedding) pre-training small enough for CI; 600 steps, the
#: length at which a training loss below the collapsed level appears even without synchrony.
KEY_CONFIG = dict(embedding="multiview", embed_dim=16, depth=1, n_heads=2, n_prompts=1,
                  projector_dims=(32, 32), cmca_dim=16, batch_slots=6, group_size=2,
                  lr=1e-3, steps=600, seed=0)
#: Its collapsed loss: 0.5 * 2 log 11 + 0.5 * 2 log 11 + 2 log 11 = 4 log 11.
KEY_COLLAPSED = 9.5916


def _key_runs(tmp_path) -> dict:
    """Training tail and held-out diagnostic of the key configuration, per condition.

    Conditions: iid Gaussian noise of the same shape, synchrony off, synchrony on (same
    simulator seed otherwise). Subjects 4-7 are held out of pre-training (their units
    give the held-out batches: unseen subjects on the seen videos), so the sampler's
    batches, the initial weights, the augmentation and dropout draws and the held-out
    slots are the same in every condition: only the data differ.
    """
    data = {}
    for sync in (0.0, 1.0):
        root = make_deap(tmp_path / f"sync{sync:g}", n_subjects=8, n_trials=8, seconds=30.0,
                         effect=0.0, seed=0, synchrony=sync)
        data["off" if sync == 0 else "on"] = SlotData.from_windows(
            make_windows(prepare(DEAP(root), cache_dir=False), lengths=(5.0,)), 5.0)
    ref, rng = data["on"], np.random.default_rng(0)
    data["noise"] = SlotData({m: rng.standard_normal(v.shape).astype(np.float32)
                              for m, v in ref.x.items()}, ref.valid, ref.subjects, ref.trials)
    held = np.zeros(ref.shape, dtype=bool)
    held[4:] = True
    out = {}
    for name, d in data.items():
        # one thread, as measured: the losses below depend on the thread count through
        # the order of float reductions (with two threads, synchrony off ends 0.3 lower)
        with thread_limit(1):
            _, history = pretrain(d, PretrainConfig(**KEY_CONFIG), allowed=~held,
                                  held_out=held, device="cpu", verbose=False)
        losses = [e["loss"] for e in history]
        points = [e["held_out"] for e in history if "held_out" in e]
        late = points[-4:]  # the last fifth of the 20 evaluations
        out[name] = {"train_tail": float(np.mean(losses[-len(losses) // 5:])),
                     "random": points[0],
                     "late": {k: float(np.mean([p[k] for p in late])) for k in late[0]}}
    return out


@pytest.mark.integration
def test_pretraining_beats_a_random_encoder_on_held_out_subjects_only_with_synchrony(tmp_path):
    """LS-TCL + CM-CA on 5 s windows, effect=0: only the shared time course can be learnt.

    Measured (docs/model.md, benchmarks/synchrony.py --held-out): the training loss falls
    below the collapsed 9.59 in every condition, iid noise included (0.28): memorised
    training windows. On the held-out subjects the loss stays above the collapsed level
    everywhere (noise 20.1, off 21.9, on 14.4) and above the random encoder's with noise
    (18.1) and synchrony off (21.0); with synchrony on it falls below it (17.7) and the
    EEG term's retrieval rises to 0.29 (random encoder 0.16, chance 1/11), while with
    noise and synchrony off every retrieval stays within the sampling error of chance.
    """
    collapsed = collapsed_loss(KEY_CONFIG["batch_slots"])
    assert collapsed == pytest.approx(KEY_COLLAPSED, abs=1e-4)
    runs = _key_runs(tmp_path)
    chance = 1 / (2 * KEY_CONFIG["batch_slots"] - 1)
    # 8 held-out batches x 2 directions x 6 anchors per term, binomial SE at chance
    margin = 3 * np.sqrt(chance * (1 - chance) / (8 * 2 * 6))
    assert runs["noise"]["train_tail"] < collapsed  # the training loss is no evidence
    for name, run in runs.items():
        assert run["late"]["loss"] > collapsed, (name, run["late"])
    for name in ("noise", "off"):
        late = runs[name]["late"]
        assert late["loss"] >= runs[name]["random"]["loss"], (name, late)
        for term in ("temporal_eeg", "temporal_pps", "cmca"):
            assert late[f"retrieval_{term}"] <= chance + margin, (name, term, late)
    on = runs["on"]
    assert on["late"]["loss"] < on["random"]["loss"] - 1.0, on
    assert on["late"]["retrieval_temporal_eeg"] > chance + margin, on
    assert on["late"]["retrieval_temporal_eeg"] > on["random"]["retrieval_temporal_eeg"], on


# ------------------------------------------------------------ affect as shared dynamics
from physiosync.synthetic import _dynamics  # noqa: E402
from physiosync.synthetic._dynamics import AffectDynamics, DynamicSubject  # noqa: E402
from physiosync.synthetic._ratings import rating_parts  # noqa: E402
from physiosync.synthetic._simulate import check_simulation_options  # noqa: E402

_MODALITIES = ("eeg", "eog", "emg", "gsr", "resp", "ppg", "temp", "ecg")


def _model(control="none", synchrony=1.0, share=0.5, n_subjects=3, n_trials=4, seconds=8.0,
           seed=0, rating_bias=0.0):
    return AffectDynamics(seed, n_subjects, n_trials, seconds, synchrony=synchrony,
                          affect_share=share, control=control, low=1.0, high=9.0,
                          integer=False, n_scales=4, rating_bias=rating_bias)


def _inside(times, seconds):
    return (times >= 0) & (times <= seconds)


def test_each_video_has_one_trajectory_whose_mean_is_its_consensus_level():
    model = _model(synchrony=1.0, share=1.0, n_subjects=4, n_trials=3, seconds=30.0)
    for k in range(3):
        # Without the subject's gain, appraisal and private noise, every viewer's felt
        # state is the same lagged trajectory, with mean L_k over the video.
        shared = []
        for s in range(4):
            aff = model.trial(s, k)
            inside = _inside(aff.times, 30.0)
            private = 0.25 * model._private(s, k, aff.times.size)[1]  # 0.5 sync * 0.5
            course = (aff.felt - model.appraisal[s, k][:, None] - private) / model.gain[s]
            shared.append(course[:, inside])
            np.testing.assert_allclose(course[:, inside].mean(1), model.levels[k], atol=0.03)
        assert min(_corr(shared[0][1], other[1]) for other in shared[1:]) > 0.95


def test_ratings_summarise_the_felt_trajectory_plus_the_response_style():
    model = _model(n_subjects=3, n_trials=4, seconds=10.0, rating_bias=0.2)
    parts = rating_parts(0, 3, 4, low=1.0, high=9.0, integer=False, n_scales=4,
                         rating_bias=0.2)
    for s in range(3):
        for k in range(4):
            aff = model.trial(s, k)
            inside = _inside(aff.times, 10.0)
            end = inside & (aff.times >= 8.0)
            v, a = aff.felt[:, inside]
            vi = np.argmax(np.abs(v))
            summary = [0.5 * v.mean() + 0.25 * v[vi] + 0.25 * aff.felt[0, end].mean(),
                       0.5 * a.mean() + 0.25 * a.max() + 0.25 * aff.felt[1, end].mean()]
            expected = np.round(np.clip(5.0 + 4.0 * np.array(summary)
                                        + parts.offset[s, 0, :2], 1, 9), 2)
            got = model.reported[s, k, :2]
            keep = ~parts.mid[s, k, :2]  # the midpoint quirk overrides a few
            np.testing.assert_allclose(got[keep], expected[keep], atol=1e-9)
    # Dominance and liking keep the static draw.
    static = simulate_ratings(0, 3, 4, low=1.0, high=9.0, integer=False, n_scales=4,
                              rating_bias=0.2).reported
    np.testing.assert_array_equal(model.reported[..., 2:], static[..., 2:])


def _signals(sim, affect, segment=1, n=128 * 30):
    return {m: sim.signal(m, DEAP_EEG_GENEVA if m == "eeg" else ["x"], 128.0, n, segment,
                          affect) for m in _MODALITIES}


def test_effect_zero_physiology_ignores_the_felt_state_bit_for_bit():
    """A leak of the felt state into any signal at effect=0 fails this test: the same
    trial with a very different felt state (other level, reversed course) must give the
    same bytes at effect 0, and different ones at effect 1."""
    aff = _model(n_trials=2, seconds=30.0).trial(1, 0)
    other = aff._replace(felt=1.5 - 2.0 * aff.felt[::-1])
    for effect, same in ((0.0, True), (1.0, False)):
        a = _signals(DynamicSubject(0, 1, effect), aff)
        b = _signals(DynamicSubject(0, 1, effect), other)
        for m in _MODALITIES:
            if same:
                np.testing.assert_array_equal(a[m], b[m], err_msg=m)
            elif m != "eog":  # the one signal without an affective coupling
                assert not np.array_equal(a[m], b[m]), m


def test_effect_zero_written_files_do_not_depend_on_the_ratings(tmp_path, monkeypatch):
    def write(name, effect):
        return DEAP(make_deap(tmp_path / name, n_subjects=2, n_trials=3, seconds=6.0,
                              effect=effect, seed=1, affect="dynamics")).load_subject(2)

    plain = {e: write(f"plain{e}", e) for e in (0.0, 1.0)}
    real = _dynamics.rating_parts

    def mirrored(*args, **kwargs):  # every video's consensus level mirrored
        parts = real(*args, **kwargs)
        return parts._replace(consensus=parts.low + parts.high - parts.consensus)

    monkeypatch.setattr(_dynamics, "rating_parts", mirrored)
    flipped = {e: write(f"flipped{e}", e) for e in (0.0, 1.0)}
    assert not np.array_equal(plain[0.0].ratings, flipped[0.0].ratings)
    np.testing.assert_array_equal(plain[0.0].stimulus_array("gsr"),
                                  flipped[0.0].stimulus_array("gsr"))
    np.testing.assert_array_equal(plain[0.0].stimulus_array("eeg"),
                                  flipped[0.0].stimulus_array("eeg"))
    assert not np.array_equal(plain[1.0].stimulus_array("gsr"),
                              flipped[1.0].stimulus_array("gsr"))


def _variants(tmp_path):
    """One dynamics DEAP set per paired variant, same seed: ``{name: [Recording, ...]}``."""
    out = {}
    for name, kw in (("dynamics", {}), ("static-affect", {"control": "static-affect"}),
                     ("shuffled", {"control": "shuffled"}), ("sync0", {"synchrony": 0.0})):
        root = make_deap(tmp_path / name, n_subjects=2, n_trials=2, seconds=20.0, effect=1.0,
                         seed=4, affect="dynamics", **kw)
        deap = DEAP(root)
        out[name] = [deap.load_subject(s) for s in (1, 2)]
    return out


def test_paired_controls_change_only_the_manipulated_part(tmp_path):
    recs = _variants(tmp_path)
    ref = recs["dynamics"]
    for name in ("static-affect", "shuffled", "sync0"):
        for a, b in zip(ref, recs[name]):
            # Baselines: same noise and artefacts, bit for bit (EEG is band-passed over
            # baseline and stimulus together, as in the release, so the stimulus leaks
            # into its baseline through the filter).
            for m in a.modalities[1:]:
                np.testing.assert_array_equal(a.baseline_array(m), b.baseline_array(m))
            # EOG has no affective coupling: its noise, saccades and blinks are the same
            np.testing.assert_array_equal(a.stimulus_array("eog"), b.stimulus_array("eog"))
            # What the manipulation reaches. (At effect=1 static-affect differs from the
            # model only where the level and the course take separate routes: posterior
            # alpha and the rate of SCRs.)
            for m in ("eeg", "gsr"):
                assert not np.array_equal(a.stimulus_array(m), b.stimulus_array(m)), (name, m)


def test_controls_move_exactly_one_part_of_the_felt_state():
    dyn, static, shuffled, sync0 = (_model(**kw) for kw in (
        {}, {"control": "static-affect"}, {"control": "shuffled"}, {"synchrony": 0.0}))
    for s in range(3):
        for k in range(4):
            a, b = dyn.trial(s, k), static.trial(s, k)
            level = dyn.gain[s] * dyn.levels[k] + dyn.appraisal[s, k]
            # static-affect: the felt state is the constant level; the same course and
            # private noise are there, moved from what is felt to what is not.
            np.testing.assert_array_equal(b.felt, np.repeat(level[:, None], b.felt.shape[1], 1))
            np.testing.assert_allclose(b.unfelt - a.unfelt, a.felt - level[:, None],
                                       atol=1e-12)
            assert a.dynamic and not b.dynamic
            np.testing.assert_array_equal(a.events[0], b.events[0])
            # synchrony 0: only the level, no course, no events
            c = sync0.trial(s, k)
            np.testing.assert_array_equal(c.felt, np.repeat(level[:, None], c.felt.shape[1], 1))
            assert not c.unfelt.any() and c.events is None
            # shuffled: the same subject-side draws, the shared part of another video
            d = shuffled.trial(s, k)
            j = shuffled.source[s, k]
            private = 0.25 * dyn._private(s, k, a.times.size)[1]
            inside = _inside(d.times, 8.0)
            np.testing.assert_allclose(
                (d.felt - private - dyn.appraisal[s, k][:, None])[:, inside].mean(1)
                / dyn.gain[s], dyn.levels[j], atol=0.03)
    # Every subject gets every video's course once, in its own order.
    assert all(sorted(row) == list(range(4)) for row in shuffled.source)
    assert len({tuple(row) for row in shuffled.source}) > 1
    np.testing.assert_array_equal(dyn.gain, shuffled.gain)
    np.testing.assert_array_equal(dyn.appraisal, shuffled.appraisal)


def test_shuffled_control_removes_the_synchrony_of_same_video_subjects():
    def isc(model):
        r = [_corr(model.trial(0, k).felt[1], model.trial(1, k).felt[1]) for k in range(6)]
        return float(np.mean(r))

    kw = dict(share=1.0, n_subjects=2, n_trials=6, seconds=30.0)
    assert isc(_model(**kw)) > 0.6
    assert abs(isc(_model(control="shuffled", **kw))) < 0.3


def test_affect_share_splits_the_stimulus_locked_variance():
    for share in (0.0, 0.25, 1.0):
        model = _model(share=share, n_subjects=1, n_trials=3, seconds=30.0)
        felt_var = unfelt_var = 0.0
        for k in range(3):
            aff = model.trial(0, k)
            inside = _inside(aff.times, 30.0)
            private = 0.25 * model._private(0, k, aff.times.size)[1]
            felt_var += (aff.felt - private)[:, inside].var(1).sum()
            unfelt_var += aff.unfelt[:, inside].var(1).sum()
        assert felt_var / (felt_var + unfelt_var) == pytest.approx(share, abs=0.08)


def test_physiology_follows_the_felt_arousal_in_dynamics_mode():
    model = _model(share=1.0, n_subjects=1, n_trials=2, seconds=60.0, synchrony=2.0)
    sim = DynamicSubject(0, 0, effect=1.5)
    scr, alpha, hr, arousal = [], [], [], []
    sos = butter(4, [8, 13], btype="band", fs=128, output="sos")
    post = [i for i, c in enumerate(DEAP_EEG_GENEVA) if c in _POSTERIOR]
    for k in range(2):
        aff = model.trial(0, k)
        n = 128 * 60
        felt = np.interp(np.arange(n) / 128.0, aff.times, aff.felt[1])
        sc = 1e6 / sim.signal("gsr", ["x"], 128.0, n, k, aff)[0]
        eeg = sim.signal("eeg", DEAP_EEG_GENEVA, 128.0, n, k, aff)
        env = np.abs(hilbert(sosfiltfilt(sos, eeg[post], axis=-1))).mean(0)
        beats = sim._beats(128.0, n, k, aff.state(1.5, 128.0, n)[0][1])
        hr.append(np.histogram(beats, bins=12, range=(0, n))[0])
        win = lambda x: x.reshape(12, -1).mean(1)  # noqa: E731  5 s windows
        scr.append(np.diff(np.r_[sc[0], sc]).clip(0).reshape(12, -1).sum(1))  # rises
        alpha.append(win(np.log(env)))
        arousal.append(win(felt))
    arousal = np.concatenate(arousal)
    assert _corr(np.concatenate(scr)[1:], arousal[:-1]) > 0.3  # SCRs 1-3 s after
    assert _corr(np.concatenate(alpha), arousal) < -0.5
    assert _corr(np.concatenate(hr), arousal) > 0.5


@pytest.mark.parametrize("kwargs,match", [
    ({"affect": "moving"}, "affect must be one of static, dynamics"),
    ({"affect": "dynamics", "control": "swap"}, "control must be one of none, static-affect"),
    ({"affect": "dynamics", "affect_share": 1.5},
     r"affect_share must be a finite number in \[0, 1\]"),
    ({"affect_share": 0.5}, "apply to affect='dynamics' only"),
    ({"control": "shuffled"}, "apply to affect='dynamics' only"),
])
def test_invalid_affect_options_are_refused(tmp_path, kwargs, match):
    for writer in (make_deap, make_dreamer, make_deap_bdf):
        with pytest.raises(PhysioSyncError, match=match):
            writer(tmp_path / writer.__name__, n_subjects=1, n_trials=1, seconds=1.0, **kwargs)
    assert check_simulation_options(1.0, 0.0, affect="dynamics").affect_share == 0.5


def test_static_mode_is_the_default_and_unchanged(tmp_path):
    a = make_deap(tmp_path / "a", n_subjects=1, n_trials=2, seconds=2.0, seed=3)
    b = make_deap(tmp_path / "b", n_subjects=1, n_trials=2, seconds=2.0, seed=3,
                  affect="static", affect_share=None, control="none")
    assert (a / "s01.dat").read_bytes() == (b / "s01.dat").read_bytes()


def test_bdf_and_dreamer_writers_in_dynamics_mode(tmp_path):
    from physiosync.synthetic._dynamics import Simulation

    bdf = make_deap_bdf(tmp_path / "bdf", n_subjects=2, n_trials=2, seconds=4.0, seed=2,
                        quirks=False, affect="dynamics", control="shuffled")
    table = pd.read_csv(bdf / "participant_ratings.csv")
    options = check_simulation_options(1.0, 0.0, affect="dynamics", control="shuffled")
    expected = Simulation(2, options, 2.0, 2, 2, 4.0, low=1.0, high=9.0, integer=False,
                          n_scales=4).reported
    for row in table.itertuples():
        assert row.Valence == expected[row.Participant_id - 1, row.Experiment_id - 1, 0]
    assert DEAP(bdf).load_subject(2).stimulus("gsr", 1).shape[-1] == 4 * 512
    mat = make_dreamer(tmp_path / "m", n_subjects=2, n_trials=2, seconds=4.0, seed=2,
                       baseline_seconds=2.0, affect="dynamics", affect_share=0.8)
    rec = DREAMER(mat).load_subject(1)
    assert np.isfinite(rec.stimulus("ecg", 0)).all() and rec.stimulus("eeg", 1).shape[0] == 14


def test_cli_synth_takes_the_affect_options(tmp_path, capsys):
    out = tmp_path / "d"
    assert main(["synth", "deap", str(out), "--subjects", "1", "--trials", "2", "--seconds",
                 "2", "--seed", "5", "--affect", "dynamics", "--affect-share", "0.3",
                 "--control", "shuffled"]) == 0
    ref = make_deap(tmp_path / "ref", n_subjects=1, n_trials=2, seconds=2.0, seed=5,
                    affect="dynamics", affect_share=0.3, control="shuffled")
    assert (out / "s01.dat").read_bytes() == (ref / "s01.dat").read_bytes()
    assert main(["synth", "deap", str(tmp_path / "bad"), "--affect", "dynamics",
                 "--affect-share", "2"]) == 2
    assert "affect_share must be a finite number in [0, 1]" in capsys.readouterr().err
