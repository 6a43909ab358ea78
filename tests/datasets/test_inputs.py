"""Bad input gets one line, and nothing is skipped silently (issue 19, §2, §4 and §5).

Each test runs the command line (or the reader) on one bad input and checks the exit
code, the exact ``physiosync: error:`` line and that no traceback is printed; warnings
are checked on stderr as a user sees them, without ``-v``.
"""

import logging

import numpy as np
import pytest

from physiosync.cli import main

CV_TINY = ["--config", "tiny", "--folds", "2", "--pipelines", "bandpower",
           "--set", "protocol.one_class=constant"]


def _error_line(capsys) -> str:
    """The only stderr line of the last command, without its ``physiosync: error:`` prefix."""
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert err.startswith("physiosync: error: "), err
    return err.strip()[len("physiosync: error: "):]


def _as_on_a_terminal(monkeypatch):
    """Stderr as a user's terminal shows it: nothing but the package's own console handler
    (pytest's log capture, on the root logger, would otherwise receive the records). Called
    in the test body, after pytest attached its handlers."""
    monkeypatch.setattr(logging.getLogger(), "handlers", [])


# ---- duplicate YAML keys ------------------------------------------------------------------
@pytest.mark.parametrize("text, line", [
    ("pretrain:\n  steps: 2\n  lr: 0.001\n  steps: 500000\n",
     "key 'steps' is given twice in one mapping (lines 2 and 4); keep one of them."),
    ("seed: 1\nseed: 2\n", "key 'seed' is given twice in one mapping (lines 1 and 2); "
                           "keep one of them."),
    ("finetune: {epochs: 2, epochs: 3}\n",
     "key 'epochs' is given twice in one mapping (line 1); keep one of them."),
])
def test_duplicate_yaml_keys_are_an_error_naming_key_and_line(tmp_path, capsys, text, line):
    path = tmp_path / "run.yaml"
    path.write_text(text)
    assert main(["cv", "--dry-run", "--config", str(path)]) == 2
    assert _error_line(capsys) == f"config file {path}: {line}"


def test_duplicate_keys_in_a_set_value_and_merge_keys(tmp_path, capsys):
    from physiosync.config import load_config

    assert main(["cv", "--dry-run", "--set", "finetune={epochs: 2, epochs: 3}"]) == 2
    assert _error_line(capsys) == ("the value of override finetune=...: key 'epochs' is given "
                                   "twice in one mapping (line 1); keep one of them.")
    # A key brought in by a merge (<<) may be overridden, as YAML's merge rule says.
    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {epochs: 2, batch_size: 8}\nfinetune:\n  <<: *b\n  epochs: 3\n"
                    .replace("base:", "x-base:"))
    from physiosync.config.reading import _read_yaml

    assert _read_yaml(path)["finetune"] == {"epochs": 3, "batch_size": 8}
    # the same key in two different mappings is no duplicate
    path.write_text("pretrain: {steps: 2}\nfinetune: {epochs: 2}\nseed: 3\n")
    assert load_config(str(path)).seed == 3


# ---- seeds over the documented range ------------------------------------------------------
def test_legacy_seed_keeps_32_bit_seeds_and_maps_larger_ones():
    from physiosync._utils.random import legacy_seed

    for seed in (0, 1, 12345, 2**32 - 1):
        assert legacy_seed(seed) == seed  # results of these seeds are unchanged
    big = [legacy_seed(s) for s in (2**32, 2**32 + 1, 2**63 - 1)]
    assert all(0 <= s < 2**32 for s in big) and len(set(big)) == 3
    assert big == [legacy_seed(s) for s in (2**32, 2**32 + 1, 2**63 - 1)]  # deterministic


@pytest.mark.parametrize("seed", [2**32 - 2, 2**32 - 1, 2**32, 2**63 - 1])
def test_seeds_up_to_2_63_make_folds(seed):
    from physiosync.evaluation.protocols import make_folds

    units = np.array([(s, t) for s in (1, 2, 3) for t in range(6)])
    labels = np.array([t % 2 for _, t in units])
    for protocol in ("within-trial-kfold", "subject-kfold", "subject-stimulus-kfold"):
        folds = make_folds(units, protocol, n_splits=2, labels=labels, seed=seed)
        again = make_folds(units, protocol, n_splits=2, labels=labels, seed=seed)
        assert [f.test.tolist() for f in folds] == [f.test.tolist() for f in again]


def test_seed_2_63_minus_1_passes_a_dry_run_and_2_63_is_refused(deap_dat_dir, tmp_path,
                                                               capsys):
    base = ["cv", "--dry-run", "--dataset", "deap", "--data-root", str(deap_dat_dir),
            "--cache-dir", str(tmp_path / "cache"), *CV_TINY, "-q"]
    assert main(base + ["--seed", str(2**63 - 1)]) == 0
    assert "all checks passed" in capsys.readouterr().out
    assert main(base + ["--seed", str(2**63)]) == 2
    assert "'seed' must be" in _error_line(capsys)


# ---- --max-retries --------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["-3", "101"])
def test_max_retries_out_of_range_is_refused_before_any_work(tmp_path, capsys, monkeypatch,
                                                             value):
    import physiosync.experiment.planning as planning

    def no_work(*args, **kwargs):
        raise AssertionError("data was prepared")

    monkeypatch.setattr(planning, "load_experiment_data", no_work)
    for extra in (["--out", str(tmp_path / "run")], ["--dry-run"]):
        assert main(["cv", "--executor", "ray", "--max-retries", value, *extra]) == 2
        assert _error_line(capsys) == (
            f"--max-retries must be an integer from 0 to 100, got {int(value)}; give the "
            "times a unit whose Ray worker died is run again (default 2).")
    assert not (tmp_path / "run").exists()


# ---- warnings reach the console without -v --------------------------------------------------
def test_warnings_reach_stderr_without_v_and_with_q(deap_dat_dir, tmp_path, capsys,
                                                    monkeypatch):
    _as_on_a_terminal(monkeypatch)
    cache = tmp_path / "cache"
    assert main(["prepare", "deap", str(deap_dat_dir), "--cache-dir", str(cache)]) == 0
    assert capsys.readouterr().err == ""  # nothing to say: nothing said
    for run, extra in enumerate(([], ["-q"])):
        entry = next(p for p in sorted(cache.rglob("meta.json")))
        entry.unlink()
        argv = (["prepare", "deap", str(deap_dat_dir), "--cache-dir", str(cache)] if not run
                else ["cv", "--dry-run", "--dataset", "deap", "--data-root", str(deap_dat_dir),
                      "--cache-dir", str(cache), *CV_TINY, *extra])
        assert main(argv) == 0
        err = capsys.readouterr().err
        assert err == (f"WARNING [physiosync] Ignoring damaged cache entry {entry.parent} (no "
                       "meta.json); recomputing.\n")


# ---- ratings outside each dataset's scale --------------------------------------------------
def _deap_with_rating(folder, value, where=(1, 2)):
    from physiosync.synthetic._py2_pickle import write_py2_pickle

    labels = np.full((2, 4), 5.0)
    labels[where] = value
    folder.mkdir(exist_ok=True)
    write_py2_pickle({"labels": labels, "data": np.zeros((2, 40, 640))}, folder / "s04.dat")
    return folder / "s04.dat"


@pytest.mark.parametrize("value, shown", [(0.0, "0"), (100.0, "100"), (-5.0, "-5"),
                                          (1e30, "1e+30"), (9.5, "9.5")])
def test_deap_dat_rating_outside_1_9_is_one_line(tmp_path, capsys, value, shown):
    path = _deap_with_rating(tmp_path / "d", value)
    assert main(["cv", "--dry-run", "--dataset", "deap", "--data-root", str(path.parent),
                 "--cache-dir", str(tmp_path / "c"), *CV_TINY, "-q"]) == 2
    assert _error_line(capsys) == (
        f"{path}: subject 4, trial 1 (0-based): dominance rating {shown} is outside the DEAP "
        "scale 1-9; expected self-assessment ratings from 1 to 9 in 'labels'.")


def test_deap_dat_ratings_on_the_scale_edges_and_nan_as_before(tmp_path):
    from physiosync import DataFormatError
    from physiosync.datasets import DEAP

    for value in (1.0, 9.0, 4.37):
        _deap_with_rating(tmp_path / "d", value)
        assert DEAP(tmp_path / "d").load_subject(4).ratings.iloc[1, 2] == value
    _deap_with_rating(tmp_path / "d", np.nan)  # refused as before, by its own message
    with pytest.raises(DataFormatError, match=r"non-finite ratings for trial\(s\) \[1\]"):
        DEAP(tmp_path / "d").load_subject(4)


def test_deap_bdf_ratings_csv_outside_1_9_names_line_participant_and_trial(tmp_path):
    from physiosync import DataFormatError
    from physiosync.datasets._deap_bdf import read_participant_ratings

    csv = tmp_path / "participant_ratings.csv"
    csv.write_text("Participant_id,Trial,Experiment_id,Start_time,Valence,Arousal,Dominance,"
                   "Liking\n1,1,3,2000000,5.5,3,4,6\n1,2,1,9000000,7,2.25,0,9\n"
                   "2,1,1,0,,5,5,5\n")
    with pytest.raises(DataFormatError) as err:
        read_participant_ratings(csv)
    assert str(err.value) == (f"{csv}: participant 1, Trial 2 (line 3): Dominance rating 0 is "
                              "outside the DEAP scale 1-9; expected self-assessment ratings "
                              "from 1 to 9.")
    csv.write_text(csv.read_text().replace(",0,9", ",1,9"))
    assert read_participant_ratings(csv)["Dominance"].tolist()[:2] == [4, 1]  # NaN: as before


@pytest.fixture(scope="module")
def small_dreamer(tmp_path_factory):
    from physiosync.synthetic import make_dreamer

    return make_dreamer(tmp_path_factory.mktemp("dreamer") / "DREAMER.mat", n_subjects=2,
                        n_trials=2, seconds=3.0, seed=1, baseline_seconds=2.0)


@pytest.mark.parametrize("value, shown", [(0.0, "0"), (99.0, "99"), (-3.0, "-3"),
                                          (2.5, "2.5")])
def test_dreamer_score_off_the_sam_scale_is_one_line(small_dreamer, tmp_path, capsys, value,
                                                     shown):
    import scipy.io

    d = scipy.io.loadmat(small_dreamer)["DREAMER"]
    d[0, 0]["Data"][0, 1]["ScoreArousal"][0, 0][1, 0] = value
    path = tmp_path / "DREAMER.mat"
    scipy.io.savemat(path, {"DREAMER": d}, do_compression=True)
    assert main(["info", "dreamer", str(path)]) == 2
    assert _error_line(capsys) == (
        f"{path}: DREAMER.Data{{2}}.ScoreArousal{{2}} (subject 2, trial 2, 1-based) is "
        f"{shown}; expected an integer SAM rating from 1 to 5.")


# ---- subject files are matched by the release's names, and what is skipped is said --------
def test_deap_names_skipped_files_in_one_warning(deap_dat_dir, tmp_path, caplog):
    from physiosync.datasets import DEAP

    (tmp_path / "s02.dat").write_bytes((deap_dat_dir / "s02.dat").read_bytes())
    (tmp_path / "S01.DAT").write_bytes((deap_dat_dir / "s01.dat").read_bytes())
    for stray in ("s1.dat", "s99.dat", "s03.dat.bak", "notes.dat"):
        (tmp_path / stray).write_text("x")
    (tmp_path / "README").write_text("x")  # not a subject file: not mentioned
    deap = DEAP(tmp_path, verbose=False)  # warnings are shown at every verbosity
    assert deap.subjects == [2]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"DEAP at {tmp_path}: skipped 5 file(s) not named s01.dat..s32.dat (lower case, two "
        "digits, as in the release): S01.DAT, notes.dat, s03.dat.bak, s1.dat, s99.dat; "
        "rename them to read them."]


def test_deap_folder_of_misnamed_files_says_what_it_found(deap_dat_dir, tmp_path, capsys,
                                                          monkeypatch):
    (tmp_path / "S01.DAT").write_bytes((deap_dat_dir / "s01.dat").read_bytes())
    assert main(["info", "deap", str(tmp_path)]) == 2
    assert _error_line(capsys) == (
        f"No DEAP subject files (sXX.dat or sXX.bdf, XX = 01..32) in {tmp_path} or in its "
        f"data_preprocessed_python/ and data_original/ subfolders; found {tmp_path}: 1 file(s) "
        "not named s01.dat..s32.dat (lower case, two digits, as in the release): S01.DAT, so "
        "rename them.")
    (tmp_path / "s02.dat").write_bytes((deap_dat_dir / "s02.dat").read_bytes())
    _as_on_a_terminal(monkeypatch)
    assert main(["info", "deap", str(tmp_path)]) == 0
    assert capsys.readouterr().err.startswith(
        f"WARNING [physiosync] DEAP at {tmp_path}: skipped 1 file(s) not named")


# ---- paths with bytes that are not UTF-8 -------------------------------------------------
def test_non_utf8_bytes_in_out_and_data_root_are_logged_and_printed(deap_dat_dir, tmp_path,
                                                                    capsys):
    """``--out $'run\\xff'`` reaches Python as a lone surrogate: run.log keeps every line
    (as a \\udcff escape), stdout prints the path, and no "--- Logging error ---" appears.
    pytest's captured stdout is strict UTF-8, as a terminal's under a UTF-8 locale."""
    import shutil

    root = tmp_path / "data\udcfe"
    shutil.copytree(deap_dat_dir, root)
    out = tmp_path / "run\udcff"
    assert main(["cv", "--dataset", "deap", "--data-root", str(root), "--out", str(out),
                 "--cache-dir", str(tmp_path / "cache"), *CV_TINY, "-q"]) == 0
    captured = capsys.readouterr()
    assert "Logging error" not in captured.err and "Traceback" not in captured.err
    assert captured.out.splitlines()[-1] == f"report: {tmp_path}/run\\udcff/report.html"
    log = (out / "run.log").read_text(encoding="utf-8")  # valid UTF-8 text
    assert f"DEAP (dat) at {tmp_path}/data\\udcfe: 3 subjects" in log
    assert f"-> {tmp_path}/run\\udcff\n" in log
    assert (out / "report.json").is_file()
    md = (out / "report.md").read_text(encoding="utf-8")  # names the data, as UTF-8 text
    assert f"{tmp_path}/data\\udcfe" in md


# ---- pre-trained checkpoints: another configuration, NaN weights ---------------------------
@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A tiny pre-training (3 subjects x 6 trials x 10 s) and the options that made it."""
    from physiosync.synthetic import make_deap

    tmp = tmp_path_factory.mktemp("pretrained")
    root = make_deap(tmp / "d", n_subjects=3, n_trials=6, seconds=10, effect=2, seed=2,
                     verbose=False)
    common = ["--dataset", "deap", "--data-root", str(root), "--config", "tiny", "-q",
              "--cache-dir", str(tmp / "cache")]
    assert main(["pretrain", *common, "--out", str(tmp / "ck")]) == 0
    return tmp / "ck", common


def test_finetune_with_encoders_of_another_configuration_names_the_keys(pretrained, tmp_path,
                                                                        capsys):
    ck, common = pretrained
    capsys.readouterr()
    out = tmp_path / "ft"
    assert main(["finetune", *common, "--pretrained", str(ck), "--out", str(out),
                 "--set", "pretrain.long.embed_dim=16"]) == 2
    assert _error_line(capsys) == (
        f"{ck}/pretrain_long.pt: its long encoders were pre-trained with another "
        "configuration than this run's pretrain.long: embed_dim 8 (pre-trained) vs 16 (this "
        "run); give finetune the --config and --set that pretrain was given, or pre-train "
        "again.")
    assert main(["finetune", *common, "--pretrained", str(ck), "--out", str(out),
                 "--set", "pretrain.embedding=factorised"]) == 2
    assert _error_line(capsys).startswith(
        f"{ck}/pretrain_long.pt: its long encoders were pre-trained with another "
        "configuration than this run's pretrain.long: embedding 'multiview' (pre-trained) vs "
        "'factorised' (this run)")
    assert not out.exists()  # refused before the run folder was claimed


def test_nan_weights_name_the_checkpoint_and_the_repaired_rerun_runs(pretrained, tmp_path,
                                                                     capsys):
    import shutil

    import torch

    from physiosync.training.checkpoints import read_checkpoint, save_checkpoint

    good, common = pretrained
    ck = tmp_path / "ck"
    shutil.copytree(good, ck)
    data = read_checkpoint(ck / "pretrain_short.pt")
    name = next(k for k, v in data["model"].items() if v.is_floating_point())
    data["model"][name] = torch.full_like(data["model"][name], float("nan"))
    save_checkpoint(ck / "pretrain_short.pt", data)
    capsys.readouterr()
    argv = ["finetune", *common, "--pretrained", str(ck), "--out", str(tmp_path / "ft")]
    assert main(argv) == 2
    n = data["model"][name].numel()
    assert _error_line(capsys) == (
        f"{ck}/pretrain_short.pt: weight {name!r} holds {n} NaN or infinite value(s) of {n}; "
        "the checkpoint is damaged: restore a good copy or write it again (e.g. physiosync "
        "pretrain --no-resume).")
    shutil.copy2(good / "pretrain_short.pt", ck / "pretrain_short.pt")  # the repair
    assert main(argv) == 0
    assert "fine-tuned 2 epochs" in capsys.readouterr().out


def test_deap_misnamed_files_beside_the_release_folder_are_named_too(deap_dat_dir, tmp_path,
                                                                      caplog):
    from physiosync.datasets import DEAP

    sub = tmp_path / "data_preprocessed_python"
    sub.mkdir()
    (sub / "s02.dat").write_bytes((deap_dat_dir / "s02.dat").read_bytes())
    (tmp_path / "S03.DAT").write_bytes((deap_dat_dir / "s03.dat").read_bytes())
    assert DEAP(tmp_path).subjects == [2]
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == [
        f"DEAP at {tmp_path}: skipped 1 file(s) not named s01.dat..s32.dat (lower case, two "
        "digits, as in the release): S03.DAT; rename them to read them."]
