"""The worker side of the parallel executors: run-lock guards and worker lifecycles.

:func:`run_lock` hands a run folder's lock token to the workers, whose atomic writes
under the folder then check that the run still holds its lock (:func:`_install_guard`).
A worker of the process executor stops with the process that started it (a signal
handler, ``PR_SET_PDEATHSIG`` on Linux, and a thread that watches the parent), unwinds a
unit it is stopped in, and leaves quietly; :func:`_stop_workers` stops a pool's workers
(SIGTERM, then SIGKILL after :data:`STOP_GRACE_S` seconds).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import signal
import sys
import threading
import time

from .cpus import _set_threads

__all__ = ["run_lock", "STOP_GRACE_S", "WATCH_S"]

#: Seconds a stopped worker (or Ray task) has to clean up before it is killed.
STOP_GRACE_S = 10.0
#: Seconds between a worker's checks that the process that started it is alive.
WATCH_S = 0.5
# (absolute run folder, lock token) of the run whose units are being executed, or None
_RUN_LOCK = contextvars.ContextVar("physiosync_run_lock", default=None)


@contextlib.contextmanager
def run_lock(folder):
    """Context in which the executors' workers write into *folder* only under its lock.

    *folder* must be locked by this process (``FolderLock``,
    as ``RunFolder`` does). The process and Ray executors
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
    from ..runfolder import FolderLock

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
    from .._utils import io

    if guard is None:
        io._before_replace = None
        return
    folder, token = guard
    prefix = folder.rstrip(os.sep) + os.sep

    def check(path) -> None:
        if os.path.abspath(path).startswith(prefix):
            from ..runfolder import _pid_alive, lock_holds

            if (parent is not None and not _pid_alive(parent)) or not lock_holds(folder,
                                                                                  token):
                from ..exceptions import RunFolderError

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
            from .._signals import Terminated

            raise KeyboardInterrupt if signum == signal.SIGINT else Terminated(signum)
    if not _WORKER["in_unit"]:
        _leave(128 + signum)
    # a second signal while the unit unwinds: let it finish cleaning up


def _watch_parent(parent: int, ppid: int) -> None:
    """Send this process SIGTERM once *parent* (the process that started the pool) or
    its direct parent (a fork server) is gone."""
    from ..runfolder import _pid_alive

    while os.getppid() == ppid and _pid_alive(parent):
        time.sleep(WATCH_S)
    os.kill(os.getpid(), signal.SIGTERM)


def _die_with_parent(parent: int) -> None:
    """Make this worker stop when *parent*, the process that started the pool, dies."""
    from .._signals import TERMINATING_SIGNALS

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
        from .._signals import exit_code

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
