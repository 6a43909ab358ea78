"""The ``physiosync`` command line."""

import re
import subprocess
import sys

import pytest

from physiosync.cli import main


def test_synth_deap_and_info(tmp_path, capsys):
    out = tmp_path / "deap"
    assert main(["synth", "deap", str(out), "--subjects", "2", "--trials", "3",
                 "--seconds", "6", "--effect", "0", "--seed", "3"]) == 0
    # with the list of the files physiosync wrote there
    assert sorted(p.name for p in out.iterdir()) == [".physiosync-files", "s01.dat", "s02.dat"]
    assert main(["info", "deap", str(out)]) == 0
    text = capsys.readouterr().out
    assert "<DEAP dat" in text and "high_valence_%" in text


def test_prepare_command(tmp_path, deap_dat_dir, capsys):
    assert main(["prepare", "deap", str(deap_dat_dir), "--cache-dir", str(tmp_path / "c")]) == 0
    text = capsys.readouterr().out
    assert "1 s windows: 120" in text and "5 s windows: 24" in text
    assert any((tmp_path / "c").iterdir())


@pytest.mark.integration
def test_demo_runs_the_whole_pipeline_and_prints_the_report_path(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--subjects", "3", "--trials", "6",
                 "--seconds", "10", "--config", "tiny", "--set", "protocol.n_splits=2",
                 "-q"]) == 0
    text = capsys.readouterr().out
    assert (out / "data_preprocessed_python" / "s03.dat").is_file()
    assert "physiosync" in text and "bandpower" in text and "no-pretrain" in text
    assert "(within-trial-kfold, 2 folds, target valence)" in text
    # what it will train and its estimated time, before training (tests/evaluation/test_cost.py)
    assert text.index("cost per pipeline") < text.index("estimated time: about ") < \
        text.index("3/3 report written")
    # the demo says which embedding it uses (tiny only changes sizes)
    assert "model: a small PhysioSync with the spectral embedding" in text
    assert "PhysioSync, spectral embedding (long 5 s, short 1 s), no pre-training" in text
    # The table leads with the per-subject headline, its chance level beside it; the demo
    # pools fine-tuning, so comparisons pair folds, and 2 folds cannot reach p < 0.05.
    assert "headline: per-subject balanced accuracy" in text
    table = text[text.index("headline: "):].splitlines()
    row = next(line for line in table if line.startswith("physiosync "))
    assert re.match(r"physiosync +(\d\.\d{3} ± \d\.\d{3}|n/a) +0\.500 ", row)
    assert "paired by fold, n = 2" in text and "primary test: corrected-t" in text
    assert "warning:" in text
    # it says whether the results are significant, and what a user must change
    said = next(line for line in text.splitlines() if line.startswith("significance: "))
    assert "within-subject permutation p" in said and "(1000 permutations" in said
    assert "paired over 2 folds" in said and "(--folds, --subjects)" in said
    assert text.strip().splitlines()[-1] == f"report: {out / 'run' / 'report.html'}"
    assert (out / "run" / "report.html").is_file() and (out / "run" / "config.yaml").is_file()


@pytest.mark.parametrize("protocol, said", [
    ("within-trial-kfold", "3 folds"), ("subject-kfold", "3 folds"),
    ("subject-stimulus-kfold", "3 folds"), ("legacy-segment", "3 folds"),
    # leave-one-out protocols ignore n_splits
    ("loso", "one fold per subject"), ("within-loto", "one fold per stimulus"),
    ("cross-session", "one fold per session"),
    ("session-split", "one fold (the first trials of each session train, the others test)"),
])
def test_demo_says_how_many_folds_the_protocol_makes(protocol, said):
    from physiosync.cli._study import _folds_text
    from physiosync.params import PROTOCOLS, ProtocolConfig

    assert protocol in PROTOCOLS
    assert _folds_text(ProtocolConfig(name=protocol, n_splits=3)) == said


def test_errors_are_one_line_messages(tmp_path, capsys):
    assert main(["info", "deap", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("physiosync: error:") and "missing" in err
    assert "Traceback" not in err


def test_console_script_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "physiosync.cli", "--version"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("physiosync ")


def test_bad_arguments_exit_with_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["synth", "edf", "x"])
    assert info.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_pretrain_then_finetune_commands_write_loadable_checkpoints(tmp_path, capsys):
    from physiosync import load_checkpoint
    from physiosync.synthetic import make_deap

    root = make_deap(tmp_path / "d", n_subjects=3, n_trials=6, seconds=10, effect=2, seed=2)
    common = ["--dataset", "deap", "--data-root", str(root), "--config", "tiny", "-q",
              "--cache-dir", str(tmp_path / "cache")]
    assert main(["pretrain", *common, "--out", str(tmp_path / "ck")]) == 0
    text = capsys.readouterr().out
    # each run's steps (the tiny preset's 2) and their time from a few timed steps
    assert "pre-training the long encoders" in text
    assert re.search(r"pretrain_short\.pt \(2 steps, about \S+ (s|min|h) here with \d+ "
                     r"torch threads?, from 1 warm-up \+ 3 timed steps\)", text)
    models, config, meta = load_checkpoint(tmp_path / "ck" / "pretrain_short.pt")
    assert meta["kind"] == "pretrain" and meta["step"] == 2
    assert main(["finetune", *common, "--pretrained", str(tmp_path / "ck"), "--test-trials",
                 "4,5", "--out", str(tmp_path / "ck")]) == 0
    text = capsys.readouterr().out
    assert "held-out trials [4, 5]: accuracy" in text
    assert re.search(r"finetune\.pt \(2 epochs of \d+ steps, about \S+ (s|min|h) here", text)
    models, _, meta = load_checkpoint(tmp_path / "ck" / "finetune.pt")
    assert meta["kind"] == "finetune"
    assert main(["finetune", *common, "--test-trials", "9", "--out", str(tmp_path / "x")]) == 2
    assert "--test-trials [9] are not trials of the data" in capsys.readouterr().err


def test_pretrain_command_offers_the_eeg_only_simclr_objective(tmp_path, capsys):
    from physiosync import load_checkpoint
    from physiosync.synthetic import make_deap

    root = make_deap(tmp_path / "d", n_subjects=3, n_trials=4, seconds=10, effect=2, seed=2)
    common = ["--dataset", "deap", "--data-root", str(root), "--config", "tiny", "-q",
              "--cache-dir", str(tmp_path / "cache")]
    assert main(["pretrain", *common, "--objective", "simclr", "--out",
                 str(tmp_path / "ck")]) == 0
    for name in ("long", "short"):
        _, config, meta = load_checkpoint(tmp_path / "ck" / f"pretrain_{name}.pt")
        assert config["objective"] == "simclr" and config["modalities"] == ["eeg"]
        assert {"simclr", "loss"} <= set(meta["history"][0])
        assert "cmca" not in meta["history"][0]
    capsys.readouterr()
    # the folder holds another objective's run: refused, never overwritten silently
    assert main(["pretrain", *common, "--out", str(tmp_path / "ck")]) == 2
    assert "simclr" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["pretrain", *common, "--objective", "byol", "--out", str(tmp_path / "x")])
    assert "invalid choice: 'byol'" in capsys.readouterr().err


def test_finetune_held_out_line_gives_chance_levels_and_warns_on_one_class(capsys):
    import numpy as np

    from physiosync.cli._model import _held_out_line
    from physiosync.evaluation.fit import HeldOutScores

    chance = {"accuracy": 0.5, "balanced_accuracy": 0.5}
    both = _held_out_line([4, 5], HeldOutScores({"accuracy": 0.75, "balanced_accuracy": 0.7},
                                                chance, np.array([0, 1]), 4))
    assert both == ("held-out trials [4, 5]: accuracy 0.750 (chance 0.500), balanced "
                    "accuracy 0.700 (chance 0.500) (4 windows)")
    assert capsys.readouterr().err == ""
    # one class in the test set: the training majority (1) scores 0, balanced accuracy undefined
    one = _held_out_line([3], HeldOutScores({"accuracy": 0.0, "balanced_accuracy": 0.0},
                                            {"accuracy": 0.0, "balanced_accuracy": 1.0},
                                            np.array([0]), 3))
    assert one == ("held-out trials [3]: accuracy 0.000 (chance 0.000), balanced accuracy "
                   "undefined (one class) (3 windows)")
    err = capsys.readouterr().err
    assert err.startswith("physiosync: warning: the held-out trials [3] hold one class only "
                          "(class 0, 3 windows)") and err.count("\n") == 1


def test_finetune_on_one_class_held_out_trials_warns(tmp_path, capsys):
    from physiosync.synthetic import make_deap

    # trials 3 and 4 are rated high valence by all three subjects of this seed
    root = make_deap(tmp_path / "d", n_subjects=3, n_trials=6, seconds=10, effect=2, seed=2)
    assert main(["finetune", "--dataset", "deap", "--data-root", str(root), "--config", "tiny",
                 "-q", "--cache-dir", str(tmp_path / "cache"), "--test-trials", "3,4",
                 "--out", str(tmp_path / "ft")]) == 0
    out, err = capsys.readouterr()
    assert "held-out trials [3, 4]: accuracy" in out and "(chance 1.000)" in out
    assert "balanced accuracy undefined (one class) (12 windows)" in out
    assert "physiosync: warning: the held-out trials [3, 4] hold one class only (class 1" in err


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX pipes")
def test_a_reader_that_leaves_the_pipe_ends_the_command_quietly():
    """``physiosync configs | head -1``: once the reader of stdout has gone, the command
    stops with the shell's 141 (128 + SIGPIPE) and no error line, not "cannot access a
    file: Broken pipe"."""
    import os

    read, write = os.pipe()
    os.close(read)  # the reader left before anything was written
    try:
        proc = subprocess.run([sys.executable, "-m", "physiosync", "configs"], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert (proc.returncode, proc.stderr) == (141, "")
