"""Executors: the same study serially, in local processes and on Ray, with the same files."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

import _execution_helpers as helpers
from _tiny import tiny_study
from physiosync import PhysioSyncError
from physiosync.cli import main
from physiosync.execution import (Executor, ProcessExecutor, RayExecutor, SerialExecutor, Unit,
                                  UnitFailure, available_cores, default_threads,
                                  make_executor)
from physiosync.experiment import run_experiment, run_unit


def _files(run: Path) -> dict:
    """Every fold file and report.json of a run folder, as bytes."""
    paths = sorted(run.glob("folds/*/fold_*.json")) + [run / "report.json"]
    return {str(p.relative_to(run)): p.read_bytes() for p in paths}


# ---------------------------------------------------------------------------- executors
def test_the_process_executor_refuses_to_share_one_gpu_between_workers(monkeypatch):
    import torch

    from physiosync.execution import cpus, executors

    for module in (cpus, executors):  # where the executors and default_threads look it up
        monkeypatch.setattr(module, "available_cores", lambda: 4)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    for device in ("cuda", "cuda:1", None, "auto"):
        with pytest.raises(PhysioSyncError, match="put its 2 workers on the same GPU"):
            make_executor("processes", n_jobs=2, device=device)
    assert make_executor("processes", n_jobs=1, device="cuda").n_jobs == 1
    assert make_executor("processes", n_jobs=2, device="cpu").n_jobs == 2
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert make_executor("processes", n_jobs=2, device="auto").n_jobs == 2  # auto: the CPU


def test_make_executor_validates_and_caps(caplog):
    assert isinstance(make_executor(), SerialExecutor)
    with pytest.raises(PhysioSyncError, match="Invalid executor 'dask'"):
        make_executor("dask")
    with pytest.raises(PhysioSyncError, match="n_jobs=2 needs a parallel executor"):
        make_executor("serial", n_jobs=2)
    with pytest.raises(PhysioSyncError, match="--address is an option of the ray executor"):
        make_executor("processes", address="127.0.0.1:1")
    with pytest.raises(PhysioSyncError, match="n_jobs must be a positive integer"):
        ProcessExecutor(0)
    cores = available_cores()
    with caplog.at_level(logging.WARNING, logger="physiosync"):
        capped = make_executor("processes", n_jobs=cores + 3)
    assert capped.n_jobs == cores and capped.threads == 1
    assert f"n_jobs={cores + 3} is more than the {cores} cores available" in caplog.text
    # never more threads than cores in all (nor than OMP_NUM_THREADS asks for)
    assert ProcessExecutor(1).threads == default_threads() <= cores
    ray = make_executor("ray", n_jobs=1, device="cuda:0", address="auto")
    assert isinstance(ray, RayExecutor) and ray.gpus == 1.0 and ray.threads == cores
    assert make_executor("ray", device="cpu").gpus == 0.0
    assert make_executor("serial", threads=1).threads == 1
    with pytest.raises(PhysioSyncError, match="threads must be a positive integer"):
        make_executor("serial", threads=0)


def test_process_executor_runs_every_unit_and_reports_failures_by_name(tmp_path):
    units = [Unit("a", k) for k in range(4)]
    failures = ProcessExecutor(2).run(helpers.touch_unit, (str(tmp_path), 2), units)
    assert failures == [UnitFailure(Unit("a", 2), failures[0].error)]
    assert failures[0].error == "ValueError: fold 2 refuses over two lines"
    assert str(failures[0]) == "pipeline 'a', fold 2: ValueError: fold 2 refuses over two lines"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_0", "a_1", "a_3"]
    # each worker gets cores // n_jobs torch threads (at most OMP_NUM_THREADS)
    ProcessExecutor(2).run(helpers.threads_unit, (str(tmp_path),), [Unit("t", 0)])
    assert int((tmp_path / "threads_0").read_text()) == max(1, min(default_threads(),
                                                                   available_cores() // 2))


def test_process_executor_names_units_whose_worker_died(tmp_path):
    units = [Unit("a", k) for k in range(3)]
    failures = ProcessExecutor(1).run(helpers.die_unit, (str(tmp_path), 1), units)
    assert Unit("a", 1) in [f.unit for f in failures]
    assert all("worker process died" in f.error for f in failures)
    assert (tmp_path / "a_0").exists()  # finished before the crash, kept


def test_a_worker_stopped_by_ctrl_c_interrupts_the_run_instead_of_failing_it(tmp_path):
    """Ctrl-C reaches the workers too; one that left on it (status 130) while the main
    process had not yet raised must read as the interrupt, not as a dead worker (which
    exit status 3 still is, in the test above). SIGHUP too; SIGTERM is the pool's own."""
    from physiosync._signals import Terminated

    units = [Unit("a", k) for k in range(3)]
    with pytest.raises(KeyboardInterrupt) as err:
        ProcessExecutor(1).run(helpers.exit_unit, (str(tmp_path), 1, 130), units)
    assert type(err.value) is KeyboardInterrupt
    assert (tmp_path / "a_0").exists()  # finished before the interrupt, kept
    with pytest.raises(Terminated) as err:
        ProcessExecutor(1).run(helpers.exit_unit, (str(tmp_path), 1, 129), units)
    assert err.value.name == "SIGHUP"
    failures = ProcessExecutor(1).run(helpers.exit_unit, (str(tmp_path), 1, 143), units)
    assert [f.unit for f in failures] == [Unit("a", 1), Unit("a", 2)]


def test_serial_executor_lets_errors_through(tmp_path):
    with pytest.raises(ValueError, match="fold 1 refuses"):
        SerialExecutor().run(helpers.touch_unit, (str(tmp_path), 1), [Unit("a", 0),
                                                                     Unit("a", 1)])


# ---------------------------------------------------------------------------- studies
def test_processes_give_the_serial_fold_files_and_report_byte_for_byte(study_root, tmp_path):
    """With the same torch threads per unit (1 here); other counts split sums differently."""
    cache = tmp_path / "cache"
    serial = run_experiment(tiny_study(study_root, cache), tmp_path / "serial", verbose=False,
                            html=False, executor=SerialExecutor(threads=1))
    parallel = run_experiment(tiny_study(study_root, cache), tmp_path / "processes",
                              executor=ProcessExecutor(2, threads=1), verbose=False,
                              html=False)
    a, b = _files(tmp_path / "serial"), _files(tmp_path / "processes")
    assert len(a) == 5 and a == b  # 2 pipelines x 2 folds + report.json
    assert serial["report"] == parallel["report"]
    assert "4 units on processes (2 workers" in (tmp_path / "processes" / "run.log").read_text()


def test_an_interrupted_study_resumes_under_another_executor(study_root, tmp_path):
    cache = tmp_path / "cache"
    run = tmp_path / "run"
    run_experiment(tiny_study(study_root, cache), run, executor=ProcessExecutor(2, threads=1),
                   verbose=False, html=False)
    before = _files(run)
    lost = run / "folds" / "physiosync" / "fold_01.json"
    lost.unlink()  # as if the run had been killed before this unit finished
    (run / "report.json").unlink()
    run_experiment(tiny_study(study_root, cache), run, executor=SerialExecutor(threads=1),
                   verbose=False, html=False)
    assert _files(run) == before
    log = (run / "run.log").read_text()
    assert log.count("fold 0 already done") >= 2


def test_a_failed_unit_is_named_and_no_report_claims_a_complete_study(study_root, tmp_path):
    class FailOne(Executor):
        name = "fail-one"

        def run(self, function, args, units):
            out = []
            for unit in units:
                if unit == Unit("bandpower", 1):
                    out.append(UnitFailure(unit, "RuntimeError: node lost"))
                else:
                    function(*args, unit)
            return out

    run = tmp_path / "run"
    cfg = tiny_study(study_root, tmp_path / "cache")
    with pytest.raises(PhysioSyncError) as err:
        run_experiment(cfg, run, executor=FailOne(), verbose=False, html=False)
    msg = str(err.value)
    assert msg.startswith("1 of 4 units failed, so no report was written: pipeline "
                          "'bandpower', fold 1: RuntimeError: node lost.")
    assert "run the same command again to resume" in msg and "\n" not in msg
    assert not (run / "report.json").exists()
    assert len(list(run.glob("folds/*/fold_*.json"))) == 3
    # the rerun computes the missing unit only and writes the report
    run_experiment(cfg, run, executor=ProcessExecutor(2), verbose=False, html=False)
    assert (run / "report.json").exists()


def test_run_unit_refuses_a_unit_outside_the_study(study_root, tmp_path):
    cfg = tiny_study(study_root, tmp_path / "cache")
    with pytest.raises(PhysioSyncError, match=r"pipeline 'eegnet', fold 0 is not part of this "
                                              r"study"):
        run_unit(cfg, tmp_path / "run", True, Unit("eegnet", 0))
    path = run_unit(cfg, tmp_path / "run", True, Unit("bandpower", 1))
    assert path.endswith("folds/bandpower/fold_01.json") and Path(path).is_file()


# ---------------------------------------------------------------------------- CLI
def test_cli_runs_a_study_in_processes(study_root, tmp_path, capsys):
    common = ["--dataset", "deap", "--data-root", str(study_root), "--config", "tiny", "-q",
              "--cache-dir", str(tmp_path / "cache"), "--pipelines", "bandpower",
              "--folds", "2", "--set", "protocol.one_class=constant"]
    assert main(["cv", *common, "--out", str(tmp_path / "a"), "--executor", "processes",
                 "--n-jobs", "2", "--threads", "1"]) == 0
    assert main(["cv", *common, "--out", str(tmp_path / "b"), "--threads", "1"]) == 0
    assert _files(tmp_path / "a") == _files(tmp_path / "b")
    assert main(["cv", *common, "--out", str(tmp_path / "c"), "--n-jobs", "2"]) == 2
    assert "n_jobs=2 needs a parallel executor" in capsys.readouterr().err


def test_missing_ray_gives_one_line(study_root, tmp_path, hide_package, capsys):
    hide_package("ray")
    assert main(["cv", "--dataset", "deap", "--data-root", str(study_root), "--config", "tiny",
                 "-q", "--cache-dir", str(tmp_path / "cache"), "--pipelines", "bandpower",
                 "--folds", "2", "--out", str(tmp_path / "r"), "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert err == ("physiosync: error: the ray executor needs Ray: "
                   "pip install 'physiosync[ray]'\n")


# ---------------------------------------------------------------------------- Ray
def _ray_cli() -> str:
    exe = Path(sys.executable).parent / "ray"
    if not exe.exists():
        pytest.skip("Ray's command line is not installed (pip install 'physiosync[ray]')")
    return str(exe)


@pytest.fixture(scope="module")
def ray_cluster():
    """A two-node Ray cluster on this machine (one CPU each), stopped afterwards."""
    import socket
    import subprocess

    pytest.importorskip("ray")
    ray = _ray_cli()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**__import__("os").environ, "RAY_USAGE_STATS_ENABLED": "0"}
    common = ["--num-cpus", "1", "--disable-usage-stats"]
    try:
        subprocess.run([ray, "start", "--head", "--port", str(port), "--node-ip-address",
                        "127.0.0.1", "--include-dashboard", "false", *common], check=True,
                       capture_output=True, env=env, timeout=180)
        subprocess.run([ray, "start", "--address", f"127.0.0.1:{port}", "--node-ip-address",
                        "127.0.0.1", *common], check=True, capture_output=True, env=env,
                       timeout=180)
        yield f"127.0.0.1:{port}"
    finally:
        subprocess.run([ray, "stop", "--force"], capture_output=True, env=env, timeout=180)


def _kill_one_ray_task_worker(stop, killed):
    """Kill the first Ray worker seen running a unit (its process title names the task)."""
    import os
    import signal
    import time

    while not stop.is_set() and not killed:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"ray::_ray_task" in cmdline:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                    killed.append(int(pid))
                except OSError:
                    pass
                return
        time.sleep(0.05)


def test_ray_two_nodes_match_serial_and_survive_a_killed_worker(ray_cluster, study_root,
                                                                tmp_path):
    import threading

    cache = tmp_path / "cache"
    run_experiment(tiny_study(study_root, cache), tmp_path / "serial", verbose=False, html=False,
                   executor=SerialExecutor(threads=1))
    stop, killed = threading.Event(), []
    killer = threading.Thread(target=_kill_one_ray_task_worker, args=(stop, killed))
    killer.start()
    try:
        result = run_experiment(tiny_study(study_root, cache), tmp_path / "ray",
                                executor=RayExecutor(ray_cluster, threads=1, max_retries=3),
                                verbose=False, html=False)
    finally:
        stop.set()
        killer.join()
    assert killed, "no Ray worker was seen running a unit"
    assert _files(tmp_path / "ray") == _files(tmp_path / "serial")
    assert set(result["report"]["pipelines"]) == {"physiosync", "bandpower"}
    log = (tmp_path / "ray" / "run.log").read_text()
    assert f"4 units on ray ({ray_cluster}; 1 CPU per unit, 3 retries)" in log


def test_unreachable_ray_address_gives_one_line(study_root, tmp_path):
    pytest.importorskip("ray")
    executor = RayExecutor("127.0.0.1:9", threads=1)
    with pytest.raises(PhysioSyncError) as err:
        executor.run(helpers.touch_unit, (str(tmp_path), -1), [Unit("a", 0)])
    msg = str(err.value)
    assert msg.startswith("cannot reach a Ray cluster at '127.0.0.1:9'") and "\n" not in msg
    assert "ray start --head" in msg


def test_ctrl_c_stops_a_processes_run_which_then_resumes(study_root, tmp_path):
    """SIGINT to the whole process group, as a terminal's Ctrl-C: one line, exit 130,
    finished fold files intact; the same command then completes the study."""
    import os
    import signal
    import subprocess
    import time

    cmd = [sys.executable, "-m", "physiosync", "cv", "--dataset", "deap", "--data-root",
           str(study_root), "--config", "tiny", "-q", "--cache-dir", str(tmp_path / "cache"),
           "--folds", "2", "--set", "protocol.one_class=constant", "--set",
           "pretrain.steps=40", "--out", str(tmp_path / "run"), "--executor", "processes",
           "--n-jobs", "2", "--threads", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    folds = tmp_path / "run" / "folds"
    deadline = time.monotonic() + 120
    while not list(folds.glob("*/fold_*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert err.count("\n") == 1 and "same command again to resume" in err, err
    assert not (tmp_path / "run" / "report.json").exists()
    import json

    for path in folds.glob("*/fold_*.json"):
        json.loads(path.read_text())  # every fold file left is complete
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "run" / "report.json").exists()


def _ray_task_processes() -> list:
    """Pids of the Ray workers running a unit now (their process title names the task)."""
    import os

    out = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                if b"ray::_ray_task" in Path(f"/proc/{pid}/cmdline").read_bytes():
                    out.append(int(pid))
            except OSError:
                pass
    return out


def test_an_interrupted_ray_study_cancels_its_tasks(ray_cluster, tmp_path):
    """SIGTERM (as Ctrl-C) while two units run on the cluster: both are cancelled at once
    instead of running on (each would sleep 30 s, then write ``done_<fold>``)."""
    import os
    import signal
    import threading
    import time

    import ray

    import _signal_helpers
    from physiosync._signals import as_terminated, terminate_as_interrupt

    # connected here, so the executor does not shut Ray down (which alone would end the
    # tasks): what stops them is the executor's cancellation
    ray.init(address=ray_cluster, include_dashboard=False, log_to_driver=False,
             logging_level="ERROR")
    ray.cloudpickle.register_pickle_by_value(_signal_helpers)  # tests/ is not on the nodes
    try:
        def interrupt_when_both_run():
            deadline = time.monotonic() + 120
            while len(list(tmp_path.glob("started_*"))) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=interrupt_when_both_run, daemon=True).start()
        with terminate_as_interrupt():
            with pytest.raises(KeyboardInterrupt) as err:
                RayExecutor(ray_cluster, threads=1, max_retries=0).run(
                    _signal_helpers.slow_write_unit, (str(tmp_path), 30.0),
                    [Unit("a", k) for k in range(3)])
            # ray.get turns our Terminated into a plain KeyboardInterrupt; the CLI restores it
            assert as_terminated(err.value).signum == signal.SIGTERM
        stopped = time.monotonic()
        assert len(list(tmp_path.glob("started_*"))) == 2  # the third never started
        while _ray_task_processes() and time.monotonic() < stopped + 15:
            time.sleep(0.1)
        assert not _ray_task_processes(), "a cancelled unit is still running"
        assert not list(tmp_path.glob("done_*"))
    finally:
        ray.cloudpickle.unregister_pickle_by_value(_signal_helpers)
        ray.shutdown()
