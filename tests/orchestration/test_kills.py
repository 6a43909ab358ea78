"""``kill -9`` at random points of ``cv``, ``pretrain`` and ``prepare``, then a resume.

The harness is ``benchmarks/kills.py``; this runs a short version of it (one or two
kills per command) and, under ``slow``, the full campaign of 20 kills per command.
"""

import random

import pytest

from _benchmarks import load_benchmark


@pytest.fixture(scope="module")
def kills():
    return load_benchmark("kills")


@pytest.fixture(scope="module")
def data(kills, tmp_path_factory):
    return kills.setup(tmp_path_factory.mktemp("kills"))


@pytest.mark.integration
@pytest.mark.parametrize("command", ["cv", "pretrain", "prepare"])
def test_a_run_killed_mid_run_resumes_to_identical_results(kills, data, tmp_path, command):
    reference, _ = kills.reference_run(command, data, tmp_path / "reference", quick=True)
    rng = random.Random(command)
    # one kill each for cv and pretrain keeps the suite fast (every trial starts two
    # interpreters that import torch); the slow test below makes 20 per command
    for i in range(2 if command == "prepare" else 1):
        folder = tmp_path / f"trial_{i}"
        # the kill lands a random moment after the run took its lock (cv, pretrain) or
        # created its cache (prepare): always mid-run, never during the imports alone
        marker = folder / ("cache" if command == "prepare" else "run/.physiosync.lock")
        res = kills.trial(command, data, folder, rng.uniform(0.0, 0.4), reference,
                          wait_for=marker, quick=True)
        assert res["landed_mid_run"] and res["killed_rc"] == -9, res
        assert res["ok"], res
        assert res["resume_rc"] == 0
        if command != "prepare":  # the killed run's lock was stale and taken over
            assert res["lock_left_by_kill"] and not res["lock_left_after_resume"], res


@pytest.mark.slow
def test_twenty_kills_per_command_all_resume_identically(kills, tmp_path):
    summary = kills.campaign(20, tmp_path, seed=0, log=lambda *a: None)
    for command, counts in summary["commands"].items():
        assert counts["trials"] == 20
        assert counts["failures"] == 0, [t for t in summary["trials"] if not t["ok"]]
        assert counts["resumed_identical"] == 20
        assert counts["landed_mid_run"] >= 10, (command, counts)


def test_two_prepare_processes_on_one_cache_agree_and_leave_a_valid_cache(
        kills, data, tmp_path):
    # Two runs into one --out are covered by tests/orchestration/test_runfolder.py
    # (test_two_concurrent_runs_into_one_out_one_wins_and_the_folder_is_consistent).
    import subprocess

    import numpy as np

    cache = tmp_path / "cache"
    argv = kills._cli("prepare", "deap", str(data["large"]), "--cache-dir", str(cache),
                      "--verify")
    procs = [subprocess.Popen(argv, env=kills._env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outcomes = [(p.wait(timeout=300), *p.communicate()) for p in procs]
    assert [rc for rc, _, _ in outcomes] == [0, 0], outcomes
    assert outcomes[0][1] == outcomes[1][1]  # the same summary of the same arrays
    entries = sorted(cache.glob("DEAP-*"))
    assert len(entries) == 8  # one per subject, none duplicated
    assert not [p for p in cache.iterdir() if p.name.startswith(".physiosync-tmp-")]
    # valid: a third run verifies every checksum and is a clean hit (nothing rewritten)
    before = kills._entry_stamps(cache)
    third = subprocess.run(argv, env=kills._env(), capture_output=True, text=True)
    assert third.returncode == 0 and "Ignoring damaged" not in third.stderr, third.stderr
    assert kills._entry_stamps(cache) == before
    # and it holds what a single writer writes
    single = tmp_path / "single"
    subprocess.run(kills._cli("prepare", "deap", str(data["large"]), "--cache-dir",
                              str(single)), env=kills._env(), check=True, capture_output=True)
    for entry in entries:
        for npy in entry.glob("*.npy"):
            assert np.array_equal(np.load(npy), np.load(single / entry.name / npy.name))


def test_a_run_log_left_by_an_attempt_killed_before_claiming_does_not_block_the_resume(
        deap_dat_dir, tmp_path):
    # Found by the kill campaign: a kill between the start of run.log and the marker left
    # a folder that the same command refused as "files physiosync did not write".
    from physiosync.cli import main

    out = tmp_path / "run"
    out.mkdir()
    (out / "run.log").write_text("INFO [physiosync] an attempt killed before claiming\n")
    assert main(["cv", "--dataset", "deap", "--data-root", str(deap_dat_dir), "--config",
                 "tiny", "--folds", "2", "--pipelines", "bandpower", "--out", str(out), "-q",
                 "--set", "protocol.one_class=constant",
                 "--cache-dir", str(tmp_path / "cache")]) == 0
    assert (out / "report.json").is_file()
    assert "an attempt killed before claiming" in (out / "run.log").read_text()


def test_temporary_files_of_a_killed_writer_are_removed_when_the_run_resumes(tmp_path):
    # Found by the kill campaign: a kill inside a checkpoint write left
    # .pretrain_short.pt.tmp-PID, which the resume kept for ever.
    from physiosync.runfolder import RunFolder, fingerprint_of

    fp = fingerprint_of({"run": 1})
    with RunFolder(tmp_path / "ck", "pretrain", fp) as folder:
        folder.claim()
    # physiosync's temporary name, of a process that is gone (pid 99999999)
    left = tmp_path / "ck" / ".physiosync-tmp-99999999-0123456789ab-pretrain_short.pt"
    left.write_bytes(b"partial")
    with RunFolder(tmp_path / "ck", "pretrain", fp) as folder:
        assert folder.state == "resume"
        folder.claim()
    assert not left.exists()


@pytest.mark.integration
@pytest.mark.parametrize("command", ["prepare", "synth", "report"])
def test_a_sigterm_is_ctrl_c_and_the_resume_is_identical(kills, data, tmp_path, command):
    # cv, also under --executor processes, is tests/preprocessing/test_signals.py's
    data = dict(data)
    if command == "report":
        rc, err, _ = kills.run_to_end(kills.command_args("cv", data, tmp_path / "src", True))
        assert rc == 0, err
        data["report_source"] = tmp_path / "src" / "run"
    reference, ref_s = kills.reference_run(command, data, tmp_path / "reference")
    rng = random.Random(command)
    for i in range(1):  # one signal per command here; 20 in the slow campaign below
        res = kills.term_trial(command, data, tmp_path / f"trial_{i}",
                               rng.uniform(0.3, 0.9) * ref_s, reference)
        # exit 143 and one line, or (outside main) -15 and nothing; never a temp file,
        # a lock or a process left, and the resume identical
        assert res["ok"], res
        assert res["landed"] in ("mid-run", "outside main", "after the end"), res


@pytest.mark.slow
def test_twenty_sigterms_per_command_are_ctrl_c_and_resume_identically(kills, tmp_path):
    summary = kills.term_campaign(20, tmp_path, seed=0, quick=True, log=lambda *a: None)
    for command, counts in summary["commands"].items():
        assert counts["trials"] == 20
        assert counts["failures"] == 0, [t for t in summary["trials"] if not t["ok"]]
        assert counts["resumed_identical"] == 20 and counts["processes_left"] == 0
        assert counts["landed_mid_run"] >= 5, (command, counts)
