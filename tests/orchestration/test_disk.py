"""A full disk and a read-only file system: exit 2, one line, no temporary file left.

The file systems are small tmpfs mounts, which need privileges: where mounting is not
allowed the tests are skipped with the reason.
"""

import errno
import os
import subprocess

import pytest

from physiosync.cli import main


def _mount_tmpfs(path, size="1m"):
    path.mkdir(parents=True, exist_ok=True)
    try:
        proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(path)], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as err:
        pytest.skip(f"cannot mount a tmpfs here: {err}")
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {proc.stderr.strip() or proc.returncode}")


def _umount(path):
    subprocess.run(["umount", str(path)], capture_output=True)
    if os.path.ismount(path):
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.fixture
def tmpfs(tmp_path):
    """A 1 MiB tmpfs, unmounted afterwards whatever happens."""
    mnt = tmp_path / "mnt"
    _mount_tmpfs(mnt)
    try:
        yield mnt
    finally:
        _umount(mnt)


def _fill(mnt, leave_kib=0):
    """Fill *mnt* up, leaving about *leave_kib* KiB free."""
    filler = mnt / "filler"
    with open(filler, "wb", buffering=0) as fh:
        try:
            while True:
                fh.write(b"\0" * 4096)
        except OSError as err:
            assert err.errno == errno.ENOSPC
    if leave_kib:
        os.truncate(filler, max(0, filler.stat().st_size - leave_kib * 1024))
    return filler


def _cv(root, out, cache):
    return main(["cv", "--dataset", "deap", "--data-root", str(root), "--config", "tiny",
                 "--folds", "2", "--pipelines", "bandpower", "--out", str(out), "-q",
                 "--set", "protocol.one_class=constant", "--cache-dir", str(cache)])


def _one_line(capsys) -> str:
    err = capsys.readouterr().err
    assert err.startswith("physiosync: error:") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


def _temporary(mnt):
    return [str(p) for p in mnt.rglob(".physiosync-tmp-*")]


@pytest.mark.parametrize("free_kib", [0, 24], ids=["full", "fills-up-mid-run"])
def test_cv_into_a_full_disk_exits_2_in_one_line_and_resumes_once_freed(
        deap_dat_dir, tmpfs, tmp_path, capsys, free_kib):
    filler = _fill(tmpfs, free_kib)
    out = tmpfs / "run"
    assert _cv(deap_dat_dir, out, tmp_path / "cache") == 2
    err = _one_line(capsys)
    assert "No space left on device" in err and str(out) in err, err
    assert not _temporary(tmpfs)
    if free_kib == 0:  # failed before writing anything: no folder left behind
        assert not out.exists()
    filler.unlink()  # space freed: the same command completes the run
    assert _cv(deap_dat_dir, out, tmp_path / "cache") == 0
    assert (out / "report.json").is_file() and not _temporary(tmpfs)


def test_prepare_into_a_full_disk_exits_2_in_one_line(deap_dat_dir, tmpfs, capsys):
    _fill(tmpfs)
    cache = tmpfs / "cache"
    assert main(["prepare", "deap", str(deap_dat_dir), "--cache-dir", str(cache)]) == 2
    err = _one_line(capsys)
    assert "No space left on device" in err and str(cache) in err, err
    assert not _temporary(tmpfs)
    assert not list(cache.glob("DEAP-*"))  # no partial entry


def test_a_read_only_file_system_exits_2_in_one_line(deap_dat_dir, tmpfs, tmp_path, capsys):
    proc = subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot remount the tmpfs read-only: {proc.stderr.strip()}")
    out = tmpfs / "run"
    assert _cv(deap_dat_dir, out, tmp_path / "cache") == 2
    err = _one_line(capsys)
    assert "Read-only file system" in err and str(out) in err, err
    cache = tmpfs / "cache"
    assert main(["prepare", "deap", str(deap_dat_dir), "--cache-dir", str(cache)]) == 2
    err = _one_line(capsys)
    assert "Read-only file system" in err and str(cache) in err, err
    assert not list(tmpfs.iterdir())
