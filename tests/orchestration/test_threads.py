"""Threads: the CPUs a process may use, ``--threads`` / ``threads``, and the busy-machine note."""

from __future__ import annotations

import logging
import os

import pytest

from conftest import one_line_error

from physiosync import PhysioSyncError
from physiosync.cli import build_parser, main
from physiosync.config import ConfigError, dump_config, load_config
from physiosync.execution import cpus
from physiosync.execution import (ProcessExecutor, SerialExecutor, available_cores, busy_note,
                                  core_limits, default_threads, thread_limit)
from physiosync.runfolder import run_fingerprint

#: the real measure (conftest gives the other tests a quiet machine)
measured_other_load = cpus.other_load


@pytest.fixture
def machine(monkeypatch, tmp_path):
    """A machine of 16 CPUs, this process's affinity 8 of them, no cgroup quota, no
    scheduler or OpenMP variables; ``machine(cgroup=..., proc=...)`` adds cgroup files."""
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)), raising=False)
    for name in ("SLURM_CPUS_PER_TASK", "OMP_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    root, proc = tmp_path / "cgroup", tmp_path / "proc_self_cgroup"
    root.mkdir()
    monkeypatch.setattr(cpus, "_CGROUP_ROOT", str(root))
    monkeypatch.setattr(cpus, "_PROC_CGROUP", str(proc))
    monkeypatch.setattr(cpus, "_WARNED", set())

    def files(cgroup: dict | None = None, own: str | None = None):
        for rel, text in (cgroup or {}).items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_text(text)
        if own is not None:
            proc.write_text(own)
        return root

    return files


# ---------------------------------------------------------------------------- sources
def test_affinity_bounds_the_machine(machine):
    machine()
    assert core_limits() == {"machine": 16, "affinity": 8}
    assert available_cores() == default_threads() == 8


def test_cgroup_v2_quota_of_the_own_cgroup_and_its_parents(machine):
    machine({"cgroup.controllers": "cpu memory\n", "cpu.max": "max 100000\n",
             "job/cpu.max": "250000 100000\n", "job/step/cpu.max": "max 100000\n"},
            own="0::/job/step\n")
    assert core_limits()["cgroup"] == 3  # 2.5 CPUs, rounded up; the parent's quota binds
    assert default_threads() == 3


def test_cgroup_v2_in_a_container_reads_the_mount_point(machine):
    # a cgroup namespace: the process's own cgroup is the root of what it sees
    machine({"cgroup.controllers": "cpu\n", "cpu.max": "200000 100000\n"}, own="0::/\n")
    assert available_cores() == 2


def test_cgroup_v2_without_a_quota_or_with_a_damaged_file(machine):
    machine({"cgroup.controllers": "cpu\n", "cpu.max": "max 100000\n",
             "a/cpu.max": "garbage\n"}, own="0::/a\n")
    assert "cgroup" not in core_limits() and available_cores() == 8


def test_cgroup_v1_quota(machine):
    machine({"cpu,cpuacct/slurm/job/cpu.cfs_quota_us": "400000\n",
             "cpu,cpuacct/slurm/job/cpu.cfs_period_us": "100000\n",
             "cpu,cpuacct/cpu.cfs_quota_us": "-1\n",
             "cpu,cpuacct/cpu.cfs_period_us": "100000\n"},
            own="12:memory:/slurm/job\n4:cpu,cpuacct:/slurm/job\n")
    assert core_limits()["cgroup"] == 4 and available_cores() == 4


def test_no_cgroup_files_and_no_proc_file(machine):
    machine()
    assert "cgroup" not in core_limits()


def test_slurm_cpus_per_task(machine, monkeypatch):
    machine()
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "2")
    assert core_limits()["SLURM_CPUS_PER_TASK"] == 2 and default_threads() == 2


@pytest.mark.parametrize("value, expected", [("1", 1), ("4,2", 4), ("32", 8)])
def test_omp_num_threads_is_honoured_up_to_the_usable_cores(machine, monkeypatch, value,
                                                            expected):
    machine()
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert default_threads() == expected and available_cores() == 8


@pytest.mark.parametrize("name", ["OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK"])
@pytest.mark.parametrize("value", ["", "abc", "0", "-2"])
def test_an_empty_or_invalid_variable_is_ignored_with_one_warning(machine, monkeypatch, caplog,
                                                                  name, value):
    machine()
    monkeypatch.setenv(name, value)
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        assert default_threads() == 8
        assert default_threads() == 8
    (record,) = caplog.records  # once, however often the count is asked for
    assert record.getMessage() == (f"ignoring {name}={value!r}: not a positive integer; unset "
                                   f"it or give a number, e.g. {name}=2")


def test_executors_default_to_the_usable_cores(machine, monkeypatch):
    machine()
    monkeypatch.setenv("SLURM_CPUS_PER_TASK", "4")
    assert SerialExecutor().threads == 4
    assert ProcessExecutor(2).threads == 2 and ProcessExecutor(8).n_jobs == 4
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert SerialExecutor().threads == 1 and ProcessExecutor(2).threads == 1


def test_thread_limit_sets_torch_and_the_blas_pools_then_restores_them():
    import torch
    from threadpoolctl import threadpool_info

    before = torch.get_num_threads()
    blas_before = [p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"]
    with thread_limit(1):
        assert torch.get_num_threads() == 1
        assert {p["num_threads"] for p in threadpool_info() if p["user_api"] == "blas"} <= {1}
    assert torch.get_num_threads() == before
    assert [p["num_threads"] for p in threadpool_info()
            if p["user_api"] == "blas"] == blas_before


# ---------------------------------------------------------------------------- busy note
@pytest.mark.parametrize("load, threads, noted", [  # cores other processes keep busy
    (1.0, 2, True),    # a second CPU-bound process on a 2-core machine
    (0.3, 2, False),   # a quiet machine
    (1.9, 1, False),   # one thread waits for no other
    (0.8, 2, True),    # most of a core taken
])
def test_busy_note(monkeypatch, load, threads, noted):
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(cpus, "other_load", lambda interval=0.25: load)
    note = busy_note(threads)
    assert (note is not None) == noted
    if noted:
        assert "--threads 1" in note and "\n" not in note
        assert f"other processes are using {load:.1f} of its 2 cores" in note


def test_no_measure_of_the_load_no_note(monkeypatch):
    monkeypatch.setattr(cpus, "other_load", lambda interval=0.25: None)
    assert busy_note(4) is None


def test_other_load_counts_the_busy_time_of_other_processes(monkeypatch):
    # (machine's busy CPU seconds, this process's): 1.2 s busy in 0.5 s, 0.2 s of it ours
    readings = iter([(100.0, 5.0), (101.2, 5.2)])
    clock = iter([10.0, 10.5])
    monkeypatch.setattr(cpus, "_cpu_seconds", lambda: next(readings))
    monkeypatch.setattr(cpus.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(cpus.time, "sleep", lambda s: None)
    assert measured_other_load(0.5) == pytest.approx(2.0)


def test_other_load_reads_proc_stat_without_nice_time(monkeypatch, tmp_path):
    import builtins

    files = {"/proc/stat": "cpu  100 7000 50 9000 30 5 5 10 0 0\ncpu0 1 2 3\n",
             "/proc/self/stat": "42 (a b) S " + " ".join(["0"] * 10) + " 300 200 0 0\n"}
    real_open = builtins.open
    monkeypatch.setattr(builtins, "open", lambda path, *a, **k: (
        real_open(_write(tmp_path, files[path]), *a, **k) if path in files
        else real_open(path, *a, **k)))
    monkeypatch.setattr(os, "sysconf", lambda name: 100)
    machine, own = cpus._cpu_seconds()
    assert machine == pytest.approx((100 + 50 + 5 + 5 + 10) / 100)  # nice (7000) not counted
    assert own == pytest.approx(5.0)  # utime 300 + stime 200 ticks


def _write(folder, text):
    path = folder / f"f{abs(hash(text))}"
    path.write_text(text)
    return str(path)


def test_off_linux_the_load_average_stands_in(monkeypatch):
    monkeypatch.setattr(cpus, "_cpu_seconds", lambda: None)
    monkeypatch.setattr(os, "getloadavg", lambda: (1.7, 0.0, 0.0))
    assert measured_other_load() == 1.7


@pytest.fixture
def stopped_cv(monkeypatch, study_root, tmp_path):
    """``physiosync cv`` up to the start of its run (recording its executor), on a busy
    2-core machine."""
    import physiosync.experiment

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(cpus, "other_load", lambda interval=0.25: 1.5)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    seen = {}

    def run_experiment(cfg, out, *, executor, on_start, **kw):
        seen["threads"] = executor.threads
        on_start([])  # every check passed: the run starts
        raise PhysioSyncError("stopped before training")

    monkeypatch.setattr(physiosync.experiment, "run_experiment", run_experiment)
    common = ["cv", "--dataset", "deap", "--data-root", str(study_root), "--config", "tiny",
              "-q", "--out", str(tmp_path / "run")]
    return lambda *extra: (main([*common, *extra]), seen.get("threads"))


def test_cv_notes_a_busy_machine_at_its_start(stopped_cv, capsys):
    assert stopped_cv() == (2, 2)
    err = capsys.readouterr().err.splitlines()
    assert err[0].startswith("physiosync: note: the machine is busy (other processes are "
                             "using 1.5 of its 2 cores)") and "--threads 1" in err[0]
    assert err[1] == "physiosync: error: stopped before training"


def test_a_refused_run_on_a_busy_machine_prints_only_its_error(monkeypatch, study_root,
                                                                tmp_path, capsys):
    # The note comes when the run starts, after every check: a refusal stays one line.
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(cpus, "other_load", lambda interval=0.25: 1.5)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    code = main(["cv", "--dataset", "deap", "--data-root", str(study_root), "--config",
                 "tiny", "-q", "--out", str(out)])
    assert code == 2
    assert "notes.txt" in one_line_error(capsys)


@pytest.mark.parametrize("extra", [["--threads", "2"], ["--set", "threads=2"]])
def test_no_note_when_the_threads_were_chosen(stopped_cv, capsys, extra):
    assert stopped_cv(*extra) == (2, 2)
    assert capsys.readouterr().err == "physiosync: error: stopped before training\n"


def test_threads_flag_reaches_the_executor_and_overrides_the_config(stopped_cv, capsys,
                                                                   tmp_path):
    config = tmp_path / "two.yaml"
    config.write_text("threads: 2\n")
    assert stopped_cv("--config", str(config)) == (2, 2)
    assert stopped_cv("--config", str(config), "--threads", "1") == (2, 1)
    assert stopped_cv("--executor", "processes", "--n-jobs", "2") == (2, 1)
    assert "this run starts 2 threads" in capsys.readouterr().err  # 2 workers x 1 thread


# ---------------------------------------------------------------------------- options
@pytest.mark.parametrize("command", [["cv"], ["pretrain", "--out", "x"],
                                     ["finetune", "--out", "x"], ["demo"]])
def test_every_training_command_takes_threads(command, capsys):
    parser = build_parser()
    assert parser.parse_args([*command, "--threads", "3"]).threads == 3
    for bad in ("0", "two"):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([*command, "--threads", bad])
        assert exit_.value.code == 2
        assert (f"argument --threads: must be a positive integer, got {bad!r}"
                in capsys.readouterr().err)


@pytest.mark.parametrize("bad", [0, -1, True, "two", 1.5])
def test_threads_config_key_is_validated(bad):
    with pytest.raises(ConfigError) as err:
        load_config("tiny", {"threads": bad})
    assert str(err.value) == (f"config key 'threads' must be a positive integer (threads of "
                              f"each unit of work) or null (the CPUs this process may use), "
                              f"got {bad!r}.")


def test_threads_are_written_to_config_yaml_but_do_not_change_the_fingerprint(study_root):
    one, two = (load_config("tiny", [f"data.root={study_root}", f"threads={n}"])
                for n in (1, 2))
    assert one.threads == 1 and load_config("tiny").threads is None
    assert "threads: 2\n" in dump_config(two)
    assert run_fingerprint(one) == run_fingerprint(two)


def test_demo_takes_threads_into_its_config(monkeypatch, tmp_path, capsys):
    import physiosync.experiment

    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(cpus, "other_load", lambda interval=0.25: 1.5)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    seen = []

    def run_experiment(cfg, out, *, on_start, **kw):
        seen.append(cfg.threads)
        on_start([])
        raise PhysioSyncError("stopped before training")

    monkeypatch.setattr(physiosync.experiment, "run_experiment", run_experiment)
    demo = ["demo", "--out", str(tmp_path), "--subjects", "2", "--trials", "4", "--seconds",
            "5", "-q"]
    assert main([*demo, "--threads", "1"]) == 2 and seen == [1]
    assert "note" not in capsys.readouterr().err
    assert main(demo) == 2 and seen == [1, None]
    assert "physiosync: note: the machine is busy" in capsys.readouterr().err
