"""How a command ends: its exit codes and the one error line of each kind of failure.

Also the console's guards: :func:`stdout_closed` (the reader of stdout left),
:func:`printable_paths` (paths that the locale cannot encode) and
:func:`name_options` (an error names the option, not the configuration key, that
set a value).
"""

from __future__ import annotations

import contextlib
import sys

from .._version import __version__
from .._signals import Terminated, exit_code
from ..exceptions import PhysioSyncError


#: Exit codes of :func:`main`: bad input (argparse's own code), an interrupt (128 + SIGINT)
#: and a bug. SIGTERM and SIGHUP end with 128 + their number (143, 129).
EXIT_BAD_INPUT, EXIT_INTERRUPT, EXIT_BUG = 2, 130, 1


#: Exit code when the reader of stdout went away (128 + SIGPIPE, as a shell reports it).
EXIT_BROKEN_PIPE = 141


def stdout_closed() -> bool:
    """Whether stdout is a pipe whose reader left; if so, point it at os.devnull so that
    the interpreter's final flush does not fail again at exit."""
    import os
    import select

    try:
        fd = sys.stdout.fileno()
        if hasattr(select, "poll"):  # POLLERR on a pipe's write end: no reader any more
            poller = select.poll()
            poller.register(fd, select.POLLOUT)
            if not any(event & select.POLLERR for _, event in poller.poll(0)):
                return False
        os.dup2(os.open(os.devnull, os.O_WRONLY), fd)
    except (OSError, ValueError, AttributeError):
        return False
    return True


def _one_line(text) -> str:
    return " ".join(str(text).split())


def _os_error_line(err: OSError) -> str:
    """What failed on which path, and what to do, for an :class:`OSError` of a command."""
    import errno

    where = err.filename if err.filename is not None else "a file"
    if err.filename2 is not None:
        where = f"{where} -> {err.filename2}"
    what = err.strerror or str(err)
    hint = {errno.ENOSPC: "free some space or choose another --out",
            errno.EDQUOT: "free some space or choose another --out",
            errno.EACCES: "check the permissions or choose another --out",
            errno.EPERM: "check the permissions or choose another --out",
            errno.EROFS: "choose an --out on a writable file system",
            errno.ENOTDIR: "a path component is a file, not a folder; choose another --out",
            errno.EEXIST: "the path exists and is in the way; choose another --out",
            errno.EISDIR: "the path is a folder; give a file path",
            }.get(err.errno, "check the path and try again")
    return f"cannot access {where}: {what}; {hint}."


def interrupt_line(err: KeyboardInterrupt) -> str:
    # Ctrl-C says "interrupted"; SIGTERM and SIGHUP (Terminated) also name the signal
    what = "interrupted" + (f" by {err.name}" if isinstance(err, Terminated) else "")
    done, total = getattr(err, "units_done", None), getattr(err, "units_total", None)
    if done is None or total is None:
        return f"{what}; nothing half-written is kept, run the same command again to resume."
    unit = getattr(err, "unit_name", "(pipeline, fold) units")
    return (f"{what}: {done} of {total} {unit} done and saved in {err.out_dir}; run the "
            "same command again to resume.")


def error_line(err: BaseException) -> tuple:
    """The one-line message and the exit code of an exception that ended a command."""
    if isinstance(err, KeyboardInterrupt):
        return interrupt_line(err), exit_code(err)
    if isinstance(err, PhysioSyncError):
        return _one_line(err), EXIT_BAD_INPUT
    if isinstance(err, OSError):
        return _os_error_line(err), EXIT_BAD_INPUT
    if isinstance(err, RecursionError):
        return ("an input is nested too deeply to process; check the config and data "
                "files"), EXIT_BAD_INPUT
    if isinstance(err, MemoryError):
        return ("out of memory; reduce the sizes in the config (batch sizes, embed_dim, "
                "hidden) or the amount of data"), EXIT_BAD_INPUT
    return (f"unexpected {type(err).__name__}: {_one_line(err)[:300]}. This is a bug in "
            f"physiosync {__version__}; please report it with the command and the traceback "
            "that the same command prints with -v."), EXIT_BUG


@contextlib.contextmanager
def printable_paths():
    """stdout and stderr write what they cannot encode as escapes for the command.

    A path given with bytes that are not valid in the locale's encoding (``--out
    $'run\\xff'``) reaches Python as lone surrogates; under a UTF-8 locale stdout
    would refuse them (``UnicodeEncodeError``) after the run's work was done. They are
    printed as ``\\udcff``, as Python prints them on stderr.
    """
    changed = []
    for stream in (sys.stdout, sys.stderr):
        if getattr(stream, "errors", None) == "strict" and hasattr(stream, "reconfigure"):
            with contextlib.suppress(AttributeError, ValueError, OSError):
                stream.reconfigure(errors="backslashreplace")
                changed.append(stream)
    try:
        yield
    finally:
        for stream in changed:
            with contextlib.suppress(AttributeError, ValueError, OSError):
                stream.reconfigure(errors="strict")


#: Configuration keys that a command-line option sets: key -> (``args`` attribute, option).
_OPTION_KEYS = {"protocol.n_splits": ("folds", "--folds")}


def name_options(line: str, args) -> str:
    """*line* naming the option, not the configuration key, where the value came from it.

    ``--folds 1`` sets ``protocol.n_splits``, whose checks name the key; an error about
    it names ``--folds`` unless a ``--set`` of the same key overrode the option.
    """
    import re

    sets = [str(item).partition("=")[0].strip() for item in getattr(args, "set", None) or []]
    for key, (attr, option) in _OPTION_KEYS.items():
        value = getattr(args, attr, None)
        if value is None or key in sets:
            continue
        leaf = key.rpartition(".")[2]
        line = line.replace(f"config key {key!r}", f"{option} ({key})")
        line = re.sub(rf"(?<![\w.]){re.escape(leaf)}\s*=\s*{re.escape(str(value))}\b",
                      f"{option} {value} ({key})", line)
    return line
