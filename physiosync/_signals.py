"""SIGTERM and SIGHUP handled as Ctrl-C, in the command line and in worker processes.

Python turns SIGINT into :class:`KeyboardInterrupt`, so every ``finally`` block and
context manager of a command cleans up on Ctrl-C: temporary files of atomic writes are
removed, the run folder's lock is released. SIGTERM (``kill``, ``timeout``, a batch
scheduler) and SIGHUP (a closed terminal) end a process at once by default, leaving
all of that behind. :func:`terminate_as_interrupt` makes them raise
:class:`Terminated`, a :class:`KeyboardInterrupt` that says which signal it was, so
that they take the Ctrl-C path.
"""

from __future__ import annotations

import contextlib
import signal
import threading

__all__ = ["Terminated", "TERMINATING_SIGNALS", "terminate_as_interrupt", "exit_code",
           "as_terminated"]

# The signal each active terminate_as_interrupt() block raised (None: none yet), innermost last.
_BLOCKS: list = []

#: The signals handled as Ctrl-C (SIGHUP does not exist on Windows).
TERMINATING_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP")
                            if hasattr(signal, name))


class Terminated(KeyboardInterrupt):
    """A SIGTERM or SIGHUP, raised where the program was, as Ctrl-C raises
    :class:`KeyboardInterrupt`.

    Parameters
    ----------
    signum : int
        The signal number.
    """

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = int(signum)

    @property
    def name(self) -> str:
        """The signal's name, e.g. ``"SIGTERM"``."""
        return signal.Signals(self.signum).name


def exit_code(err: BaseException) -> int:
    """The shell's exit status of a process ended by *err*: 128 + the signal number
    (143 for SIGTERM, 129 for SIGHUP, 130 for Ctrl-C)."""
    return 128 + int(getattr(err, "signum", signal.SIGINT))


@contextlib.contextmanager
def terminate_as_interrupt():
    """Context in which SIGTERM and SIGHUP raise :class:`Terminated` in the main thread.

    Only the first such signal raises: later ones are ignored while the program cleans
    up (a second exception inside a ``finally`` block could leave half-done work, such
    as a temporary file). The previous handlers are restored when the block ends. A
    signal that is ignored when the block starts stays ignored (``nohup`` ignores
    SIGHUP). Off the main thread, where Python cannot install handlers, the block
    changes nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = []
    block = [None]

    def handler(signum, frame):
        if raised:
            return
        raised.append(signum)
        block[0] = signum
        raise Terminated(signum)

    previous = {}
    _BLOCKS.append(block)
    try:
        for sig in TERMINATING_SIGNALS:
            if signal.getsignal(sig) is not signal.SIG_IGN:
                previous[sig] = signal.signal(sig, handler)
        yield
    finally:
        raised.append(None)  # the block is over: a signal now raises nothing here
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)
        _BLOCKS.remove(block)


def as_terminated(err: BaseException) -> BaseException:
    """*err*, or, for a plain :class:`KeyboardInterrupt` raised after the innermost active
    :func:`terminate_as_interrupt` block turned a signal into :class:`Terminated`, a
    :class:`Terminated` of that signal with *err*'s attributes.

    Some libraries replace the exception a signal handler raised by a plain
    ``KeyboardInterrupt`` (Ray's ``ray.get`` does); this says which signal it was.
    Python itself wraps an interrupt that lands in some hooks into another exception
    (a ``RuntimeError("Error calling __set_name__ ...")`` while a class is created on
    import): an interrupt found among *err*'s causes is returned instead.
    """
    if not isinstance(err, KeyboardInterrupt):
        seen, cause = set(), err.__cause__ or err.__context__
        while cause is not None and id(cause) not in seen:
            if isinstance(cause, KeyboardInterrupt):
                err = cause
                break
            seen.add(id(cause))
            cause = cause.__cause__ or cause.__context__
    signum = _BLOCKS[-1][0] if _BLOCKS else None
    if signum is None or type(err) is not KeyboardInterrupt:
        return err
    out = Terminated(signum)
    out.__dict__.update(err.__dict__)
    out.__traceback__ = err.__traceback__
    return out
