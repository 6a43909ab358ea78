"""The package logger, quiet by default, and a progress bar that follows it."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

from tqdm.auto import tqdm

logger = logging.getLogger("physiosync")
logger.addHandler(logging.NullHandler())
logger.propagate = True

#: The level the console follows while :func:`log_to_file` has lowered the logger's.
_console_level = None

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
           "error": logging.ERROR, "critical": logging.CRITICAL}


def set_log_level(level: int | str | bool | None = "warning") -> None:
    """Set the verbosity of the ``physiosync`` logger and attach a console handler.

    Parameters
    ----------
    level : int | str | bool | None
        A :mod:`logging` level, its name (``"info"``), ``True`` for ``"info"``,
        or ``False``/``None`` for ``"warning"``.
    """
    if level is True:
        level = logging.INFO
    elif level in (False, None):
        level = logging.WARNING
    elif isinstance(level, str):
        try:
            level = _LEVELS[level.lower()]
        except KeyError:
            raise ValueError(
                f"Unknown log level {level!r}; expected one of {sorted(_LEVELS)}."
            ) from None
    logger.setLevel(level)
    if not any(getattr(h, "_physiosync", False) for h in logger.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(levelname)s [physiosync] %(message)s"))
        handler._physiosync = True  # type: ignore[attr-defined]
        logger.addHandler(handler)


def _is_terminal(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def progress(iterable, *, desc: str, total: int | None = None, disable: bool | None = None):
    """Wrap *iterable* in a tqdm bar that is shown only when the logger is at INFO or below.

    The bar is never shown when standard error is not a terminal (a log file, a pipe,
    a batch job), where its redraws would fill the output with escape sequences.
    """
    if disable is None:
        level = logger.getEffectiveLevel() if _console_level is None else _console_level
        disable = level > logging.INFO
    if not _is_terminal(sys.stderr):
        disable = True
    return tqdm(iterable, desc=desc, total=total, disable=disable, leave=False)


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
                self._stream = open(self.path, "a", encoding="utf-8")
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


class _ForwardAtLeast(logging.Handler):
    """Pass records at *level* and above to the root logger's handlers (propagation)."""

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
    the records it received before.

    Parameters
    ----------
    path : str | Path
        The log file, e.g. ``<run folder>/run.log``.
    level : int
        Lowest level written to the file.
    """
    global _console_level
    handler = _RunLogHandler(path, level)
    before = logger.getEffectiveLevel()
    old_level, old_propagate, old_console = logger.level, logger.propagate, _console_level
    lowered = before > level
    if lowered:  # lower the logger for the file only; gate every other destination
        gate = logging.Filter()
        gate.filter = lambda record: record.levelno >= before  # type: ignore[method-assign]
        others = list(logger.handlers)
        for h in others:
            h.addFilter(gate)
        forward = _ForwardAtLeast(before)
        if old_propagate:
            logger.propagate = False
            logger.addHandler(forward)
        logger.setLevel(level)
        _console_level = before
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        handler.close()
        if lowered:
            for h in others:
                h.removeFilter(gate)
            logger.removeHandler(forward)
            logger.propagate = old_propagate
            logger.setLevel(old_level)
            _console_level = old_console
