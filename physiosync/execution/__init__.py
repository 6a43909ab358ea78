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

The executors are split into modules by job; this package re-exports their public names:

=======================================  ===============================================
:mod:`~physiosync.execution.cpus`        the CPUs a run may use and the threads a unit
                                         gets: :func:`default_threads`,
                                         :func:`core_limits`, :func:`thread_limit`,
                                         :func:`other_load`, :func:`busy_note`
:mod:`~physiosync.execution.executors`   :class:`Unit`, the executors and
                                         :func:`make_executor`
:mod:`~physiosync.execution.workers`     the worker side: :func:`run_lock` guards, and
                                         how workers start, stop and die with their parent
=======================================  ===============================================
"""

from ..params import EXECUTORS
from .cpus import (available_cores, busy_note, core_limits, default_threads, other_load,
                   thread_limit)
from .executors import (MAX_RETRIES, Executor, ProcessExecutor, RayExecutor, SerialExecutor,
                        Unit, UnitFailure, check_max_retries, make_executor)
from .workers import STOP_GRACE_S, WATCH_S, run_lock

__all__ = ["Unit", "UnitFailure", "Executor", "SerialExecutor", "ProcessExecutor",
           "RayExecutor", "make_executor", "check_max_retries", "MAX_RETRIES",
           "available_cores", "core_limits", "default_threads", "other_load", "busy_note",
           "thread_limit", "run_lock", "STOP_GRACE_S", "WATCH_S", "EXECUTORS"]
