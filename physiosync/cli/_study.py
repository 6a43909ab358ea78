"""The study commands: ``cv`` (cross-validate and report), ``report``, ``configs``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from .. import params
from ..exceptions import PhysioSyncError
from ..runfolder import FolderLock, RunFolder, report_owner, reports_fingerprint
from ._common import load_run_config, print_cost, print_result, start_lines


def cmd_configs(args) -> int:
    from .._utils import atomic_create
    from ..config import PRESETS

    if args.name is None:
        if args.out:
            raise PhysioSyncError("configs --out needs the preset to write, e.g. `physiosync "
                                  "configs deap_within --out my_config.yaml`.")
        width = max(map(len, PRESETS))
        for name in PRESETS:
            print(f"{name:<{width}}  {PRESETS.description(name)}")
        print("\nUse one with --config NAME (repeat --config to layer them). `physiosync "
              "configs NAME` prints its YAML; --out FILE writes a copy to edit and pass as "
              "--config FILE.")
        return 0
    text = PRESETS.text(args.name)  # an unknown name: one line listing the presets
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        atomic_create(args.out, text)
    except FileExistsError:
        raise PhysioSyncError(f"{args.out} exists; `physiosync configs --out` never replaces "
                              "a file: choose another --out or remove it first.") from None
    print(f"wrote the preset {args.name} to {args.out}; use it with --config {args.out}")
    return 0


def cmd_cv(args) -> int:
    from ..experiment import plan_experiment, run_experiment

    from ..execution import check_max_retries

    if not args.dry_run and not args.out:
        raise PhysioSyncError("cv needs --out DIR (the run folder), or --dry-run.")
    check_max_retries(args.max_retries)  # before any data is read or Ray is started
    cfg = load_run_config(args)
    from ..execution import SerialExecutor, make_executor

    if args.dry_run:
        from ..experiment import estimate_cost

        plan = plan_experiment(cfg)
        src = plan["data"].source
        print(f"{src['dataset']} at {src['root']}: {len(src['subjects'])} subjects, "
              f"{src['n_units']} (subject, trial) units, {src['n_windows']} windows of "
              f"{cfg.data.long_seconds:g} s; target {cfg.data.target}")
        print(f"{cfg.protocol.name}: {len(plan['folds'])} folds; pipelines "
              f"{', '.join(p['name'] for p in cfg.pipelines)}; all checks passed")
        print(plan["table"].to_string())
        # timed with the threads a serial run would have
        with SerialExecutor(cfg.threads).thread_limit():
            print_cost(estimate_cost(cfg, plan, timed=not args.no_estimate), args)
        return 0
    out = Path(args.out)
    executor = make_executor(args.executor, n_jobs=args.n_jobs, threads=cfg.threads,
                             address=args.address, device=cfg.device,
                             max_retries=args.max_retries)
    result = run_experiment(cfg, out, resume=not args.no_resume, overwrite=args.overwrite,
                            executor=executor, on_start=start_lines(cfg, executor),
                            on_cost=lambda c: print_cost(c, args),
                            time_cost=not args.no_estimate)
    print(f"{cfg.protocol.name}, target {cfg.data.target}: {len(result['report']['folds'])} "
          f"folds in {result['seconds']:.0f} s")
    print_result(result)
    return 0


def _folds_text(protocol) -> str:
    """How many folds *protocol* (a ``ProtocolConfig``) makes, in words for the user."""
    traits = params.PROTOCOL_TRAITS[protocol.name]
    if traits.uses_n_splits:
        return f"{protocol.n_splits} folds"
    if traits.first_trials:
        return "one fold (the first trials of each session train, the others test)"
    # Leave-one-out protocols ignore n_splits: one fold per held-out subject, stimulus or
    # session.
    groups = {"subject": "subject", "trial": "stimulus", "session": "session"}
    return "one fold per " + " and ".join(groups[g] for g in traits.held_out)


def cmd_report(args) -> int:
    from ..evaluation.summary import merge_reports
    from ..reporting.report import check_report, write_report

    runs = [Path(p) for p in args.runs]
    reports = []
    for run in runs:
        path = run / "report.json" if run.is_dir() else run
        try:
            reports.append(json.loads(path.read_text()))
        except OSError as err:
            raise PhysioSyncError(f"cannot read {path}: {err.strerror or err}; expected a run "
                                  "folder written by `physiosync cv`.") from None
        except ValueError as err:
            raise PhysioSyncError(f"{path} is not valid JSON ({err}); expected a run folder "
                                  "or the report.json that `physiosync cv` writes.") from None
        check_report(reports[-1], path)  # before anything is written
    try:
        report = reports[0] if len(reports) == 1 else merge_reports(
            reports, names=[r.name for r in runs])
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as err:
        raise PhysioSyncError(f"cannot merge {', '.join(map(str, runs))}: a report is "
                              f"damaged ({type(err).__name__}: {err}); give run folders "
                              "written by `physiosync cv`.") from None
    first = runs[0] if runs[0].is_dir() else runs[0].parent
    out = Path(args.out) if args.out else first
    own = report_owner(out) if len(runs) == 1 and out.resolve() == first.resolve() else None
    if own is not None:
        from .._utils.manifest import recording

        # re-rendering a run's report in its own run folder, whose report files it wrote
        with FolderLock(out), recording(out, own):
            paths = write_report(report, out)
    else:
        fingerprint = reports_fingerprint(reports, [r.name for r in runs])
        with RunFolder(out, "report", fingerprint, overwrite=args.overwrite,
                       description="report of " + ", ".join(str(r) for r in runs)) as folder:
            folder.claim(sources=[str(r.resolve()) for r in runs])
            paths = write_report(report, out)
    print(f"report: {paths['html']}")
    return 0

