"""The CPUs a run may use, and the threads each unit of work gets.

:func:`default_threads` (the threads a unit gets when none are asked for) is the smallest of
the limits :func:`core_limits` finds (the machine, the affinity mask, the cgroup CPU quota,
``SLURM_CPUS_PER_TASK``) and ``OMP_NUM_THREADS``; :func:`thread_limit` sets torch's threads
and the BLAS and OpenMP pools' for a while; :func:`other_load` measures how many cores other
processes keep busy, and :func:`busy_note` says when that would slow a run.
"""

from __future__ import annotations

import contextlib
import math
import numbers
import os
import time

from .._logging import logger
from ..exceptions import PhysioSyncError

__all__ = ["available_cores", "core_limits", "default_threads", "other_load", "busy_note",
           "thread_limit"]


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
