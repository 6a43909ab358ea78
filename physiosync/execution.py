"""Where the units of a study run: this process, local processes, or a Ray cluster.

A study is a set of independent **units of work**, one per (pipeline, fold): each is a
pure function of the resolved configuration and the data, and writes its fold file
atomically (:func:`physiosync.experiment.run_unit`). The report is then assembled from
the fold files alone, so the executor that ran the units changes no result, byte for
byte, as long as each unit gets the same number of torch threads (``threads``; with
another count, floating-point sums are split differently: measured on the tests' tiny
study, predicted probabilities then differ by up to 3e-5). By default a unit gets the CPUs
this process may use (:func:`default_threads`: its affinity mask, cgroup CPU quota,
``SLURM_CPUS_PER_TASK`` and ``OMP_NUM_THREADS``), divided between parallel workers:

* :class:`SerialExecutor` runs them one after another in this process;
* :class:`ProcessExecutor` runs ``n_jobs`` at a time in local worker processes (forked
  from a fork server where the OS has one, else spawned), each
  with ``cores // n_jobs`` torch threads, so the machine is never oversubscribed (two
  torch processes that each use every core slow each other several-fold);
* :class:`RayExecutor` runs each unit as a Ray task, on the local machine or a cluster,
  asks for a GPU when the device is CUDA, and retries a unit whose worker died.

Executors only schedule: :meth:`Executor.run` calls ``function(*args, unit)`` for every
unit and returns the units that failed, with their errors, after the others finished.

Stopping: when :meth:`Executor.run` is interrupted (Ctrl-C, or SIGTERM/SIGHUP under the
command line, which raise :class:`KeyboardInterrupt`), the process executor cancels the
units not started and stops its workers (SIGTERM, then SIGKILL after
:data:`STOP_GRACE_S` seconds) before the interrupt goes on, and the Ray executor cancels
its outstanding tasks. Workers of the process executor also stop by themselves when the
process that started them dies (Linux: ``PR_SET_PDEATHSIG``; everywhere: a thread that
checks the parent every :data:`WATCH_S` seconds). Inside :func:`run_lock`, workers
check before each file they write into the run folder that its lock still holds the
token of the run that started them (and, for the process executor, that the process
that started them is alive), and refuse to write otherwise.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import numbers
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass

from ._logging import logger, verbose
from ._utils.docs import fill_doc
from .exceptions import PhysioSyncError
from .params import EXECUTORS

__all__ = ["Unit", "UnitFailure", "Executor", "SerialExecutor", "ProcessExecutor",
           "RayExecutor", "make_executor", "available_cores", "core_limits",
           "default_threads", "other_load", "busy_note", "thread_limit", "EXECUTORS"]

_RAY_MISSING = "the ray executor needs Ray: pip install 'physiosync[ray]'"

#: Seconds a stopped worker (or Ray task) has to clean up before it is killed.
STOP_GRACE_S = 10.0
#: Seconds between a worker's checks that the process that started it is alive.
WATCH_S = 0.5
# (absolute run folder, lock token) of the run whose units are being executed, or None
_RUN_LOCK = contextvars.ContextVar("physiosync_run_lock", default=None)


@dataclass(frozen=True, order=True)
class Unit:
    """One unit of work: a pipeline's fold, or a group of its folds.

    A group (``fold`` a tuple of fold numbers) is what ``pretrain.batch_folds`` makes:
    folds whose encoders pre-train together, then run one after another.
    """

    pipeline: str
    fold: int | tuple

    @property
    def folds(self) -> tuple:
        """The fold numbers of the unit."""
        return tuple(self.fold) if isinstance(self.fold, tuple) else (self.fold,)

    def __str__(self) -> str:
        if isinstance(self.fold, tuple):
            return f"pipeline {self.pipeline!r}, folds {', '.join(map(str, self.fold))}"
        return f"pipeline {self.pipeline!r}, fold {self.fold}"


@dataclass(frozen=True)
class UnitFailure:
    """A unit that did not finish, and why (one line)."""

    unit: Unit
    error: str

    def __str__(self) -> str:
        return f"{self.unit}: {self.error}"


#: The cgroup file system, and this process's cgroups (paths that tests may point elsewhere).
_CGROUP_ROOT = "/sys/fs/cgroup"
_PROC_CGROUP = "/proc/self/cgroup"
# (variable, value) pairs already warned about: one line per bad value, not one per call
_WARNED = set()


def _env_count(name: str) -> int | None:
    """The positive integer in the environment variable *name*, or None.

    Unset gives None; so does an empty or invalid value, with one warning (ignored, not
    fatal). OpenMP's list form (``"4,2"``, threads per nesting level) gives its first value.
    """
    text = os.environ.get(name)
    if text is None:
        return None
    try:
        value = int(text.split(",")[0].strip())
    except ValueError:
        value = 0
    if value >= 1:
        return value
    if (name, text) not in _WARNED:
        _WARNED.add((name, text))
        logger.warning("ignoring %s=%r: not a positive integer; unset it or give a number, "
                       "e.g. %s=2", name, text, name)
    return None


def _quota_in(folder: str, v2: bool) -> int | None:
    """CPUs that the CPU bandwidth quota of the cgroup *folder* allows (rounded up), or None."""
    try:
        if v2:  # cpu.max: "QUOTA PERIOD" in microseconds, QUOTA "max" when unlimited
            with open(os.path.join(folder, "cpu.max")) as f:
                quota, period = f.read().split()[:2]
        else:  # cgroup v1: cpu.cfs_quota_us is -1 when unlimited
            with open(os.path.join(folder, "cpu.cfs_quota_us")) as f:
                quota = f.read()
            with open(os.path.join(folder, "cpu.cfs_period_us")) as f:
                period = f.read()
        quota, period = int(quota), int(period)
    except (OSError, ValueError):  # no file, "max", or unreadable: no quota here
        return None
    return max(1, math.ceil(quota / period)) if quota > 0 and period > 0 else None


def _cgroup_cpus() -> int | None:
    """CPUs that the cgroup CPU quotas of this process allow (v2, else v1), or None.

    A quota bounds every cgroup below it, so this process's own cgroup (named in
    ``/proc/self/cgroup``) and every cgroup above it, up to the mount point, are read,
    and the smallest quota counts. In a container (a cgroup namespace) the mount point
    is the process's own cgroup.
    """
    own = {}  # controller ("" for cgroup v2) -> path of this process's cgroup
    with contextlib.suppress(OSError):
        with open(_PROC_CGROUP) as f:
            for line in f:
                parts = line.rstrip("\n").split(":", 2)
                if len(parts) == 3:
                    for controller in parts[1].split(",") if parts[1] else [""]:
                        own.setdefault(controller, parts[2])
    v2 = os.path.exists(os.path.join(_CGROUP_ROOT, "cgroup.controllers"))
    mounts = ([_CGROUP_ROOT] if v2 else
              [os.path.join(_CGROUP_ROOT, name) for name in ("cpu", "cpu,cpuacct")])
    quotas = []
    for mount in filter(os.path.isdir, mounts):
        folder = os.path.normpath(os.path.join(mount, own.get("" if v2 else "cpu",
                                                               "/").lstrip("/")))
        if os.path.commonpath([folder, mount]) != mount:  # "..": only the mount point
            folder = mount
        while True:
            quotas.append(_quota_in(folder, v2))
            if folder == mount:
                break
            folder = os.path.dirname(folder)
    quotas = [q for q in quotas if q is not None]
    return min(quotas) if quotas else None


def core_limits() -> dict:
    """Every limit on the CPUs this process may use, by source; see :func:`default_threads`.

    Returns
    -------
    limits : dict
        ``"machine"`` (``os.cpu_count()``) always; ``"affinity"`` (the CPUs of this
        process's affinity mask), ``"cgroup"`` (its cgroup CPU quota, rounded up) and
        ``"SLURM_CPUS_PER_TASK"`` where they apply.
    """
    limits = {"machine": os.cpu_count() or 1}
    with contextlib.suppress(AttributeError, OSError):  # no affinity on macOS, Windows
        limits["affinity"] = len(os.sched_getaffinity(0))
    quota = _cgroup_cpus()
    if quota is not None:
        limits["cgroup"] = quota
    slurm = _env_count("SLURM_CPUS_PER_TASK")
    if slurm is not None:
        limits["SLURM_CPUS_PER_TASK"] = slurm
    return limits


def available_cores() -> int:
    """CPUs this process may use: the smallest of :func:`core_limits` (at least 1)."""
    return max(1, min(core_limits().values()))


def default_threads() -> int:
    """The threads a unit of work gets when none are asked for: the CPUs this process may use.

    Precedence: a thread count given explicitly (``--threads``, the ``threads`` config key,
    ``threads=``) wins, capped at :func:`available_cores`. Otherwise the default is the
    smallest of

    1. the machine's CPUs (``os.cpu_count()``);
    2. the CPUs of the process's affinity mask (``taskset``, ``numactl``, a batch
       scheduler's cpuset), which the OS never exceeds;
    3. the CPU bandwidth quota of its cgroup (``/sys/fs/cgroup/cpu.max``, or cgroup v1's
       ``cpu.cfs_quota_us / cpu.cfs_period_us``; a container's ``--cpus``, a systemd
       slice's ``CPUQuota``), rounded up; threads beyond it are throttled, not run;
    4. ``SLURM_CPUS_PER_TASK``, the job's share of a node that SLURM does not always
       enforce with a cpuset;
    5. ``OMP_NUM_THREADS``, the user's (or ``torchrun``'s) own choice for OpenMP.

    The first four bound what the process can use; the last is a request, honoured up to
    that bound. An empty or invalid ``SLURM_CPUS_PER_TASK`` or ``OMP_NUM_THREADS`` is
    ignored with a warning. torch's own default counts the machine's physical cores and
    ignores 2-4, so on a cluster node or in a container it starts more threads than the
    job has CPUs, and OpenMP threads that wait for a CPU spin and slow every step.

    The default does not follow the machine's load: the thread count changes results at
    rounding level (floating-point sums split differently), so it is the user's choice
    (:func:`busy_note` says when to make it).

    Returns
    -------
    threads : int
    """
    cores = available_cores()
    omp = _env_count("OMP_NUM_THREADS")
    return min(cores, omp) if omp is not None else cores


def _cpu_seconds() -> tuple[float, float] | None:
    """``(machine, own)``: CPU seconds the whole machine has spent busy at full priority
    (``/proc/stat``: user, system, irq, softirq and steal; not idle, iowait or *nice*)
    and those of this process (``/proc/self/stat``), or None off Linux."""
    try:
        with open("/proc/stat", encoding="ascii") as f:
            fields = f.readline().split()
        with open("/proc/self/stat", encoding="ascii") as f:
            own = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    # cpu  user nice system idle iowait irq softirq steal ...
    busy = sum(int(fields[i]) for i in (1, 3, 6, 7, 8) if i < len(fields))
    return busy / tick, (int(own[11]) + int(own[12])) / tick  # utime + stime


def other_load(interval: float = 0.25) -> float | None:
    """How many cores other processes keep busy now, measured over *interval* seconds.

    The busy CPU time of the machine (``/proc/stat``) less this process's own, per
    second of the interval. Time of processes at a lowered priority (``nice``) is not
    counted: they yield a core to a normal-priority thread at once, so they do not keep
    this run's threads waiting. Off Linux, the 1-minute load average (which lags by a
    minute and counts this process's own past work); None where neither is available.

    Returns
    -------
    cores : float | None
    """
    before = _cpu_seconds()
    if before is None:
        try:
            return os.getloadavg()[0]
        except (AttributeError, OSError):  # Windows: no load average
            return None
    t0 = time.monotonic()
    time.sleep(interval)
    after = _cpu_seconds()
    elapsed = time.monotonic() - t0
    if after is None or elapsed <= 0:
        return None
    return max(0.0, ((after[0] - before[0]) - (after[1] - before[1])) / elapsed)


def busy_note(threads: int) -> str | None:
    """One line when other work on the machine would slow a run of *threads* threads.

    OpenMP threads spin while they wait for each other: when another process holds a
    core that one of them needs, every step waits for it, and a run can take ten times
    longer than with one thread. The note is given, for more than one thread, when the
    cores other processes keep busy now (:func:`other_load`) leave fewer idle cores
    than *threads* by more than half a core (``others + threads > os.cpu_count() +
    0.5``).

    Parameters
    ----------
    threads : int
        The threads the run will use in all (workers × threads each).

    Returns
    -------
    note : str | None
        The note, naming ``--threads``, or None.
    """
    if threads <= 1:
        return None
    others = other_load()
    cpus = os.cpu_count() or 1
    if others is None or others + threads <= cpus + 0.5:
        return None
    return (f"the machine is busy (other processes are using {others:.1f} of its {cpus} "
            f"cores) and this run starts {threads} threads, which wait for each other when "
            "another process holds a core; if it runs slowly, pass --threads 1 (config key "
            "threads).")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if text.startswith(type(err).__name__) else f"{type(err).__name__}: {text}"


#: Most retries a Ray unit may be given (``--max-retries``).
MAX_RETRIES = 100


def check_max_retries(max_retries) -> int:
    """*max_retries* if it is an integer in ``0..MAX_RETRIES``; checked before any work."""
    if (isinstance(max_retries, bool) or not isinstance(max_retries, numbers.Integral)
            or not 0 <= max_retries <= MAX_RETRIES):
        raise PhysioSyncError(f"--max-retries must be an integer from 0 to {MAX_RETRIES}, got "
                              f"{max_retries!r}; give the times a unit whose Ray worker died "
                              "is run again (default 2).")
    return int(max_retries)


def _check_threads(threads) -> int | None:
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, numbers.Integral) or threads < 1:
        raise PhysioSyncError(f"threads must be a positive integer, got {threads!r}.")
    cores = available_cores()
    if threads > cores:
        logger.warning("threads=%d is more than the %d cores available; using %d",
                       threads, cores, cores)
    return min(int(threads), cores)


def _set_threads(threads: int | None):
    """Give this process *threads* torch threads, and as many to the BLAS and OpenMP pools
    of NumPy, SciPy and scikit-learn (``threadpoolctl``; the baselines run there).

    Returns the ``threadpoolctl`` limiter, whose ``restore_original_limits()`` undoes the
    second part, or None when *threads* is None.
    """
    if not threads:
        return None
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(int(threads))
    return threadpool_limits(limits=int(threads))


@contextlib.contextmanager
def thread_limit(threads: int | None = None):
    """Context in which this process computes with *threads* threads (restored after).

    Parameters
    ----------
    threads : int | None
        Threads of torch and of the BLAS and OpenMP pools; None: :func:`default_threads`.
    """
    import torch

    before = torch.get_num_threads()
    pools = _set_threads(_check_threads(threads) or default_threads())
    try:
        yield
    finally:
        pools.restore_original_limits()
        torch.set_num_threads(before)


@contextlib.contextmanager
def run_lock(folder):
    """Context in which the executors' workers write into *folder* only under its lock.

    *folder* must be locked by this process (:class:`~physiosync.runfolder.FolderLock`,
    as :class:`~physiosync.runfolder.RunFolder` does). The process and Ray executors
    give its lock token to their workers, which check before replacing any file under
    *folder* that the lock still holds that token: a worker that outlived the run
    (killed with SIGKILL, its lock since taken over by a resume) writes nothing there.
    A folder not locked by this process sets no guard.

    Parameters
    ----------
    folder : str | Path
        The run folder.

    Yields
    ------
    guard : tuple | None
        ``(absolute folder, lock token)``, or None.
    """
    from .runfolder import FolderLock

    info = FolderLock(folder).holder() or {}
    guard = None
    if info.get("pid") == os.getpid() and isinstance(info.get("token"), str):
        guard = (os.path.abspath(folder), info["token"])
    reset = _RUN_LOCK.set(guard)
    try:
        yield guard
    finally:
        _RUN_LOCK.reset(reset)


def _install_guard(guard, parent: int | None = None) -> None:
    """Make this process's atomic writes under ``guard[0]`` check that the run still holds
    its lock and, given *parent* (the pid of the process that runs the study, on this
    host), that it is alive. None: no check."""
    from ._utils import io

    if guard is None:
        io._before_replace = None
        return
    folder, token = guard
    prefix = folder.rstrip(os.sep) + os.sep

    def check(path) -> None:
        if os.path.abspath(path).startswith(prefix):
            from .runfolder import _pid_alive, lock_holds

            if (parent is not None and not _pid_alive(parent)) or not lock_holds(folder,
                                                                                  token):
                from .exceptions import RunFolderError

                raise RunFolderError(
                    f"not writing {path}: the run that started this worker has ended or no "
                    f"longer holds the lock of {folder}; run the same command again to "
                    "resume.")

    io._before_replace = check


# A worker's state: whether a unit is running, and the signal that is stopping it.
_WORKER = {"in_unit": False, "stopping": None}


def _leave(code: int) -> None:
    """End this worker now, quietly, with exit status *code*.

    ``os._exit``, so that the pool's worker loop does not take up another unit; first
    multiprocessing's exit handlers, which unregister the semaphores this process made
    (tqdm's lock) from the resource tracker, which would otherwise warn on stderr.
    """
    with contextlib.suppress(Exception):
        from multiprocessing import util

        util._exit_function()
    os._exit(code)


def _worker_signal(signum, frame) -> None:
    """SIGTERM, SIGHUP or SIGINT in a worker: unwind the running unit, or leave at once."""
    if _WORKER["stopping"] is None:
        _WORKER["stopping"] = signum
        if _WORKER["in_unit"]:  # its finally blocks remove temporary files
            from ._signals import Terminated

            raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)
    if not _WORKER["in_unit"]:
        _leave(128 + signum)
    # a second signal while the unit unwinds: let it finish cleaning up


def _watch_parent(parent: int, ppid: int) -> None:
    """Send this process SIGTERM once *parent* (the process that started the pool) or
    its direct parent (a fork server) is gone."""
    from .runfolder import _pid_alive

    while os.getppid() == ppid and _pid_alive(parent):
        time.sleep(WATCH_S)
    os.kill(os.getpid(), signal.SIGTERM)


def _die_with_parent(parent: int) -> None:
    """Make this worker stop when *parent*, the process that started the pool, dies."""
    from ._signals import TERMINATING_SIGNALS

    for sig in (*TERMINATING_SIGNALS, signal.SIGINT):
        signal.signal(sig, _worker_signal)
    ppid = os.getppid()
    if sys.platform.startswith("linux"):  # immediate: SIGTERM when the fork server dies
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM), 0, 0, 0)
    # portable, and covers the case where the fork server outlives the parent
    threading.Thread(target=_watch_parent, args=(parent, ppid), daemon=True,
                     name="physiosync-watch-parent").start()


def _worker_init(threads, parent: int, guard) -> None:
    """Initializer of the process executor's workers."""
    _die_with_parent(parent)
    _set_threads(threads)
    _install_guard(guard, parent)  # no fold file once the parent is gone, even for a moment


def _worker_unit(function, args: tuple, unit):
    """``function(*args, unit)`` in a worker; a stopped unit ends the worker quietly."""
    try:
        _WORKER["in_unit"] = True
        return function(*args, unit)
    except KeyboardInterrupt as err:  # stopped: its cleanup has run; no traceback
        from ._signals import exit_code

        _leave(exit_code(err))
    finally:
        _WORKER["in_unit"] = False
        if _WORKER["stopping"] is not None:
            _leave(128 + _WORKER["stopping"])


def _stop_workers(processes, grace: float = STOP_GRACE_S) -> None:
    """SIGTERM each worker, wait up to *grace* seconds in all, then SIGKILL the rest."""
    for proc in processes:
        with contextlib.suppress(OSError, ValueError, AttributeError):
            proc.terminate()
    deadline = time.monotonic() + grace
    for proc in processes:
        with contextlib.suppress(OSError, ValueError, AssertionError):
            proc.join(max(0.0, deadline - time.monotonic()))
    for proc in processes:
        with contextlib.suppress(OSError, ValueError, AttributeError, AssertionError):
            if proc.is_alive():
                proc.kill()
                proc.join(5)


class Executor:
    """Runs units of work; subclasses say where.

    Attributes
    ----------
    name : str
        ``"serial"``, ``"processes"`` or ``"ray"``.
    threads : int | None
        Torch threads of each unit (None: leave the process's setting).
    """

    name = "base"
    threads: int | None = None

    def run(self, function, args: tuple, units: list) -> list[UnitFailure]:
        """Call ``function(*args, unit)`` for every unit.

        Parameters
        ----------
        function : callable
            A module-level (picklable) function; its return value is ignored.
        args : tuple
            Its leading arguments, the same for every unit (pickled once per worker
            task by the process and Ray executors).
        units : list of Unit
            The units to run.

        Returns
        -------
        failures : list of UnitFailure
            The units that raised (after Ray's retries) or whose worker died; every
            other unit has finished. A ``KeyboardInterrupt`` is not caught.
        """
        raise NotImplementedError

    def describe(self) -> str:
        """The executor in words, for the log."""
        return self.name


@fill_doc
class SerialExecutor(Executor):
    """Every unit in this process, one after another (the default).

    A unit that raises stops the run (the error propagates unchanged, as it always
    has), since nothing else would run in parallel with it.

    Parameters
    ----------
    threads : int | None
        Threads while the units run (torch's, and the BLAS and OpenMP pools'; restored
        afterwards); default: the CPUs this process may use (:func:`default_threads`).
    %(verbose)s
        It covers the note when *threads* is capped.
    """

    name = "serial"

    @verbose
    def __init__(self, threads: int | None = None, *,
                 verbose: bool | str | int | None = None):
        self.threads = _check_threads(threads) or default_threads()

    def describe(self) -> str:
        return f"serial ({self.threads} torch thread{'s' if self.threads != 1 else ''})"

    def thread_limit(self):
        """Context in which this process has *threads* threads (restored after)."""
        return thread_limit(self.threads)

    def run(self, function, args: tuple, units: list) -> list[UnitFailure]:
        with self.thread_limit():
            for unit in units:
                function(*args, unit)
        return []


@fill_doc
class ProcessExecutor(Executor):
    """Units in *n_jobs* local worker processes (``concurrent.futures``, spawned).

    Parameters
    ----------
    n_jobs : int
        Workers at a time; capped at the cores available (with a note in the log).
        ``-1`` means one per core.
    threads : int | None
        Threads per worker (torch's, and the BLAS and OpenMP pools'); default
        ``cores // n_jobs`` (at least 1, at most :func:`default_threads`), where
        cores are those this process may use (:func:`available_cores`).
    %(verbose)s
        It covers the note when *n_jobs* or *threads* is capped.
    """

    name = "processes"

    @verbose
    def __init__(self, n_jobs: int = 2, threads: int | None = None, *,
                 verbose: bool | str | int | None = None):
        cores = available_cores()
        n_jobs = cores if n_jobs == -1 else int(n_jobs)
        if n_jobs < 1:
            raise PhysioSyncError(f"n_jobs must be a positive integer or -1 (one per core), "
                                  f"got {n_jobs}.")
        if n_jobs > cores:
            logger.warning("n_jobs=%d is more than the %d cores available; using %d workers",
                           n_jobs, cores, cores)
            n_jobs = cores
        self.n_jobs = n_jobs
        self.threads = _check_threads(threads) or max(1, min(default_threads(),
                                                             cores // n_jobs))

    def describe(self) -> str:
        return f"processes ({self.n_jobs} workers x {self.threads} torch threads)"

    def run(self, function, args: tuple, units: list) -> list[UnitFailure]:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed
        from concurrent.futures.process import BrokenProcessPool

        if not units:
            return []
        failures = []
        # Not fork: a forked copy of a process that has started torch's thread pools can
        # deadlock. A fork server (POSIX) imports the unit's module once, before any
        # thread pool exists, and forks the workers from it, which saves each worker
        # the imports (about 3 s of CPU for physiosync with torch); spawn elsewhere.
        if "forkserver" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([function.__module__])
        else:
            context = multiprocessing.get_context("spawn")
        pool = ProcessPoolExecutor(max_workers=min(self.n_jobs, len(units)),
                                   mp_context=context, initializer=_worker_init,
                                   initargs=(self.threads, os.getpid(), _RUN_LOCK.get()))
        try:
            futures = {pool.submit(_worker_unit, function, args, unit): unit for unit in units}
            for future in as_completed(futures):
                unit = futures[future]
                try:
                    future.result()
                except BrokenProcessPool:
                    failures.append(UnitFailure(
                        unit, "its worker process died (killed, out of memory, or unable to "
                              "start: a script that runs a study in processes must guard its "
                              "code with `if __name__ == '__main__':`)"))
                except Exception as err:  # noqa: BLE001 - reported by unit, after the rest
                    failures.append(UnitFailure(unit, _one_line(err)))
        except BaseException:  # Ctrl-C, SIGTERM: start nothing more; finished fold files stay
            workers = list((pool._processes or {}).values())  # emptied by shutdown()
            pool.shutdown(wait=False, cancel_futures=True)
            _stop_workers(workers)  # none outlives the run, or writes after its lock is gone
            raise
        pool.shutdown(wait=True)
        return sorted(failures, key=lambda f: f.unit)


class RayExecutor(Executor):
    """Each unit as a Ray task, on this machine or a cluster.

    Parameters
    ----------
    address : str | None
        Address of a running cluster (``"auto"``, ``"127.0.0.1:6379"``,
        ``"ray://head:10001"``); None starts a local Ray instance for this run.
    threads : int
        CPUs (and torch threads) each task asks for.
    gpus : float
        GPUs each task asks for (1 when the run's device is CUDA).
    max_retries : int
        Times a task whose worker died (killed node, lost process) is run again,
        ``0..MAX_RETRIES``.
        Exceptions raised by the unit itself are not retried: the same inputs would
        raise again.

    Notes
    -----
    The run folder must be reachable at the same path from every node (a shared file
    system), since each task writes its fold file there.
    """

    name = "ray"

    def __init__(self, address: str | None = None, threads: int = 1, gpus: float = 0.0,
                 max_retries: int = 2):
        self.max_retries = check_max_retries(max_retries)
        _import_ray()  # a missing extra fails here, before any data is prepared
        self.address = address
        self.threads = max(1, int(threads))
        self.gpus = float(gpus)

    def describe(self) -> str:
        where = self.address or "a local Ray instance"
        return (f"ray ({where}; {self.threads} CPU{'s' if self.threads != 1 else ''}"
                + (f", {self.gpus:g} GPU" if self.gpus else "") + " per unit, "
                f"{self.max_retries} retries)")

    def _connect(self):
        ray = _import_ray()
        if ray.is_initialized():
            return ray, False
        unreachable = _probe(self.address)
        if unreachable:  # ray.init would retry for minutes before giving up
            raise PhysioSyncError(
                f"cannot reach a Ray cluster at {self.address!r} ({unreachable}); start one "
                "with `ray start --head` (and `ray start --address ...` on the other nodes), "
                "or fix --address.")
        try:
            ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                     logging_level="ERROR")
        except (ConnectionError, RuntimeError, ValueError) as err:
            if self.address:
                raise PhysioSyncError(
                    f"cannot reach a Ray cluster at {self.address!r} ({_one_line(err)}); "
                    "start one with `ray start --head` (and `ray start --address ...` on "
                    "the other nodes), or fix --address.") from None
            raise PhysioSyncError(f"cannot start a local Ray instance: {_one_line(err)}") \
                from None
        return ray, True

    def run(self, function, args: tuple, units: list) -> list[UnitFailure]:
        if not units:
            return []
        ray, started = self._connect()
        try:
            task = ray.remote(_ray_task).options(
                num_cpus=self.threads, num_gpus=self.gpus, max_retries=self.max_retries,
                retry_exceptions=False)
            shared = ray.put(args)
            guard = _RUN_LOCK.get()
            refs = {task.remote(function, shared, unit, self.threads, guard): unit
                    for unit in units}
            failures = []
            try:
                for ref, unit in refs.items():
                    try:
                        ray.get(ref)
                    except ray.exceptions.RayTaskError as err:
                        cause = err.cause if getattr(err, "cause", None) is not None else err
                        failures.append(UnitFailure(unit, _one_line(cause)))
                    except ray.exceptions.RayError as err:
                        failures.append(UnitFailure(
                            unit, f"its Ray worker died {self.max_retries + 1} times "
                                  f"({type(err).__name__})"))
            except BaseException:  # Ctrl-C, SIGTERM: the study's tasks stop with it
                _cancel_ray_tasks(ray, list(refs))
                raise
            return sorted(failures, key=lambda f: f.unit)
        finally:
            if started:
                ray.shutdown()


def _probe(address: str | None, timeout: float = 5.0) -> str | None:
    """Why a ``host:port`` (or ``ray://host:port``) address cannot be reached, or None.

    Other forms (None, ``"auto"``) are left to Ray.
    """
    import socket

    if not address or address == "auto":
        return None
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return f"expected HOST:PORT, got {address!r}"
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return None
    except OSError as err:
        return err.strerror or type(err).__name__


def _import_ray():
    try:
        import ray
    except ImportError:
        raise PhysioSyncError(_RAY_MISSING) from None
    return ray


def _ray_task(function, args, unit, threads, guard=None):
    _set_threads(threads)
    _install_guard(guard)
    try:
        return function(*args, unit)
    finally:
        _install_guard(None)  # Ray reuses its workers for other tasks


def _cancel_ray_tasks(ray, refs: list, grace: float = STOP_GRACE_S) -> None:
    """Cancel the tasks *refs* that have not finished: a ``KeyboardInterrupt`` in each
    (its cleanup runs), then, after *grace* seconds, their workers are killed."""
    for ref in refs:
        with contextlib.suppress(Exception):
            ray.cancel(ref, force=False)
    with contextlib.suppress(Exception):
        _, left = ray.wait(refs, num_returns=len(refs), timeout=grace)
        for ref in left:
            with contextlib.suppress(Exception):
                ray.cancel(ref, force=True)


def _on_cuda(device) -> bool:
    """Whether a run on *device* (None and ``"auto"`` pick CUDA where there is one) uses
    CUDA; an explicit ``cuda`` device counts without looking for one."""
    if device in (None, "auto"):
        import torch

        return torch.cuda.is_available()
    return str(device).startswith("cuda")


def make_executor(name: str = "serial", *, n_jobs: int | None = None,
                  threads: int | None = None, address: str | None = None,
                  device: str | None = None, max_retries: int = 2) -> Executor:
    """The executor called *name*.

    Parameters
    ----------
    name : {"serial", "processes", "ray"}
        See the module docstring.
    n_jobs : int | None
        Workers of ``"processes"`` (default 2, capped at the cores); for ``"ray"``,
        units per machine's cores: each task asks for ``cores // n_jobs`` CPUs
        (default 1 CPU per task).
    threads : int | None
        Threads of each unit (Ray: CPUs per task); default: the CPUs this process
        may use (serial, :func:`default_threads`), ``cores // n_jobs`` (processes,
        Ray). Results are the same byte for byte under every executor when each unit
        has the same number of threads; with other thread counts, floating-point sums
        are split differently and predicted probabilities differ in the last digits.
    address : str | None
        Ray cluster address (``"ray"`` only).
    device : str | None
        The run's device: a CUDA device makes each Ray task ask for one GPU; the
        process executor, which assigns no GPUs, refuses it for more than one worker.
    max_retries : int
        Ray's retries of a unit whose worker died, ``0..MAX_RETRIES`` (checked for
        every executor, before any work).

    Returns
    -------
    executor : Executor
    """
    from ._utils import check_option

    check_option("executor", name, EXECUTORS)
    check_max_retries(max_retries)  # whatever the executor: bad input is refused up front
    if name != "ray" and address:
        raise PhysioSyncError(f"--address is an option of the ray executor, not of {name!r}.")
    if name == "serial":
        if n_jobs not in (None, 1):
            raise PhysioSyncError(f"n_jobs={n_jobs} needs a parallel executor: use "
                                  "--executor processes (or ray).")
        return SerialExecutor(threads)
    if name == "processes":
        executor = ProcessExecutor(n_jobs if n_jobs is not None else 2, threads)
        if executor.n_jobs > 1 and _on_cuda(device):
            raise PhysioSyncError(
                f"--executor processes would put its {executor.n_jobs} workers on the same "
                "GPU (it assigns no GPUs): use --executor ray, whose tasks each get a GPU, "
                "or --n-jobs 1, or the serial executor.")
        return executor
    if threads is None:
        threads = max(1, available_cores() // n_jobs) if n_jobs and n_jobs > 0 else 1
    gpus = 1.0 if device and str(device).startswith("cuda") else 0.0
    return RayExecutor(address, threads=threads, gpus=gpus, max_retries=max_retries)

