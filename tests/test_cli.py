"""The ``physiosync`` command line."""

import subprocess
import sys

import pytest

from physiosync.cli import main


def test_synth_deap_and_info(tmp_path, capsys):
    out = tmp_path / "deap"
    assert main(["synth", "deap", str(out), "--subjects", "2", "--trials", "3",
                 "--seconds", "6", "--effect", "0", "--seed", "3"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["s01.dat", "s02.dat"]
    assert main(["info", "deap", str(out)]) == 0
    text = capsys.readouterr().out
    assert "<DEAP dat" in text and "high_valence_%" in text


def test_prepare_command(tmp_path, deap_dat_dir, capsys):
    assert main(["prepare", "deap", str(deap_dat_dir), "--cache-dir", str(tmp_path / "c")]) == 0
    text = capsys.readouterr().out
    assert "1 s windows: 120" in text and "5 s windows: 24" in text
    assert any((tmp_path / "c").iterdir())


def test_demo_prints_a_summary_table(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "demo"), "--subjects", "2", "--trials", "4",
                 "--seconds", "5"]) == 0
    text = capsys.readouterr().out
    assert "faa~valence" in text and "windows_5s" in text
    assert (tmp_path / "demo" / "data_preprocessed_python" / "s02.dat").is_file()


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
