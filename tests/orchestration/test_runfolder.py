"""Run folders: a run never destroys another run's results or the user's files."""

import json
import os
import socket
import subprocess
import sys

import pytest

import physiosync.experiment.planning as planning
from conftest import one_line_error
from physiosync.cli import main
from physiosync.exceptions import PhysioSyncError, RunFolderError
from physiosync.runfolder import LOCK, MARKER, FolderLock, RunFolder, fingerprint_of


def _args(root, out, *extra, cache=None):
    return ["cv", "--dataset", "deap", "--data-root", str(root), "--config", "tiny",
            "--folds", "2", "--pipelines", "bandpower", "--out", str(out), "-q",
            "--set", "protocol.one_class=constant",
            "--cache-dir", str(cache or out.parent / "cache"), *extra]


def _cv(root, out, *extra):
    return main(_args(root, out, *extra))


def _snapshot(folder):
    """Every file under *folder* with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _no_compute(monkeypatch):
    monkeypatch.setattr(planning, "load_experiment_data",
                        lambda cfg: pytest.fail("prepared data before checking --out"))


@pytest.fixture
def valence_run(deap_dat_dir, tmp_path):
    out = tmp_path / "a"
    assert _cv(deap_dat_dir, out) == 0
    return out


def test_a_different_run_is_refused_before_any_compute_and_changes_nothing(
        deap_dat_dir, valence_run, monkeypatch, capsys):
    before = _snapshot(valence_run)
    assert MARKER in before and LOCK not in before
    capsys.readouterr()
    _no_compute(monkeypatch)
    assert _cv(deap_dat_dir, valence_run, "--target", "arousal") == 2
    err = one_line_error(capsys)
    assert "holds a cv run (target valence" in err and "not this cv run (target arousal" in err
    assert "use --overwrite" in err and "another --out" in err
    assert _snapshot(valence_run) == before  # report.json and every fold byte for byte


def test_the_same_run_resumes_without_recomputing(deap_dat_dir, valence_run, monkeypatch):
    import physiosync.evaluation.runner as cv

    before = _snapshot(valence_run)
    monkeypatch.setattr(cv, "run_fold_with",
                        lambda *a, **k: pytest.fail("recomputed a finished fold"))
    assert _cv(deap_dat_dir, valence_run) == 0
    after = _snapshot(valence_run)
    assert after[MARKER] == before[MARKER]
    assert after["report.json"] == before["report.json"]


def test_overwrite_replaces_the_run_and_only_its_files(deap_dat_dir, valence_run):
    doc = json.loads((valence_run / MARKER).read_text())
    assert _cv(deap_dat_dir, valence_run, "--target", "arousal", "--overwrite") == 0
    report = json.loads((valence_run / "report.json").read_text())
    assert report["target"] == "arousal"
    assert "target: arousal" in (valence_run / "config.yaml").read_text()
    new = json.loads((valence_run / MARKER).read_text())
    assert new["runs"]["cv"]["fingerprint"] != doc["runs"]["cv"]["fingerprint"]
    assert new["runs"]["cv"]["description"].startswith("target arousal")


def test_a_folder_of_the_users_files_is_refused_even_with_overwrite(
        deap_dat_dir, tmp_path, monkeypatch, capsys):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "results.csv").write_text("my,own\n1,2\n")
    _no_compute(monkeypatch)
    for extra in ((), ("--overwrite",)):
        assert _cv(deap_dat_dir, out, *extra) == 2
        err = one_line_error(capsys)
        assert "did not write (results.csv)" in err and "another --out" in err
    assert sorted(p.name for p in out.iterdir()) == ["results.csv"]
    assert (out / "results.csv").read_text() == "my,own\n1,2\n"


def test_failed_checks_leave_no_folder_behind(deap_dat_dir, tmp_path):
    out = tmp_path / "new"
    assert _cv(deap_dat_dir, out, "--folds", "7") == 2  # more folds than stimuli
    assert not out.exists()


def test_out_that_is_a_file_is_refused(deap_dat_dir, tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert _cv(deap_dat_dir, tmp_path / "f") == 2
    assert "is a file, not a folder" in one_line_error(capsys)


def _write_lock(folder, pid):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK).write_text(json.dumps({"pid": pid, "host": socket.gethostname(),
                                           "token": "t" * 32}))


def test_a_lock_held_by_a_live_process_refuses_with_its_pid(deap_dat_dir, tmp_path,
                                                             monkeypatch, capsys):
    holder = subprocess.Popen(["sleep", "60"])
    try:
        out = tmp_path / "busy"
        _write_lock(out, holder.pid)
        _no_compute(monkeypatch)
        assert _cv(deap_dat_dir, out) == 2
        err = one_line_error(capsys)
        assert f"in use by process {holder.pid} on {socket.gethostname()}" in err
        assert json.loads((out / LOCK).read_text())["pid"] == holder.pid  # left alone
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_of_a_finished_process_is_taken_over(deap_dat_dir, tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    out = tmp_path / "stale"
    _write_lock(out, dead.pid)
    assert _cv(deap_dat_dir, out) == 0
    assert (out / "report.json").is_file()
    assert not (out / LOCK).exists()  # released at the end
    assert not [p for p in out.iterdir() if p.name.startswith(LOCK)]


def test_the_lock_is_released_on_an_exception_and_is_exclusive(tmp_path):
    fp = fingerprint_of({"x": 1})
    with pytest.raises(KeyboardInterrupt):
        with RunFolder(tmp_path / "r", "report", fp) as folder:
            assert (tmp_path / "r" / LOCK).is_file()
            folder.claim()
            with pytest.raises(RunFolderError, match=f"in use by process {os.getpid()}"):
                FolderLock(tmp_path / "r").acquire()
            raise KeyboardInterrupt
    assert not (tmp_path / "r" / LOCK).exists()
    with RunFolder(tmp_path / "r", "report", fp) as folder:  # the same run: resumes
        assert folder.state == "resume"
    assert issubclass(RunFolderError, PhysioSyncError)


def test_two_concurrent_runs_into_one_out_one_wins_and_the_folder_is_consistent(
        deap_dat_dir, tmp_path):
    out = tmp_path / "race"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "physiosync.cli",
                               *_args(deap_dat_dir, out, "--target", target,
                                      cache=tmp_path / f"cache_{target}")],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for target in ("valence", "arousal")]
    outcomes = [(p.wait(timeout=300), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    codes = sorted(code for code, _ in outcomes)
    assert codes == [0, 2], outcomes
    loser = next(err for code, err in outcomes if code == 2)
    assert loser.startswith("physiosync: error:") and loser.count("\n") == 1
    assert "in use by process" in loser or "holds a cv run" in loser
    report = json.loads((out / "report.json").read_text())
    assert f"target: {report['target']}" in (out / "config.yaml").read_text()
    marker = json.loads((out / MARKER).read_text())
    assert marker["runs"]["cv"]["description"].startswith(f"target {report['target']}")
    assert not (out / LOCK).exists()


def test_report_out_follows_the_same_rules(deap_dat_dir, valence_run, tmp_path, capsys):
    b = tmp_path / "b"
    assert _cv(deap_dat_dir, b) == 0  # same settings as a: same folds
    merged = tmp_path / "merged"
    assert main(["report", str(valence_run), str(b), "--out", str(merged)]) == 0
    assert main(["report", str(valence_run), str(b), "--out", str(merged)]) == 0  # same
    before = _snapshot(merged)
    capsys.readouterr()
    assert main(["report", str(b), str(valence_run), "--out", str(merged)]) == 2
    assert "holds a report run" in one_line_error(capsys)
    assert _snapshot(merged) == before
    # a merge into a cv run's folder would replace its report: refused
    a_before = _snapshot(valence_run)
    assert main(["report", str(valence_run), str(b), "--out", str(b)]) == 2
    assert "holds a cv run" in one_line_error(capsys)
    assert main(["report", str(valence_run)]) == 0  # re-rendering in place is fine
    assert _snapshot(valence_run)["report.json"] == a_before["report.json"]
    assert main(["report", str(b), str(valence_run), "--out", str(merged),
                 "--overwrite"]) == 0


def test_pretrain_out_refuses_a_different_pretraining_and_shares_with_finetune(
        deap_dat_dir, tmp_path, monkeypatch, capsys):
    import physiosync.training.pretrain

    common = ["--dataset", "deap", "--data-root", str(deap_dat_dir), "--config", "tiny",
              "-q", "--cache-dir", str(tmp_path / "cache"), "--out", str(tmp_path / "ck")]
    assert main(["pretrain", *common]) == 0
    assert main(["finetune", *common, "--pretrained", str(tmp_path / "ck")]) == 0
    runs = json.loads((tmp_path / "ck" / MARKER).read_text())["runs"]
    assert set(runs) == {"pretrain", "finetune"}
    # each writes its own plain log beside its checkpoints
    assert "long encoders:" in (tmp_path / "ck" / "pretrain.log").read_text()
    assert "fine-tuned" in (tmp_path / "ck" / "finetune.log").read_text()
    before = _snapshot(tmp_path / "ck")
    capsys.readouterr()
    monkeypatch.setattr(physiosync.training.pretrain, "pretrain",
                        lambda *a, **k: pytest.fail("trained before checking --out"))
    _no_compute(monkeypatch)
    assert main(["pretrain", *common, "--seed", "7"]) == 2
    assert "holds a pretrain run" in one_line_error(capsys)
    assert main(["finetune", *common]) == 2  # from scratch now: a different fine-tuning
    assert "holds a finetune run" in one_line_error(capsys)
    assert _snapshot(tmp_path / "ck") == before


_RACER = """
import os, sys, time
from pathlib import Path
from physiosync.exceptions import RunFolderError
from physiosync.runfolder import FolderLock
folder, go = Path(sys.argv[1]), Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
try:
    with FolderLock(folder):
        print("got", flush=True)
        time.sleep(3)
except RunFolderError as err:
    print("busy", err, flush=True)
"""


def test_racing_takeovers_of_a_stale_lock_let_exactly_one_process_in(tmp_path):
    dead = subprocess.Popen(["true"])
    dead.wait()
    folder = tmp_path / "contended"
    _write_lock(folder, dead.pid)
    go = tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", _RACER, str(folder), str(go)],
                              stdout=subprocess.PIPE, text=True) for _ in range(4)]
    for p in procs:
        assert p.stdout.readline().strip() == "ready"
    go.touch()
    lines = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert sum(line == "got" for line in lines) == 1, lines
    assert all(line == "got" or "in use by process" in line for line in lines), lines
    assert not (folder / LOCK).exists()
    assert not list(folder.iterdir())  # no stale copies or temporary files left


def test_reports_fingerprint_depends_on_report_content_and_names_not_key_order():
    from physiosync.runfolder import reports_fingerprint

    a = reports_fingerprint([{"x": 1, "y": [2, 3]}], ["run"])
    assert a["sha256"] == reports_fingerprint([{"y": [2, 3], "x": 1}], ["run"])["sha256"]
    assert a["sha256"] != reports_fingerprint([{"x": 1, "y": [2, 3]}], ["other"])["sha256"]
    assert a["sha256"] != reports_fingerprint([{"x": 2, "y": [2, 3]}], ["run"])["sha256"]


def test_report_owner_names_only_a_run_that_wrote_every_report_file(tmp_path):
    from physiosync._utils import atomic_write
    from physiosync.runfolder import report_owner

    out = tmp_path / "rep"
    assert report_owner(out) is None  # no folder
    with RunFolder(out, "report", fingerprint_of({"reports": []})) as folder:
        folder.claim(sources=[])
        atomic_write(out / "report.json", "{}")
    assert report_owner(out) == "report"
    (out / "report.md").write_text("the user's own notes")  # not written by the run
    assert report_owner(out) is None
    (out / "report.md").unlink()
    (out / MARKER).write_text("not json")
    assert report_owner(out) is None
