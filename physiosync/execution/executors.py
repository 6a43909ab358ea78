"""The executors: where the units of a study run (this process, local processes, Ray).

:class:`Unit` and :class:`UnitFailure` name a unit of work and a failed one;
:class:`SerialExecutor`, :class:`ProcessExecutor` and :class:`RayExecutor` run units, and
:func:`make_executor` builds the one a run names, refusing bad options before any work.
"""

from __future__ import annotations

import contextlib
import numbers
import os
from dataclasses import dataclass

from .._logging import logger, verbose
from .._utils.docs import fill_doc
from ..exceptions import PhysioSyncError
from ..params import EXECUTORS
from .cpus import _check_threads, _set_threads, available_cores, default_threads, thread_limit
from .workers import (STOP_GRACE_S, _RUN_LOCK, _install_guard, _stop_workers, _worker_init,
                      _worker_unit)

__all__ = ["Unit", "UnitFailure", "Executor", "SerialExecutor", "ProcessExecutor",
           "RayExecutor", "make_executor", "check_max_retries", "MAX_RETRIES", "EXECUTORS"]

_RAY_MISSING = "the ray executor needs Ray: pip install 'physiosync[ray]'"


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
            workers = list((pool._processes or {}).values())  # all started by the submits
            for future in as_completed(futures):
                unit = futures[future]
                try:
                    future.result()
                except BrokenProcessPool:
                    _raise_if_interrupted(workers)
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


def _raise_if_interrupted(workers) -> None:
    """Raise the interrupt that stopped a worker of a broken pool, if one did.

    Ctrl-C reaches every process of the terminal's process group (so does the SIGHUP of
    a closed terminal). A worker between two units leaves at once with exit status
    128 + the signal (``workers._leave``), which breaks the pool; the main process may
    see the broken pool before its own ``KeyboardInterrupt`` is raised (the signal can
    land on another of its threads, which leaves the main thread waiting until the
    futures fail). The run is then interrupted, not failed: raise as the main process
    would have. SIGTERM is not read so: the pool itself sends it to the other workers
    once one has died.
    """
    import signal

    from .._signals import Terminated

    group_signals = {signal.SIGINT} | ({signal.SIGHUP} if hasattr(signal, "SIGHUP") else set())
    for process in workers:
        process.join(1.0)  # dead already when the pool broke; this reads its status
        code = process.exitcode
        signum = None if code is None else (code - 128 if code > 128 else -code)
        if signum in group_signals:
            raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)


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
    from .._utils import check_option

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
