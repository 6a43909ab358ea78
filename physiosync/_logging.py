"""The package logger, quiet by default; the ``verbose=`` convention; progress bars.

Public functions that log or show progress take ``verbose: bool | str | int | None =
None``, as in MNE-Python: ``None`` follows the package level (:func:`set_log_level`,
``"warning"`` unless changed), ``True`` means ``"info"``, ``False`` ``"warning"``,
and a level name or number that level. The :func:`verbose` decorator applies it for
the duration of the call (:func:`use_log_level`), so the functions it calls inherit
it. Progress bars follow the level in force: they are shown at INFO and below, and
only when standard error is a terminal.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import operator
import os
import sys
import warnings
from pathlib import Path

from tqdm.auto import tqdm

from ._utils.docs import fill_doc

logger = logging.getLogger("physiosync")
logger.addHandler(logging.NullHandler())
logger.propagate = True

#: While ``log_to_file()`` is active: the level every destination other than the log
#: files follows (the logger itself is lowered to the files' level). None otherwise.
_console_level = None

#: Set by :func:`progress_bars`: True shows progress bars (on a terminal) whatever the
#: level, False hides them; None lets them follow the level.
_bars = None

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}


def _level_number(level) -> int:
    """The :mod:`logging` level that a ``verbose`` value (not None) names."""
    if level is True:
        return logging.INFO
    if level is False:
        return logging.WARNING
    if isinstance(level, str):
        try:
            return _LEVELS[level.lower()]
        except KeyError:
            raise ValueError(
                f"Unknown log level {level!r}; expected one of {sorted(_LEVELS)}, True "
                "(info), False (warning), None or a logging level number."
            ) from None
    try:
        return operator.index(level)
    except TypeError:
        raise TypeError(f"verbose must be a bool, a level name such as 'info', an int or "
                        f"None, got {type(level).__name__} {level!r}.") from None


def _verbosity() -> int:
    """The level the console follows now (and with it, the progress bars)."""
    return logger.getEffectiveLevel() if _console_level is None else _console_level


class _ConsoleHandler(logging.StreamHandler):
    """The package's console handler: standard error, at the level in force."""

    def __init__(self):
        super().__init__()
        self.setFormatter(logging.Formatter("%(levelname)s [physiosync] %(message)s"))
        # While a log file has lowered the logger, show only what the console level allows.
        self.addFilter(lambda record: record.levelno >= _verbosity())


def _console_handler() -> _ConsoleHandler | None:
    """The package's console handler, or None if it is not attached."""
    return next((h for h in logger.handlers if isinstance(h, _ConsoleHandler)), None)


def set_log_level(level: int | str | bool | None = "warning") -> None:
    """Set the verbosity of the ``physiosync`` logger and attach a console handler.

    This is the package level that ``verbose=None`` follows in every function that
    takes ``verbose``; :func:`use_log_level` changes it for a block only.

    Parameters
    ----------
    level : int | str | bool | None
        A :mod:`logging` level, its name (``"info"``), ``True`` for ``"info"``,
        or ``False``/``None`` for ``"warning"``.
    """
    logger.setLevel(_level_number(False if level is None else level))
    if _console_handler() is None:
        logger.addHandler(_ConsoleHandler())


def _shown_elsewhere() -> bool:
    """Whether some destination other than the log files receives the package's records."""
    private = (logging.NullHandler, _RunLogHandler, _ForwardToRoot)
    return (any(not isinstance(h, private) for h in logger.handlers)
            or bool(logging.getLogger().handlers))


@contextlib.contextmanager
def use_log_level(level: bool | str | int | None):
    """Run a block at another verbosity and restore the previous one after it.

    The previous level comes back however the block ends (an exception included).
    If nothing displays the package's log records yet (no :func:`set_log_level`, no
    handler on the root logger), a console handler on standard error is attached for
    the duration of the block. A log file that ``log_to_file()`` is writing keeps
    receiving its records whatever the level. Like the logger itself, the level is
    shared by all threads.

    Parameters
    ----------
    level : bool | str | int | None
        ``True`` for ``"info"``, ``False`` for ``"warning"``, a level name such as
        ``"debug"`` or a :mod:`logging` level; ``None`` leaves the level as it is.

    Examples
    --------
    >>> import physiosync
    >>> with physiosync.use_log_level("info"):  # doctest: +SKIP
    ...     physiosync.run_experiment(cfg, "run")
    """
    global _console_level, _bars
    if level is None:
        yield
        return
    new = _level_number(level)
    old_level, old_console, old_bars = logger.level, _console_level, _bars
    added = None
    if _console_handler() is None and not _shown_elsewhere():
        added = _ConsoleHandler()
        logger.addHandler(added)
    if _console_level is None:
        logger.setLevel(new)
    else:  # a log file lowered the logger: it keeps its records, the console follows *new*
        _console_level = new
        logger.setLevel(min(new, logger.getEffectiveLevel()))
    _bars = None  # an explicit level decides the progress bars too
    try:
        yield
    finally:
        logger.setLevel(old_level)
        _console_level, _bars = old_console, old_bars
        if added is not None:
            logger.removeHandler(added)
            added.close()


def verbose(function):
    """Decorator: run *function* at the level its ``verbose`` argument names.

    *function* must take a keyword-only ``verbose=None`` (or, for a method, may read
    ``self.verbose``, as an estimator's constructor parameter). ``None`` keeps the
    level of the caller, so a function called inside another inherits its level.

    Parameters
    ----------
    function : callable
        The function to wrap.

    Returns
    -------
    wrapped : callable
        *function*, run inside :func:`use_log_level` when ``verbose`` is not None,
        its docstring's ``%(verbose)s`` filled (:func:`~physiosync._utils.docs.fill_doc`).
    """
    params = inspect.signature(function).parameters
    method = next(iter(params), None) == "self"
    if "verbose" not in params and not method:
        raise TypeError(f"{function.__qualname__} takes no verbose argument.")

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        level = kwargs.get("verbose")
        if level is None and method and args:
            level = getattr(args[0], "verbose", None)
        if level is None:
            return function(*args, **kwargs)
        with use_log_level(level):
            return function(*args, **kwargs)

    return fill_doc(wrapper)


def _outside_stacklevel() -> int:
    """``stacklevel`` of a warning raised here that points at the first caller outside
    physiosync (decorator frames, contextlib's included, are skipped)."""
    inside = (os.path.dirname(os.path.abspath(__file__)) + os.sep,
              os.path.abspath(contextlib.__file__))
    frame, level = sys._getframe(1), 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(inside):
        frame, level = frame.f_back, level + 1
    return level


def deprecated_show_progress(function):
    """Decorator: accept the deprecated ``show_progress`` keyword of *function*.

    ``show_progress=True`` shows progress bars for the call whatever the level, and
    ``False`` hides them, as before; either way a :class:`FutureWarning` says to use
    ``verbose`` instead. To be removed in the release after the one that deprecates it.
    """
    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if "show_progress" not in kwargs:
            return function(*args, **kwargs)
        show = kwargs.pop("show_progress")
        warnings.warn(
            f"{function.__name__}(show_progress=...) is deprecated and will be removed in "
            "the next release; use verbose= instead (verbose=False: no progress bars and "
            "warnings only; verbose='info' or True: progress bars and INFO messages; None: "
            "follow physiosync.set_log_level).", FutureWarning,
            stacklevel=_outside_stacklevel())
        with progress_bars(None if show is None else bool(show)):
            return function(*args, **kwargs)

    return wrapper


@contextlib.contextmanager
def progress_bars(show: bool | None):
    """Show (True) or hide (False) the progress bars of a block whatever the level.

    ``None`` lets them follow the level. Bars are never shown off a terminal. The
    command line shows them by default (hidden by ``-q``); a loop that runs whole
    runs, each with its own bars, hides theirs.
    """
    global _bars
    old, _bars = _bars, show
    try:
        yield
    finally:
        _bars = old


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress(iterable, *, desc: str, total: int | None = None, disable: bool | None = None):
    """Wrap *iterable* in a tqdm bar that is shown only when the logger is at INFO or below.

    :func:`progress_bars` can show or hide the bars of a block whatever the level.
    The bar is never shown when standard error is not a terminal (a log file, a pipe,
    a batch job), where its redraws would fill the output with escape sequences.
    """
    if disable is None:
        disable = not _bars if _bars is not None else _verbosity() > logging.INFO
    if not _is_terminal(sys.stderr):
        disable = True
    return tqdm(iterable, desc=desc, total=total, disable=disable, leave=False)


def check_log_every(log_every, unit: str) -> None:
    """Refuse a ``log_every`` that is not None or a positive number of *unit*."""
    if log_every is None:
        return
    try:
        ok = not isinstance(log_every, bool) and operator.index(log_every) >= 1
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"log_every must be None or a positive number of {unit}, "
                         f"got {log_every!r}.")


def duration_text(seconds: float) -> str:
    """A duration for a progress line: ``"42 s"``, ``"3.5 min"`` or ``"2.1 h"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.1f} h"


class _RunLogHandler(logging.Handler):
    """Append formatted records to a text file, holding them until its folder exists."""

    def __init__(self, path: Path, level: int):
        super().__init__(level)
        self.path, self._pending, self._stream = Path(path), [], None
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))

    def emit(self, record):
        try:
            line = self.format(record) + "\n"
            if self._stream is None:
                if not self.path.parent.is_dir():  # the run has not created its folder yet
                    self._pending.append(line)
                    return
                # A path given with bytes that are not UTF-8 (--out, --data-root) arrives
                # as lone surrogates; written as \udcXX escapes, the log stays UTF-8 text.
                self._stream = open(self.path, "a", encoding="utf-8",
                                    errors="backslashreplace")
                self._stream.writelines(self._pending)
                self._pending.clear()
            self._stream.write(line)
            self._stream.flush()
        except Exception:  # noqa: BLE001 - logging must never end a run
            self.handleError(record)

    def close(self):
        with contextlib.suppress(OSError):
            if self._stream is not None:
                self._stream.close()
        self._stream = None
        super().close()


class _ForwardToRoot(logging.Handler):
    """Pass records to the root logger's handlers, as propagation would."""

    def emit(self, record):
        for handler in logging.getLogger().handlers:
            if record.levelno >= handler.level:
                handler.handle(record)


@contextlib.contextmanager
def log_to_file(path, level: int = logging.INFO):
    """Copy the package's log records at *level* and above into the text file *path*.

    The file is appended to (a resumed run adds to the log of the interrupted one) and
    created when the first record arrives after its folder exists. Every other
    destination (the console, handlers on the root logger) keeps receiving exactly
    the records it would receive without the file: those at the level in force,
    which :func:`use_log_level` may change inside the block.

    Parameters
    ----------
    path : str | Path
        The log file, e.g. ``<run folder>/run.log``.
    level : int
        Lowest level written to the file.
    """
    global _console_level
    handler = _RunLogHandler(path, level)
    old_level, old_propagate, old_console = logger.level, logger.propagate, _console_level
    gate, gated, forward = None, [], None
    if _console_level is None:  # not inside another log file: gate the other destinations
        _console_level = logger.getEffectiveLevel()
        gate = logging.Filter()
        gate.filter = lambda record: record.levelno >= _verbosity()  # type: ignore[method-assign]
        gated = list(logger.handlers)
        for h in gated:
            h.addFilter(gate)
        if old_propagate:
            logger.propagate = False
            forward = _ForwardToRoot()
            forward.addFilter(gate)
            logger.addHandler(forward)
    logger.setLevel(min(level, logger.getEffectiveLevel()))  # lowered for the file only
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        handler.close()
        for h in gated:
            h.removeFilter(gate)
        if forward is not None:
            logger.removeHandler(forward)
        logger.propagate = old_propagate
        logger.setLevel(old_level)
        _console_level = old_console
