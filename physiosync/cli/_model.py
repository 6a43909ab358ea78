"""The model commands: ``pretrain`` (the encoders) and ``finetune`` (the fusion model).

Each opens its checked, locked run folder, then calls the library
(:func:`~physiosync.evaluation.fit.pretrain_physiosync`,
:func:`~physiosync.evaluation.fit.fit_physiosync`) and prints what it did.
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from .._logging import log_to_file, logger
from ..exceptions import PhysioSyncError
from ..runfolder import RunFolder
from ._common import load_run_config, note_if_busy


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
    from ..runfolder import run_fingerprint

    return RunFolder(Path(args.out), kind, run_fingerprint(cfg, **extra),
                     description=description, overwrite=args.overwrite)


def cmd_pretrain(args) -> int:
    resume_with = _parse_resume_with(args.resume_with)
    cfg = load_run_config(args)
    from ..execution import thread_limit
    from ..training.distributed import process_group

    objective = args.objective
    # the default objective leaves the fingerprint of earlier pre-training folders as it was
    extra = {} if objective == "ls-tcl" else {"objective": objective}
    what = f"{cfg.data.name} data, seed {cfg.seed}" + ("" if not extra else f", {objective}")
    with process_group(cfg.device) as ddp:  # under torchrun: one rank of K
        if ddp is not None:  # refused on every rank before any work
            ddp.check_pretraining((cfg.pretrain_long, cfg.pretrain_short),
                                  compile=cfg.pretrain_compile, device=cfg.device)
        with thread_limit(cfg.threads):
            if ddp is not None and not ddp.is_main:  # rank 0 owns the folder, lock and logs
                return _pretrain(args, cfg, None, resume_with, ddp)
            with _run_folder(args, "pretrain", cfg, what, **extra) as folder:
                return _pretrain(args, cfg, folder, resume_with, ddp)


def _pretrain(args, cfg, folder, resume_with, ddp=None) -> int:
    import contextlib

    from ..evaluation.fit import pretrain_physiosync
    from ..experiment import load_experiment_data
    from ..experiment.estimate import pretrain_run_cost
    from ..training.distributed import main_rank_first

    # rank 0 prepares the cache once, for every rank, and checks the folder first
    with main_rank_first(ddp) as main_rank:
        if main_rank:
            data = load_experiment_data(cfg)
            folder.claim(data_source=data.source)
            note_if_busy(cfg)
        else:
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
                cost = pretrain_run_cost(data, cfg, name, objective=args.objective,
                                         timed=not args.no_estimate)
                line += f" ({cost})"
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
    cfg = load_run_config(args)
    trials = sorted({t.strip() for t in (args.test_trials or "").split(",") if t.strip()})
    pretrained = (None if not args.pretrained else
                  {"folder": str(Path(args.pretrained).resolve()),
                   "files": _file_digests(args.pretrained,
                                          ("pretrain_long.pt", "pretrain_short.pt"))})
    what = (f"{cfg.data.name} data, seed {cfg.seed}, "
            + ("pre-trained" if args.pretrained else "from scratch")
            + (f", test trials {','.join(trials)}" if trials else ""))
    from ..execution import thread_limit

    with _run_folder(args, "finetune", cfg, what, pretrained=pretrained,
                     test_trials=trials) as folder, thread_limit(cfg.threads):
        return _finetune(args, cfg, folder)


def _finetune(args, cfg, folder) -> int:
    from ..evaluation.fit import (fit_physiosync, held_out_scores, holdout_split,
                                  load_pretrained)
    from ..experiment import load_experiment_data
    from ..experiment.estimate import finetune_run_cost

    data = load_experiment_data(cfg)
    out = Path(args.out)
    encoders = dict(n_sub=cfg.data.n_sub, finetune_config=cfg.finetune,
                    long_config=cfg.pretrain_long, short_config=cfg.pretrain_short)
    pre = load_pretrained(args.pretrained, data.slots, **encoders) if args.pretrained else {}
    split = holdout_split(data.slots, data.units, data.labels,
                          test_trials=_trial_ids(args.test_trials),
                          val_size=cfg.protocol.val_size, seed=cfg.seed)
    train, val, test = split.train, split.val, split.test
    n_classes = data.n_classes
    folder.claim(data_source=data.source)
    note_if_busy(cfg)
    path = out / "finetune.pt"
    with log_to_file(out / "finetune.log"):
        logger.info("fine-tuning on %d trials -> %s", len(split.fit_units), path)
        cost = finetune_run_cost(data, cfg, train, val, test, pretrained=pre,
                                 timed=not args.no_estimate)
        print(f"fine-tuning on {len(split.fit_units)} trials -> {path} ({cost})")
        fit = fit_physiosync(data.slots, train, val, test if split.test_trials else None,
                             n_classes=n_classes, pretrained=pre, device=cfg.device,
                             checkpoint=path, resume=not args.no_resume, **encoders)
        logger.info("fine-tuned %d epochs", len(fit.history))
    print(f"fine-tuned {len(fit.history)} epochs on {len(split.fit_units)} trials -> {path}")
    if split.test_trials:
        labels = data.slots.labels
        scores = held_out_scores(labels[test[:, 0], test[:, 1]], fit.proba.argmax(1),
                                 labels[train[:, 0], train[:, 1]], n_classes=n_classes)
        print(_held_out_line(split.test_trials, scores))
    return 0


def _trial_ids(text) -> list:
    """``"4, 5"`` -> ``[4, 5]``: the trial ids of ``--test-trials``."""
    pieces = [t.strip() for t in (text or "").split(",") if t.strip()]
    try:
        return [int(t) for t in pieces]
    except ValueError:
        raise PhysioSyncError(f"--test-trials {text!r}: expected comma-separated trial "
                              "numbers, e.g. --test-trials 4,5.") from None


def _held_out_line(trials, scores) -> str:
    """The held-out line of ``finetune --test-trials``: each score with its chance level.

    *scores* is a :class:`~physiosync.evaluation.fit.HeldOutScores`. A test set of one
    class gets a warning on stderr: its accuracy only says how often that class was
    predicted, and balanced accuracy is undefined (it is reported as such).
    """
    m, chance = scores.metrics, scores.chance
    acc = f"accuracy {m['accuracy']:.3f} (chance {chance['accuracy']:.3f})"
    if scores.one_class:
        present = scores.classes
        # printed, not logged: the console shows no log records without -v
        print(f"physiosync: warning: the held-out trials {trials} hold one class only "
              f"(class {int(present[0]) if len(present) else '-'}, {scores.n_windows} "
              "windows): accuracy is the share of windows predicted as that class and "
              "balanced accuracy is undefined; choose --test-trials that hold both classes "
              "for a meaningful score.", file=sys.stderr)
        bal = "balanced accuracy undefined (one class)"
    else:
        bal = (f"balanced accuracy {m['balanced_accuracy']:.3f} "
               f"(chance {chance['balanced_accuracy']:.3f})")
    return f"held-out trials {trials}: {acc}, {bal} ({scores.n_windows} windows)"
