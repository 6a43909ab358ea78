"""The ``physiosync`` command line. Each subcommand parses options and calls the library."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import sys
from pathlib import Path

from ._version import __version__
from ._logging import log_to_file, logger, progress_bars, use_log_level
from . import params
from .dataset_specs import synthetic_kinds, synthetic_writer
from ._signals import Terminated, as_terminated, exit_code, terminate_as_interrupt
from .exceptions import PhysioSyncError, TrainingDivergedError
from .runfolder import FolderLock, RunFolder


def _open_dataset(args):
    """The dataset of ``info`` and ``prepare`` (``dataset``, ``path``, ``--ratings-csv``)."""
    from .datasets import open_dataset

    return open_dataset(args.dataset, args.path, ratings_csv=args.ratings_csv)


def cmd_synth(args) -> int:
    writer = synthetic_writer(args.kind)
    kwargs = {k: v for k, v in (("n_subjects", args.subjects), ("n_trials", args.trials),
                                ("seconds", args.seconds), ("effect", args.effect),
                                ("seed", args.seed), ("synchrony", args.synchrony),
                                ("rating_bias", args.rating_bias), ("affect", args.affect),
                                ("affect_share", args.affect_share),
                                ("control", args.control)) if v is not None}
    out = writer(args.out, **kwargs)
    print(f"wrote synthetic {args.kind} data to {out}")
    return 0


def cmd_info(args) -> int:
    from .preprocessing.descriptives import subject_summary

    ds = _open_dataset(args)
    print(repr(ds))
    rec = ds.load_subject(ds.subjects[0])
    print(repr(rec))
    print(subject_summary(ds).round(2).to_string())
    return 0


def cmd_prepare(args) -> int:
    from .preprocessing.cache import prepare
    from .params import PrepareParams
    from .preprocessing.windows import make_windows

    ds = _open_dataset(args)
    modalities = (tuple(args.modalities.split(",")) if args.modalities
                  else params.default_modalities(args.dataset))
    prepare_params = PrepareParams(modalities=modalities, baseline=args.baseline,
                                   bdf_preprocessing=args.bdf_preprocessing)
    prepared = prepare(ds, params=prepare_params, cache_dir=args.cache_dir, verify=args.verify)
    windows = make_windows(prepared, lengths=(1.0, 5.0))
    for length in windows.lengths:
        print(f"{length:g} s windows: {len(windows.metadata(length))}")
    return 0


def cmd_configs(args) -> int:
    from ._utils import atomic_create
    from .config import PRESETS

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


#: Size of the demo's synthetic DEAP set (see ``docs/benchmarks.md`` for its run time).
DEMO_DATA = {"subjects": 6, "trials": 12, "seconds": 30.0, "effect": 3.0, "synchrony": 1.0,
             "affect": "static"}


def _load_run_config(args):
    """The validated configuration of a command: file/preset, then options, then --set."""
    from .config import load_config

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


def _start_lines(cfg, executor=None):
    """The ``on_start`` of :func:`~physiosync.experiment.run_experiment`: print the run's
    own start lines, then the busy-machine note (:func:`_note_if_busy`), once every check
    has passed (so that a refused command still prints one line)."""
    def on_start(lines) -> None:
        for line in lines:
            print(line)
        _note_if_busy(cfg, executor)
    return on_start


def _note_if_busy(cfg, executor=None) -> None:
    """When a training command starts, after its checks: one line on stderr when the
    machine's load would slow the default thread count, unless the threads were chosen
    (``--threads``, the ``threads`` config key)."""
    from .execution import ProcessExecutor, SerialExecutor, busy_note, default_threads

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


def _print_result(result: dict, *, significance: str | None = None) -> None:
    """The summary of a finished run (:func:`physiosync.reporting.report.report_text`) and its
    path; *significance*: the options that add units, for a line that says whether the
    results are significant (:func:`~physiosync.reporting.text.significance_sentence`)."""
    from .reporting.report import report_text
    from .reporting.text import significance_sentence

    print(report_text(result["report"]))
    print()
    if significance is not None:
        print(significance_sentence(result["report"], options=significance))
        print()
    print(f"report: {result['paths'].get('html', result['paths']['md'])}")


def cmd_cv(args) -> int:
    from .experiment import plan_experiment, run_experiment

    from .execution import check_max_retries

    if not args.dry_run and not args.out:
        raise PhysioSyncError("cv needs --out DIR (the run folder), or --dry-run.")
    check_max_retries(args.max_retries)  # before any data is read or Ray is started
    cfg = _load_run_config(args)
    from .execution import SerialExecutor, make_executor

    if args.dry_run:
        from .experiment import estimate_cost

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
            _print_cost(estimate_cost(cfg, plan, timed=not args.no_estimate), args)
        return 0
    out = Path(args.out)
    executor = make_executor(args.executor, n_jobs=args.n_jobs, threads=cfg.threads,
                             address=args.address, device=cfg.device,
                             max_retries=args.max_retries)
    result = run_experiment(cfg, out, resume=not args.no_resume, overwrite=args.overwrite,
                            executor=executor, on_start=_start_lines(cfg, executor),
                            on_cost=lambda c: _print_cost(c, args),
                            time_cost=not args.no_estimate)
    print(f"{cfg.protocol.name}, target {cfg.data.target}: {len(result['report']['folds'])} "
          f"folds in {result['seconds']:.0f} s")
    _print_result(result)
    return 0


def _print_cost(estimate, args) -> None:
    """Print a study's :class:`~physiosync.experiment.CostEstimate` before its training."""
    print(estimate.text())
    if getattr(args, "executor", "serial") != "serial":
        print(f"    (the units run on the {args.executor} executor: in parallel, the wall "
              "time is shorter, by up to the number of workers)")
    sys.stdout.flush()


def _folds_text(protocol) -> str:
    """How many folds *protocol* (a ``ProtocolConfig``) makes, in words for the user."""
    traits = params.PROTOCOL_TRAITS[protocol.name]
    if traits.uses_n_splits:
        return f"{protocol.n_splits} folds"
    # Leave-one-out protocols ignore n_splits: one fold per held-out subject or stimulus.
    groups = {"subject": "subject", "trial": "stimulus"}
    return "one fold per " + " and ".join(groups[g] for g in traits.held_out)


def cmd_demo(args) -> int:
    from .synthetic import make_deap
    from .experiment import run_experiment

    out = Path(args.out)
    data_dir = out / "data_preprocessed_python"
    print(f"physiosync {__version__} demo")
    print(f"1/3 writing a synthetic DEAP set ({args.subjects} subjects x {args.trials} videos x "
          f"{args.seconds:g} s, effect {args.effect:g}, synchrony {args.synchrony:g}, affect "
          f"{args.affect}) to {data_dir}")
    make_deap(data_dir, n_subjects=args.subjects, n_trials=args.trials, seconds=args.seconds,
              effect=args.effect, seed=args.seed, synchrony=args.synchrony, affect=args.affect,
              affect_share=args.affect_share, control=args.control)
    args.config = ["demo"] + (args.config or [])
    args.data_root = str(data_dir)
    args.dataset = "deap"
    args.cache_dir = str(out / "cache")
    cfg = _load_run_config(args)
    print(f"2/3 cross-validating {', '.join(p['name'] for p in cfg.pipelines)} "
          f"({cfg.protocol.name}, {_folds_text(cfg.protocol)}, target {cfg.data.target}): "
          "prepare, pre-train, fine-tune, predict")
    emb = sorted({cfg.pretrain_long.embedding, cfg.pretrain_short.embedding})
    print(f"    model: a small PhysioSync with the {' and '.join(emb)} embedding"
          + (" (per-channel log band energy; not the authors' multi-view embedding, which "
             "does not learn the effect at this size)" if emb == ["spectral"] else ""))
    result = run_experiment(cfg, out / "run", resume=not args.no_resume,
                            overwrite=args.overwrite, on_start=_start_lines(cfg),
                            on_cost=lambda c: _print_cost(c, args),
                            time_cost=not args.no_estimate)
    print(f"3/3 report written in {result['seconds']:.0f} s")
    print()
    _print_result(result, significance="--folds, --subjects")
    return 0


def cmd_report(args) -> int:
    from .evaluation.summary import merge_reports
    from .reporting.report import check_report, write_report

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
    own = _report_owner(out) if len(runs) == 1 and out.resolve() == first.resolve() else None
    if own is not None:
        from ._utils.manifest import recording

        # re-rendering a run's report in its own run folder, whose report files it wrote
        with FolderLock(out), recording(out, own):
            paths = write_report(report, out)
    else:
        from .runfolder import fingerprint_of

        digests = [hashlib.sha256(json.dumps(r, sort_keys=True).encode()).hexdigest()
                   for r in reports]
        fingerprint = fingerprint_of({"reports": digests, "names": [r.name for r in runs]})
        with RunFolder(out, "report", fingerprint, overwrite=args.overwrite,
                       description="report of " + ", ".join(str(r) for r in runs)) as folder:
            folder.claim(sources=[str(r.resolve()) for r in runs])
            paths = write_report(report, out)
    print(f"report: {paths['html']}")
    return 0


def _report_owner(folder):
    """The kind of run (``"cv"`` or ``"report"``) whose report files *folder* holds, or None.

    Only a folder whose marker records such a run, and whose list of written files names
    every report file present, is re-rendered in place; anything else goes through the
    run-folder rules (a user's own ``report.json`` is never replaced).
    """
    from .runfolder import MARKER, RUN_FILES
    from ._utils.manifest import read_manifest

    try:
        runs = json.loads((Path(folder) / MARKER).read_text(encoding="utf-8"))["runs"]
        listed = read_manifest(folder)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    kind = next((k for k in ("cv", "report") if isinstance(runs, dict) and k in runs), None)
    if kind is None:
        return None
    if listed is None:  # a run folder of an older physiosync, which kept no list
        return kind
    present = [n for n in RUN_FILES["report"] if (Path(folder) / n).exists()]
    return kind if all(listed.get(n) == kind for n in present) else None


def _parse_resume_with(items) -> dict:
    """``["lr=1e-4", "weight_decay=0"]`` (or comma-separated) -> ``{"lr": 1e-4, ...}``."""
    out = {}
    for item in items or ():
        for part in filter(None, (p.strip() for p in item.split(","))):
            key, sep, value = part.partition("=")
            try:
                if not sep:
                    raise ValueError
                out[key.strip()] = float(value)
            except ValueError:
                raise PhysioSyncError(f"--resume-with {part!r}: expected KEY=NUMBER, e.g. "
                                      "--resume-with lr=1e-4.") from None
    return out


def _run_folder(args, kind: str, cfg, description: str, **extra):
    """The checked, locked :class:`~physiosync.runfolder.RunFolder` of ``args.out``."""
    from .runfolder import run_fingerprint

    return RunFolder(Path(args.out), kind, run_fingerprint(cfg, **extra),
                     description=description, overwrite=args.overwrite)


def cmd_pretrain(args) -> int:
    resume_with = _parse_resume_with(args.resume_with)
    cfg = _load_run_config(args)
    from .execution import thread_limit
    from .training.distributed import init_from_environment

    objective = args.objective
    # the default objective leaves the fingerprint of earlier pre-training folders as it was
    extra = {} if objective == "ls-tcl" else {"objective": objective}
    what = f"{cfg.data.name} data, seed {cfg.seed}" + ("" if not extra else f", {objective}")
    ddp = init_from_environment(cfg.device)  # under torchrun: one rank of K
    try:
        if ddp is not None:  # refused on every rank before any work
            from ._utils.device import resolve_device
            from .training.pretrain import check_distributed_compile

            for pc in (cfg.pretrain_long, cfg.pretrain_short):
                ddp.check_batch(pc.batch_slots)
            check_distributed_compile(cfg.pretrain_compile, resolve_device(cfg.device))
        with thread_limit(cfg.threads):
            if ddp is not None and not ddp.is_main:  # rank 0 owns the folder, lock and logs
                return _pretrain(args, cfg, None, resume_with, ddp)
            with _run_folder(args, "pretrain", cfg, what, **extra) as folder:
                return _pretrain(args, cfg, folder, resume_with, ddp)
    finally:
        if ddp is not None:
            import torch.distributed as dist

            dist.destroy_process_group()


def _pretrain_cost(data, cfg, name: str, objective: str, args) -> str:
    """``"N steps, about T here (...)"``: the steps of a pre-training run and their time."""
    from .experiment.estimate import _duration
    from .training.pretrain import make_sampler, run_steps, time_pretrain

    sub, pc = (1, cfg.pretrain_long) if name == "long" else (cfg.data.n_sub, cfg.pretrain_short)
    n = run_steps(pc, make_sampler(data.slots.valid, pc, n_sub=sub, objective=objective))
    if args.no_estimate:
        return f"{n} steps"
    try:
        steps = time_pretrain(data.slots, pc, n_sub=sub, modalities=cfg.finetune.modalities,
                              device=cfg.device, objective=objective)["step"]
    except TrainingDivergedError:  # the run itself says so, with its checkpoint
        return f"{n} steps; not timed: the timed steps diverged"
    return (f"{n} steps, about {_duration(n * sorted(steps)[len(steps) // 2])} here with "
            f"{_torch_threads()}, from 1 warm-up + {len(steps)} timed steps")


def _torch_threads() -> str:
    """``"2 torch threads"``: the threads the steps are timed with."""
    import torch

    n = torch.get_num_threads()
    return f"{n} torch thread{'s' if n != 1 else ''}"


def _pretrain(args, cfg, folder, resume_with, ddp=None) -> int:
    import contextlib

    from .evaluation.fit import pretrain_physiosync
    from .experiment import load_experiment_data

    main_rank = ddp is None or ddp.is_main
    if main_rank:
        data = load_experiment_data(cfg)  # prepares the cache once, for every rank
        folder.claim(data_source=data.source)
        _note_if_busy(cfg)
    if ddp is not None:
        import torch.distributed as dist

        dist.barrier()  # the other ranks wait for the checked folder and the cache
    if not main_rank:
        data = load_experiment_data(cfg, verbose=False)
    out = Path(args.out)
    # its own log name: a pre-training and a fine-tuning may share one folder
    with (log_to_file(out / "pretrain.log") if main_rank else contextlib.nullcontext()):
        if ddp is not None and main_rank:
            print(f"data-parallel pre-training on {ddp.world_size} processes (global batch "
                  f"{cfg.pretrain_long.batch_slots} slots, rank 0 writes the checkpoints)")
        def start(name):  # each run announced on stdout as it starts, and summed up
            line = f"pre-training the {name} encoders -> {out / f'pretrain_{name}.pt'}"
            if main_rank and ddp is None:
                line += f" ({_pretrain_cost(data, cfg, name, args.objective, args)})"
            if main_rank:
                print(line)
                logger.info(line)

        def end(name, model, hist):
            if main_rank:
                print(f"  {len(hist)} steps, loss {hist[0]['loss']:.3f} -> "
                      f"{hist[-1]['loss']:.3f}")
                logger.info("%s encoders: %d steps, loss %.3f -> %.3f", name, len(hist),
                            hist[0]["loss"], hist[-1]["loss"])

        pretrain_physiosync(
            data.slots, cfg.pretrain_long, cfg.pretrain_short, n_sub=cfg.data.n_sub,
            on_start=start, on_end=end, modalities=cfg.finetune.modalities, device=cfg.device,
            checkpoint_dir=out, resume=not args.no_resume, resume_with=resume_with,
            objective=args.objective, compile=cfg.pretrain_compile,
            verbose=None if main_rank else False)
    return 0


def _file_digests(folder, names) -> dict:
    """SHA-256 of the files *names* that exist in *folder* (inputs of a run's fingerprint)."""
    out = {}
    for name in names:
        path = Path(folder) / name
        if path.is_file():
            out[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def cmd_finetune(args) -> int:
    cfg = _load_run_config(args)
    trials = sorted({t.strip() for t in (args.test_trials or "").split(",") if t.strip()})
    pretrained = (None if not args.pretrained else
                  {"folder": str(Path(args.pretrained).resolve()),
                   "files": _file_digests(args.pretrained,
                                          ("pretrain_long.pt", "pretrain_short.pt"))})
    what = (f"{cfg.data.name} data, seed {cfg.seed}, "
            + ("pre-trained" if args.pretrained else "from scratch")
            + (f", test trials {','.join(trials)}" if trials else ""))
    from .execution import thread_limit

    with _run_folder(args, "finetune", cfg, what, pretrained=pretrained,
                     test_trials=trials) as folder, thread_limit(cfg.threads):
        return _finetune(args, cfg, folder)


def _finetune_cost(data, cfg, train, val, test, pre: dict, args) -> str:
    """``"E epochs of S steps, about T here (...)"``: a fine-tuning and its time."""
    from .experiment.estimate import _duration
    from .training.finetune import steps_per_epoch, time_finetune

    ft = cfg.finetune
    per_epoch = steps_per_epoch(len(train), ft.batch_size)
    text = f"{ft.epochs} epochs of {per_epoch} steps"
    if args.no_estimate:
        return text
    try:
        t = time_finetune(data.slots, train, config=ft, pretrained=pre or None,
                          n_sub=cfg.data.n_sub, n_classes=data.n_classes,
                          long_config=cfg.pretrain_long, short_config=cfg.pretrain_short,
                          device=cfg.device, importance=False)
    except TrainingDivergedError:  # the run itself says so
        return f"{text}; not timed: the timed steps diverged"
    step = sorted(t["step"])[len(t["step"]) // 2]
    seconds = (ft.epochs * (min(per_epoch * t["batch"], len(train)) * step / t["batch"]
                            + len(val) * t["predict_window"]) + len(test) * t["predict_window"])
    return (f"{text}, about {_duration(seconds)} here with {_torch_threads()}, "
            f"from 1 warm-up + {len(t['step'])} timed steps")


def _finetune(args, cfg, folder) -> int:
    from .evaluation.fit import fit_physiosync, holdout_split, load_pretrained
    from .evaluation.metrics import classification_metrics
    from .experiment import load_experiment_data

    data = load_experiment_data(cfg)
    out = Path(args.out)
    encoders = dict(n_sub=cfg.data.n_sub, finetune_config=cfg.finetune,
                    long_config=cfg.pretrain_long, short_config=cfg.pretrain_short)
    pre = load_pretrained(args.pretrained, data.slots, **encoders) if args.pretrained else {}
    split = holdout_split(data.slots, data.units, data.labels,
                          test_trials=_trial_ids(args.test_trials),
                          val_size=cfg.protocol.val_size, seed=cfg.seed)
    train, val, test = split.train, split.val, split.test
    n_classes = max(int(data.labels.max()) + 1, 2)
    folder.claim(data_source=data.source)
    _note_if_busy(cfg)
    path = out / "finetune.pt"
    with log_to_file(out / "finetune.log"):
        logger.info("fine-tuning on %d trials -> %s", len(split.fit_units), path)
        print(f"fine-tuning on {len(split.fit_units)} trials -> {path} "
              f"({_finetune_cost(data, cfg, train, val, test, pre, args)})")
        fit = fit_physiosync(data.slots, train, val, test if split.test_trials else None,
                             n_classes=n_classes, pretrained=pre, device=cfg.device,
                             checkpoint=path, resume=not args.no_resume, **encoders)
        logger.info("fine-tuned %d epochs", len(fit.history))
    print(f"fine-tuned {len(fit.history)} epochs on {len(split.fit_units)} trials -> {path}")
    if split.test_trials:
        y = data.slots.labels[test[:, 0], test[:, 1]]
        m = classification_metrics(y, fit.proba.argmax(1), n_classes=n_classes)
        print(_held_out_line(split.test_trials, m, y,
                             data.slots.labels[train[:, 0], train[:, 1]], n_classes))
    return 0


def _trial_ids(text) -> list:
    """``"4, 5"`` -> ``[4, 5]``: the trial ids of ``--test-trials``."""
    pieces = [t.strip() for t in (text or "").split(",") if t.strip()]
    try:
        return [int(t) for t in pieces]
    except ValueError:
        raise PhysioSyncError(f"--test-trials {text!r}: expected comma-separated trial "
                              "numbers, e.g. --test-trials 4,5.") from None


def _held_out_line(trials, m: dict, y_test, y_train, n_classes: int) -> str:
    """The held-out scores of ``finetune --test-trials``, each with its chance level.

    A test set of one class gets a warning on stderr: its accuracy only says how often
    that class was predicted, and balanced accuracy is undefined (it is reported as such).
    """
    import numpy as np

    from .evaluation.metrics import chance_levels

    chance = chance_levels(y_test, y_train, n_classes=n_classes)
    present = np.unique(np.asarray(y_test))
    acc = f"accuracy {m['accuracy']:.3f} (chance {chance['accuracy']:.3f})"
    if len(present) < 2:
        # printed, not logged: the console shows no log records without -v
        print(f"physiosync: warning: the held-out trials {trials} hold one class only "
              f"(class {int(present[0]) if len(present) else '-'}, {len(y_test)} windows): "
              "accuracy is the share of windows predicted as that class and balanced "
              "accuracy is undefined; choose --test-trials that hold both classes for a "
              "meaningful score.", file=sys.stderr)
        bal = "balanced accuracy undefined (one class)"
    else:
        bal = (f"balanced accuracy {m['balanced_accuracy']:.3f} "
               f"(chance {chance['balanced_accuracy']:.3f})")
    return f"held-out trials {trials}: {acc}, {bal} ({len(y_test)} windows)"


def _add_no_estimate(p) -> None:
    p.add_argument("--no-estimate", action="store_true",
                   help="print what each pipeline will train, but do not time a few steps "
                        "of each model to estimate the run's time")


def _add_overwrite(p) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace a different physiosync run found in --out (only the files "
                        "physiosync wrote; a folder with other files is refused)")


def _roots_help() -> str:
    """What the data root of each declared dataset is, for a help text."""
    from .dataset_specs import DATASET_SPECS

    return "the data: " + "; ".join(f"{name}: {spec.root_description}"
                                     for name, spec in DATASET_SPECS.items())


def _add_run_options(p, *, protocol: bool = True) -> None:
    p.add_argument("--dataset", choices=params.DATASETS, help="dataset format (data.name)")
    p.add_argument("--data-root", help=f"{_roots_help()} (data.root)")
    _add_ratings_csv(p, key=" (data.ratings_csv)")
    p.add_argument("--target", choices=params.TARGETS,
                   help="rating to classify (data.target)")
    if protocol:
        p.add_argument("--protocol", choices=params.PROTOCOLS, help="protocol (protocol.name)")
        p.add_argument("--folds", type=int, help="folds of k-fold protocols (protocol.n_splits)")
        from .config import PIPELINES

        p.add_argument("--pipelines", help="comma-separated pipelines to compare, e.g. "
                       f"physiosync,no-cmca,bandpower; any of {', '.join(PIPELINES)}")
    p.add_argument("--config", action="append",
                   help="YAML file or preset name (`physiosync configs` lists them, e.g. "
                        "deap_within, tiny; ./tiny for a file of that name); repeat to layer "
                        "them, later ones override earlier ones")
    p.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="override a config key, e.g. --set pretrain.lr=1e-4 (repeatable)")
    p.add_argument("--seed", type=int, help="global seed")
    p.add_argument("--device", help="torch device (cpu, cuda, mps; default: best available)")
    p.add_argument("--cache-dir", help="cache of prepared arrays (data.cache_dir)")
    _add_threads(p)
    p.add_argument("--no-resume", action="store_true", help="recompute finished folds/steps")
    _add_overwrite(p)
    _add_quiet(p)


def _positive_int(text: str) -> int:
    """An argparse type: a positive integer."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text!r}")
    return value


def _add_threads(p) -> None:
    p.add_argument("--threads", type=_positive_int, metavar="T",
                   help="threads of each unit of work (config key threads; default: the "
                        "CPUs this process may use, from its affinity, cgroup quota, "
                        "SLURM_CPUS_PER_TASK and OMP_NUM_THREADS; cv divides them between "
                        "its --n-jobs workers). Where other processes keep cores busy, "
                        "--threads 1 keeps threads from waiting for each other "
                        "(docs/benchmarks.md). Results are the same byte for byte under "
                        "every executor for the same T")


def _add_ratings_csv(p, key: str = "") -> None:
    p.add_argument("--ratings-csv", metavar="FILE",
                   help="DEAP's participant_ratings.csv for the original .bdf recordings "
                        "(default: found beside them, or in metadata_csv/)" + key)


def _add_quiet(p) -> None:
    p.add_argument("-q", "--quiet", action="store_true",
                   help="no progress bars, as verbose=False in the library (by default "
                        "they are shown on a terminal); warnings are still shown")


def _add_affect(p, default) -> None:
    """The affect-model options of the synthetic data (``synth`` and ``demo``)."""
    p.add_argument("--affect", choices=params.SYNTHETIC_AFFECT, default=default,
                   help="affect model of the synthetic data: static per-trial gains (default) "
                        "or dynamics (each video's emotion is a trajectory the viewers feel "
                        "and the physiology follows)")
    p.add_argument("--affect-share", type=float,
                   help="with --affect dynamics: share of the stimulus-locked variance that "
                        "is affect-related, in [0, 1] (default 0.5)")
    p.add_argument("--control", choices=params.SYNTHETIC_CONTROLS, default=None if default is None
                   else "none", help="with --affect dynamics: a paired control (static-affect: "
                                     "constant emotion; shuffled: each subject's course from "
                                     "another video and time)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``physiosync`` command."""
    parser = argparse.ArgumentParser(
        prog="physiosync", description="Emotion recognition from EEG and peripheral physiology.")
    parser.add_argument("--version", action="version", version=f"physiosync {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log progress (INFO), as verbose='info' in the library")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("synth", help="write a format-faithful synthetic dataset")
    p.add_argument("kind", choices=list(synthetic_kinds()),
                   help="dataset and format to write (each dataset's synthetic writers)")
    p.add_argument("out", help="output folder (DREAMER: folder or .mat path)")
    p.add_argument("--subjects", type=int, help="number of subjects")
    p.add_argument("--trials", type=int, help="trials (videos/clips) per subject")
    p.add_argument("--seconds", type=float, help="stimulus length in seconds")
    p.add_argument("--effect", type=float, help="emotion effect strength (0 = none)")
    p.add_argument("--synchrony", type=float,
                   help="strength of each video's stimulus-locked time course, shared by its "
                        "viewers and by EEG and peripheral signals (default 1; 0 = none)")
    p.add_argument("--rating-bias", type=float,
                   help="SD of a per-subject rating offset, as a fraction of the rating range, "
                        "e.g. 0.25 (default 0 = none)")
    _add_affect(p, None)
    p.add_argument("--seed", type=int, help="random seed")
    p.set_defaults(func=cmd_synth)

    p = sub.add_parser("configs", help="list the shipped configurations (presets), or print "
                       "one to copy and edit")
    p.add_argument("name", nargs="?", help="a preset to print, e.g. deap_within")
    p.add_argument("--out", metavar="FILE",
                   help="write the preset to FILE instead (never replaces an existing file)")
    p.set_defaults(func=cmd_configs)

    p = sub.add_parser("info", help="summarise a copy of a dataset")
    p.add_argument("dataset", choices=params.DATASETS)
    p.add_argument("path", help=_roots_help())
    _add_ratings_csv(p)
    p.set_defaults(func=cmd_info)

    p = sub.add_parser("prepare", help="baseline-correct, normalise, window and cache")
    p.add_argument("dataset", choices=params.DATASETS)
    p.add_argument("path", help=_roots_help())
    p.add_argument("--modalities", help="comma-separated, e.g. eeg,gsr")
    p.add_argument("--baseline", default=params.PrepareParams.baseline,
                   choices=params.BASELINE_METHODS)
    p.add_argument("--bdf-preprocessing", default=params.PrepareParams.bdf_preprocessing,
                   choices=params.BDF_PREPROCESSING,
                   help="original DEAP .bdf recordings: 'release' (default) resamples to "
                        "128 Hz, band-passes EEG 4-45 Hz and average-references it, like "
                        "the .dat release; 'none' keeps 512 Hz as recorded")
    _add_ratings_csv(p)
    p.add_argument("--cache-dir", help="cache folder (default: ~/.cache/physiosync)")
    p.add_argument("--verify", action="store_true",
                   help="check the checksum of every cached array (reads each in full); "
                        "damaged entries are recomputed")
    p.set_defaults(func=cmd_prepare)

    p = sub.add_parser("pretrain", help="pre-train the long and short encoders (LS-TCL + CM-CA, "
                       "or the EEG-only SimCLR baseline)")
    _add_run_options(p, protocol=False)
    p.add_argument("--objective", choices=params.PRETRAIN_OBJECTIVES, default="ls-tcl",
                   help="'ls-tcl': inter-subject temporal contrast and CM-CA (PhysioSync); "
                        "'simclr': two augmented views of each EEG window (NT-Xent), EEG "
                        "alone (default: %(default)s)")
    p.add_argument("--out", required=True, help="folder for pretrain_long.pt / pretrain_short.pt")
    _add_no_estimate(p)
    p.add_argument("--resume-with", action="append", metavar="KEY=VALUE",
                   help="resume the checkpoints in --out with a changed optimiser setting, "
                        "e.g. --resume-with lr=1e-4 after a divergence (lr, weight_decay; "
                        "repeatable); recorded in the checkpoint's history")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("finetune", help="fine-tune the fusion model on labelled trials")
    _add_run_options(p, protocol=False)
    p.add_argument("--pretrained", help="folder of `physiosync pretrain` checkpoints "
                   "(default: from scratch)")
    p.add_argument("--test-trials", help="comma-separated trials to hold out and score")
    p.add_argument("--out", required=True, help="folder for finetune.pt")
    _add_no_estimate(p)
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("cv", help="cross-validate pipelines under a protocol and write a report")
    _add_run_options(p)
    p.add_argument("--out", help="run folder (resumable; required unless --dry-run)")
    p.add_argument("--dry-run", action="store_true",
                   help="prepare the data, make the folds, run every check and print the "
                        "plan, without training")
    _add_no_estimate(p)
    p.add_argument("--executor", choices=params.EXECUTORS, default="serial",
                   help="where the (pipeline, fold) units run: one after another here "
                        "(default), in local worker processes, or as Ray tasks; the "
                        "results are the same")
    p.add_argument("--n-jobs", type=int, metavar="K",
                   help="processes: K workers, each with cores // K torch threads (capped "
                        "at the cores); ray: cores // K CPUs per task")
    p.add_argument("--address", help="ray: address of a running cluster (default: start a "
                                     "local Ray instance)")
    p.add_argument("--max-retries", type=int, default=2, metavar="N",
                   help="ray: times a unit whose worker died is run again (default 2)")
    p.set_defaults(func=cmd_cv)

    p = sub.add_parser("report", help="re-render a run's report, or merge runs into one")
    p.add_argument("runs", nargs="+", help="run folder(s) or report.json file(s)")
    p.add_argument("--out", help="output folder (default: the first run)")
    _add_overwrite(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("demo", help="the whole pipeline on synthetic DEAP data (< 3 min)")
    p.add_argument("--out", default="physiosync_demo", help="output folder")
    p.add_argument("--subjects", type=int, default=DEMO_DATA["subjects"])
    p.add_argument("--trials", type=int, default=DEMO_DATA["trials"])
    p.add_argument("--seconds", type=float, default=DEMO_DATA["seconds"])
    p.add_argument("--effect", type=float, default=DEMO_DATA["effect"])
    p.add_argument("--synchrony", type=float, default=DEMO_DATA["synchrony"],
                   help="stimulus-locked synchrony of the synthetic data (0 = none)")
    _add_affect(p, DEMO_DATA["affect"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--config", action="append",
                   help="YAML file or preset layered over the demo preset (repeatable)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="override a config key")
    _add_threads(p)
    p.add_argument("--no-resume", action="store_true", help="recompute finished folds")
    _add_no_estimate(p)
    _add_overwrite(p)
    _add_quiet(p)
    p.set_defaults(func=cmd_demo)
    for p in sub.choices.values():  # -v is accepted after the subcommand too
        p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                       help="log progress (INFO), as verbose='info' in the library; on an "
                            "error, print the traceback")
    return parser


#: Exit codes of :func:`main`: bad input (argparse's own code), an interrupt (128 + SIGINT)
#: and a bug. SIGTERM and SIGHUP end with 128 + their number (143, 129).
EXIT_BAD_INPUT, EXIT_INTERRUPT, EXIT_BUG = 2, 130, 1
#: Exit code when the reader of stdout went away (128 + SIGPIPE, as a shell reports it).
EXIT_BROKEN_PIPE = 141


def _stdout_closed() -> bool:
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


def _interrupt_line(err: KeyboardInterrupt) -> str:
    # Ctrl-C says "interrupted"; SIGTERM and SIGHUP (Terminated) also name the signal
    what = "interrupted" + (f" by {err.name}" if isinstance(err, Terminated) else "")
    done, total = getattr(err, "units_done", None), getattr(err, "units_total", None)
    if done is None or total is None:
        return f"{what}; nothing half-written is kept, run the same command again to resume."
    unit = getattr(err, "unit_name", "(pipeline, fold) units")
    return (f"{what}: {done} of {total} {unit} done and saved in {err.out_dir}; run the "
            "same command again to resume.")


def _error_line(err: BaseException) -> tuple:
    """The one-line message and the exit code of an exception that ended a command."""
    if isinstance(err, KeyboardInterrupt):
        return _interrupt_line(err), exit_code(err)
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
            print(f"physiosync: error: {_interrupt_line(err)}", file=sys.stderr)
            return exit_code(err)


def _parse_and_run(argv) -> int:
    args = build_parser().parse_args(argv)
    verbose = bool(getattr(args, "verbose", False))
    quiet = getattr(args, "quiet", None)  # None: the command has no -q
    with _printable_paths():
        return _main(args, verbose, quiet)


@contextlib.contextmanager
def _printable_paths():
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


def _name_options(line: str, args) -> str:
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
        if isinstance(err, BrokenPipeError) and _stdout_closed():
            return EXIT_BROKEN_PIPE  # `physiosync configs | head`: the reader had enough
        err = as_terminated(err)  # a SIGTERM that a library re-raised as a plain Ctrl-C
        line, code = _error_line(err)
        if isinstance(err, PhysioSyncError):
            line = _name_options(line, args)
        if verbose:
            import traceback

            traceback.print_exception(type(err), err, err.__traceback__, file=sys.stderr)
        print(f"physiosync: error: {line}", file=sys.stderr)
        return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
