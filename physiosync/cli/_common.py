"""What the commands share: the run configuration from the options, and console output.

:func:`load_run_config` layers a command's configuration (file or preset, options,
``--set``); the others print a run's start lines, the busy-machine note, the cost
estimate before training and the summary of a finished run.
"""

from __future__ import annotations

import sys


def load_run_config(args):
    """The validated configuration of a command: file/preset, then options, then --set."""
    from ..config import load_config

    cli = {}
    data = {k: v for k, v in (("name", getattr(args, "dataset", None)),
                              ("root", getattr(args, "data_root", None)),
                              ("target", getattr(args, "target", None)),
                              ("cache_dir", getattr(args, "cache_dir", None)),
                              ("ratings_csv", getattr(args, "ratings_csv", None)))
            if v is not None}
    if data:
        cli["data"] = data
    protocol = {k: v for k, v in (("name", getattr(args, "protocol", None)),
                                  ("n_splits", getattr(args, "folds", None))) if v is not None}
    if protocol:
        cli["protocol"] = protocol
    for key in ("seed", "device", "threads"):
        if getattr(args, key, None) is not None:
            cli[key] = getattr(args, key)
    if getattr(args, "pipelines", None):
        cli["pipelines"] = [p.strip() for p in args.pipelines.split(",") if p.strip()]
    return load_config(getattr(args, "config", None), getattr(args, "set", None), **cli)


def start_lines(cfg, executor=None):
    """The ``on_start`` of :func:`~physiosync.experiment.run_experiment`: print the run's
    own start lines, then the busy-machine note (:func:`note_if_busy`), once every check
    has passed (so that a refused command still prints one line)."""
    def on_start(lines) -> None:
        for line in lines:
            print(line)
        note_if_busy(cfg, executor)
    return on_start


def note_if_busy(cfg, executor=None) -> None:
    """When a training command starts, after its checks: one line on stderr when the
    machine's load would slow the default thread count, unless the threads were chosen
    (``--threads``, the ``threads`` config key)."""
    from ..execution import ProcessExecutor, SerialExecutor, busy_note, default_threads

    if cfg.threads is not None:
        return
    if executor is None or isinstance(executor, SerialExecutor):
        total = executor.threads if executor is not None else default_threads()
    elif isinstance(executor, ProcessExecutor):
        total = executor.n_jobs * executor.threads
    else:  # Ray: the tasks' CPUs are Ray's to schedule, on machines whose load is not here
        return
    note = busy_note(total)
    if note:
        print(f"physiosync: note: {note}", file=sys.stderr)


def print_result(result: dict, *, significance: str | None = None) -> None:
    """The summary of a finished run (:func:`physiosync.reporting.report.report_text`) and its
    path; *significance*: the options that add units, for a line that says whether the
    results are significant (:func:`~physiosync.reporting.text.significance_sentence`)."""
    from ..reporting.report import report_text
    from ..reporting.text import significance_sentence

    print(report_text(result["report"]))
    print()
    if significance is not None:
        print(significance_sentence(result["report"], options=significance))
        print()
    print(f"report: {result['paths'].get('html', result['paths']['md'])}")


def print_cost(estimate, args) -> None:
    """Print a study's :class:`~physiosync.experiment.CostEstimate` before its training."""
    print(estimate.text())
    if getattr(args, "executor", "serial") != "serial":
        print(f"    (the units run on the {args.executor} executor: in parallel, the wall "
              "time is shorter, by up to the number of workers)")
    sys.stdout.flush()
