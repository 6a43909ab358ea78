"""The ``physiosync`` command line. Each subcommand parses options and calls the library.

:func:`main` is the console script's entry point (and ``python -m physiosync``'s);
:func:`build_parser` its argument parser. The package holds, by job:

* ``_parser``: the subcommands and their options;
* ``_data``: ``synth``, ``info``, ``prepare``;
* ``_model``: ``pretrain``, ``finetune``;
* ``_study``: ``cv``, ``report``, ``configs``;
* ``_demo``: ``demo`` and the synthetic copy it writes of each dataset;
* ``_common``: the run configuration from the options, and the console output the
  commands share;
* ``_errors``: exit codes and the one error line of each failure.
"""

from __future__ import annotations

import sys

from .._logging import progress_bars, use_log_level
from .._signals import as_terminated, exit_code, terminate_as_interrupt
from ..exceptions import PhysioSyncError
from ._errors import (EXIT_BAD_INPUT, EXIT_BROKEN_PIPE, EXIT_BUG, EXIT_INTERRUPT, error_line,
                      interrupt_line, name_options, printable_paths, stdout_closed)
from ._parser import build_parser

__all__ = ["build_parser", "main", "EXIT_BAD_INPUT", "EXIT_BROKEN_PIPE", "EXIT_BUG",
           "EXIT_INTERRUPT"]


def main(argv=None) -> int:
    """Entry point of the ``physiosync`` console script.

    Every failure ends in one line on stderr, ``physiosync: error: ...``, and an exit
    code: 2 for bad input (a :class:`~physiosync.PhysioSyncError`, or an
    :class:`OSError` such as a read-only or full ``--out``), 130 for an interrupt
    (Ctrl-C), 143 for SIGTERM, 129 for SIGHUP and 1 for anything else, which is a bug.
    ``-v`` adds the traceback. SIGTERM and SIGHUP take the path of Ctrl-C (they raise
    :class:`KeyboardInterrupt` where the command was), so they too leave complete files
    only and release the run folder's lock; the previous handlers are restored on return.

    Verbosity follows the library's ``verbose=`` for the duration of the command:
    ``-v`` is ``verbose="info"`` (INFO records on stderr, progress bars) and ``-q``
    is ``verbose=False`` (warnings only, no progress bars); given both, ``-v`` sets
    the level and ``-q`` hides the bars. Without either, the commands that take
    ``-q`` show progress bars (on a terminal) and no INFO records. Warnings reach
    stderr in every case, ``-q`` included, as in MNE-Python (``verbose=False`` is
    ``"warning"``): a lost trial or a recomputed cache entry is never silent.
    """
    with terminate_as_interrupt():
        try:
            return _parse_and_run(argv)
        except KeyboardInterrupt as err:  # a signal just after the command's own handling
            err = as_terminated(err)
            print(f"physiosync: error: {interrupt_line(err)}", file=sys.stderr)
            return exit_code(err)


def _parse_and_run(argv) -> int:
    args = build_parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    quiet = getattr(args, "quiet", None)  # None: the command has no -q
    with printable_paths():
        return _main(args, verbose, quiet)


def _main(args, verbose: bool, quiet) -> int:
    """:func:`main` after parsing: the command, its verbosity, and its one error line."""
    try:
        # "warning", not None: use_log_level then attaches a console handler when nothing
        # else shows the records, so warnings reach stderr without -v.
        with use_log_level("info" if verbose else "warning"), \
                progress_bars(None if quiet is None else not quiet):
            code = args.func(args)
            sys.stdout.flush()  # here, where a reader that left is handled, not at exit
            return code
    except (KeyboardInterrupt, Exception) as err:
        if isinstance(err, BrokenPipeError) and stdout_closed():
            return EXIT_BROKEN_PIPE  # `physiosync configs | head`: the reader had enough
        err = as_terminated(err)  # a SIGTERM that a library re-raised as a plain Ctrl-C
        line, code = error_line(err)
        if isinstance(err, PhysioSyncError):
            line = name_options(line, args)
        if verbose:
            import traceback

            traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
        print(f"physiosync: error: {line}", file=sys.stderr)
        return code
