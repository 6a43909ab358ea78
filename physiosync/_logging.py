"""The package logger, quiet by default, and a progress bar that follows it."""

from __future__ import annotations

import logging

from tqdm.auto import tqdm

logger = logging.getLogger("physiosync")
logger.addHandler(logging.NullHandler())
logger.propagate = True

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


def progress(iterable, *, desc: str, total: int | None = None, disable: bool | None = None):
    """Wrap *iterable* in a tqdm bar that is shown only when the logger is at INFO or below."""
    if disable is None:
        disable = logger.getEffectiveLevel() > logging.INFO
    return tqdm(iterable, desc=desc, total=total, disable=disable, leave=False)
