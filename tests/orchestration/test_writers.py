"""Writers never destroy what physiosync did not write (issue 19, sections 1 and 5).

Each test reproduces a defect found by the hostile-user campaign: the user's files keep
their bytes, the command ends with exit code 2 and one line.
"""

import json
import os
import time
from pathlib import Path

import pytest

from conftest import one_line_error
from physiosync.cli import main
from physiosync.runfolder import LOCK, MANIFEST, MARKER, RunFolder, fingerprint_of
from physiosync._utils.io import TMP_PREFIX, is_own_temp, temp_name
from physiosync._utils.manifest import read_manifest


def _args(root, out, *extra):
    return ["cv", "--dataset", "deap", "--data-root", str(root), "--config", "tiny",
            "--folds", "2", "--pipelines", "bandpower", "--out", str(out), "-q",
            "--set", "protocol.one_class=constant",
            "--cache-dir", str(out.parent / "cache"), *extra]


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture
def run_b(deap_dat_dir, tmp_path):
    out = tmp_path / "runB"
    assert main(_args(deap_dat_dir, out)) == 0
    return out


def test_the_manifest_lists_every_file_the_run_wrote(run_b):
    listed = read_manifest(run_b)
    written = {rel for rel in _snapshot(run_b) if rel not in (MARKER, MANIFEST)}
    assert written <= set(listed), written - set(listed)
    assert "folds/bandpower/fold_00.json" in listed and listed["run.log"] == "cv"


def test_overwrite_refuses_a_user_file_inside_folds_and_changes_nothing(
        deap_dat_dir, run_b, capsys):
    notes = run_b / "folds" / "bandpower" / "notes.txt"
    notes.write_text("my notes\n")
    (run_b / "folds" / "mine.csv").write_text("a,b\n")
    before = _snapshot(run_b)
    capsys.readouterr()
    assert main(_args(deap_dat_dir, run_b, "--target", "arousal", "--overwrite")) == 2
    err = one_line_error(capsys)
    assert "did not write (folds/bandpower/notes.txt, folds/mine.csv)" in err
    assert _snapshot(run_b) == before


def test_overwrite_deletes_only_listed_files(deap_dat_dir, run_b):
    fold = run_b / "folds" / "bandpower" / "fold_00.json"
    old = fold.read_bytes()
    listed = read_manifest(run_b)
    del listed["folds/bandpower/fold_00.json"]  # as if a user had put this file there
    (run_b / MANIFEST).write_text("".join(json.dumps([k, r]) + "\n"
                                          for r, k in listed.items()))
    assert main(_args(deap_dat_dir, run_b, "--target", "arousal", "--overwrite")) == 2
    assert fold.read_bytes() == old


def test_overwrite_keeps_run_log_with_the_new_runs_lines(deap_dat_dir, run_b):
    old = (run_b / "run.log").read_text()
    assert main(_args(deap_dat_dir, run_b, "--target", "arousal", "--overwrite")) == 0
    log = (run_b / "run.log").read_text()
    assert log.startswith(old) and len(log) > len(old)
    new = log[len(old):]
    assert "folds x 1 pipelines" in new and str(run_b) in new


def test_a_resume_keeps_the_users_hidden_tmp_files(deap_dat_dir, run_b):
    mine = {run_b / ".draft.tmp.md": b"draft", run_b / ".env.tmp": b"KEY=1",
            run_b / "folds" / ".notes.tmp-1-abc": b"n"}
    for path, data in mine.items():
        path.write_bytes(data)
    stale = temp_name(run_b / "folds" / "bandpower" / "fold_00.json")
    stale = stale.with_name(stale.name.replace(f"-{os.getpid()}-", "-99999999-", 1))
    stale.write_bytes(b"partial")
    live = temp_name(run_b / "report.json")  # this process is alive: not a leftover
    live.write_bytes(b"being written")
    assert main(_args(deap_dat_dir, run_b)) == 0
    assert all(path.read_bytes() == data for path, data in mine.items())
    assert not stale.exists() and live.exists()


def test_temporary_names_carry_prefix_pid_and_token(tmp_path):
    name = temp_name(tmp_path / "fold_00.json").name
    assert name.startswith(f"{TMP_PREFIX}{os.getpid()}-") and name.endswith("-fold_00.json")
    assert is_own_temp(name)
    for other in (".fold_00.json.tmp-123-abcdef12", ".env.tmp", ".tmp-x", "a.tmp"):
        assert not is_own_temp(other)


def test_the_cache_sweep_removes_only_its_own_stale_folders(tmp_path):
    from physiosync.preprocessing.cache import _clean_stale_tmp

    old = time.time() - 3 * 24 * 3600
    theirs = tmp_path / ".tmp-other-program"
    theirs.mkdir()
    (theirs / "f").write_text("x")
    dead = tmp_path / f"{TMP_PREFIX}99999999-{'a' * 12}-deap-s01-abc"
    dead.mkdir()
    alive = tmp_path / f"{TMP_PREFIX}{os.getpid()}-{'b' * 12}-deap-s02-abc"
    alive.mkdir()
    for p in (theirs, dead, alive):
        os.utime(p, (old, old))
    _clean_stale_tmp(tmp_path)
    assert theirs.is_dir() and (theirs / "f").read_text() == "x"
    assert not dead.exists() and alive.is_dir()


def test_a_different_run_names_the_keys_that_differ(deap_dat_dir, run_b, capsys):
    before = _snapshot(run_b)
    capsys.readouterr()
    assert main(_args(deap_dat_dir, run_b, "--seed", "7")) == 2
    err = one_line_error(capsys)
    assert "they differ in seed (0 there, 7 here)" in err
    assert _snapshot(run_b) == before


@pytest.mark.parametrize("record", ["without settings", "same settings"])
def test_a_run_fingerprinted_by_another_version_says_why_it_cannot_resume(
        deap_dat_dir, run_b, capsys, record):
    # A folder made by an older physiosync: its record lists no settings (or the same
    # settings under a fingerprint computed another way), so no key can be named.
    import json

    marker = run_b / ".physiosync-run.json"
    doc = json.loads(marker.read_text())
    doc["runs"]["cv"]["fingerprint"] = "0" * 64
    if record == "without settings":
        del doc["runs"]["cv"]["settings"]
    marker.write_text(json.dumps(doc))
    before = _snapshot(run_b)
    capsys.readouterr()
    assert main(_args(deap_dat_dir, run_b)) == 2
    err = one_line_error(capsys)
    assert "cannot be resumed by this one" in err
    assert ("does not list its settings" if record == "without settings"
            else "their settings agree") in err
    assert _snapshot(run_b) == before


def test_an_unwritable_fold_is_named_and_the_lock_error_does_not_mask_it(
        deap_dat_dir, tmp_path, monkeypatch, capsys):
    # As if the run folder were made read-only mid-run (the tests may run as root,
    # which chmod does not stop): the fold write and the lock's removal both fail.
    import pathlib

    import physiosync.evaluation.fold_store as fold_store

    def refuse(path, data, **kw):
        raise PermissionError(13, "Permission denied", str(path))

    real_unlink = pathlib.Path.unlink

    def unlink(self, *a, **k):
        if self.name == LOCK:
            raise PermissionError(13, "Permission denied", str(self))
        return real_unlink(self, *a, **k)

    monkeypatch.setattr(fold_store, "atomic_write", refuse)
    monkeypatch.setattr(pathlib.Path, "unlink", unlink)
    out = tmp_path / "ro"
    assert main(_args(deap_dat_dir, out)) == 2
    err = one_line_error(capsys)
    assert f"cannot access {out / 'folds' / 'bandpower' / 'fold_00.json'}" in err
    assert LOCK not in err


def test_release_never_raises(tmp_path, monkeypatch):
    import pathlib

    def unlink(self, *a, **k):
        raise PermissionError(13, "Permission denied", str(self))

    folder = RunFolder(tmp_path / "r", "report", fingerprint_of({"a": 1}))
    with pytest.raises(ValueError, match="first"):
        with folder:
            folder.claim()
            monkeypatch.setattr(pathlib.Path, "unlink", unlink)
            raise ValueError("first")


def test_report_of_a_file_never_replaces_the_users_report_files(run_b, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "report.json").write_bytes((run_b / "report.json").read_bytes())
    (mine / "results.csv").write_text("my,own\n")
    (mine / "report.md").write_text("# my notes\n")
    before = _snapshot(mine)
    capsys.readouterr()
    assert main(["report", str(mine / "report.json")]) == 2
    err = one_line_error(capsys)
    assert "did not write (report.json, report.md, results.csv)" in err
    assert _snapshot(mine) == before
    # in its own run folder, the report is re-rendered
    assert main(["report", str(run_b / "report.json")]) == 0


@pytest.mark.parametrize("content", ["[1, 2, 3]", '{"a": 1}', '{"pipelines": ['])
def test_report_of_a_foreign_or_damaged_json_writes_nothing(tmp_path, capsys, content):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "x.json").write_text(content)
    assert main(["report", str(folder / "x.json")]) == 2
    one_line_error(capsys)
    assert sorted(p.name for p in folder.iterdir()) == ["x.json"]


@pytest.mark.parametrize("kind,name", [("deap", "s01.dat"), ("deap", "S23.DAT"),
                                       ("deap-bdf", "s05.bdf"), ("dreamer", "DREAMER.mat")])
def test_synth_refuses_dataset_files_it_did_not_write(tmp_path, capsys, kind, name):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / name).write_bytes(b"the user's real recording")
    before = _snapshot(folder)
    argv = ["synth", kind, str(folder), "--subjects", "2", "--trials", "2", "--seconds", "2"]
    assert main(argv) == 2
    err = one_line_error(capsys)
    assert f"did not write ({name})" in err
    assert _snapshot(folder) == before


def test_synth_rewrites_its_own_files(tmp_path):
    folder = tmp_path / "data"
    argv = ["synth", "deap", str(folder), "--subjects", "2", "--trials", "2", "--seconds", "2"]
    assert main(argv) == 0
    first = (folder / "s01.dat").read_bytes()
    assert read_manifest(folder) == {"s01.dat": "synth", "s02.dat": "synth"}
    assert main(argv + ["--seed", "3"]) == 0
    assert (folder / "s01.dat").read_bytes() != first


def test_demo_refuses_a_deap_folder_and_changes_nothing(tmp_path, capsys):
    top = tmp_path / "DEAP"
    (top / "data_preprocessed_python").mkdir(parents=True)
    (top / "data_preprocessed_python" / "s01.dat").write_bytes(b"real subject 1")
    (top / "data_preprocessed_python" / "s07.dat").write_bytes(b"real subject 7")
    before = _snapshot(top)
    assert main(["demo", "--out", str(top), "-q"]) == 2
    err = one_line_error(capsys)
    assert "did not write (s01.dat, s07.dat)" in err
    assert _snapshot(top) == before and sorted(p.name for p in top.iterdir()) == [
        "data_preprocessed_python"]


def test_fold_files_written_by_worker_processes_are_listed(deap_dat_dir, run_b, tmp_path):
    out = tmp_path / "procs"
    assert main(_args(deap_dat_dir, out, "--executor", "processes", "--n-jobs", "2",
                      "--threads", "1")) == 0
    assert set(read_manifest(out)) == set(read_manifest(run_b))
    assert {"folds/bandpower/fold_00.json", "folds/bandpower/fold_01.json"} <= set(
        read_manifest(out))
