"""Benchmarks of physiosync. Each prints one JSON line.

    python benchmarks/run.py prepare [--dataset deap] [--root DIR] [--scratch DIR]
                                     [--subjects N --trials N --seconds S]
    python benchmarks/run.py pretrain --window {1,5} [--batch-slots 8 --group-size 2]
    python benchmarks/run.py finetune --batch 256
    python benchmarks/run.py demo
    python benchmarks/run.py de [--root DIR] [--subjects N] [--scratch DIR] [--method welch]
    python benchmarks/run.py deep --model {eegnet,shallow,deep4} [--subjects 32 --batch 64]
    python benchmarks/run.py study [--config demo --subjects 6 --executor processes --n-jobs 2]

``prepare`` opens, baseline-corrects (where the dataset's trials hold a baseline,
``DatasetSpec.has_baseline``), normalises and windows (1 s and 5 s where the trials are
that long; the dataset's default modalities: EEG and GSR for DEAP) one dataset
(``--dataset``, default ``deap``), cold: a fresh cache folder every time, in a fresh
process, so ``peak_rss_mb`` is the peak of the measured work alone. Without ``--root`` it
first writes the dataset's full-size synthetic copy (``benchmarks/_full_size.py``: for
DEAP 32 subjects x 40 trials x 63 s, ~3.3 GB of Python-2 pickles) into ``--scratch``,
once (kept there for the next run); that step is not timed. ``--subjects``, ``--trials``
and ``--seconds`` shrink the copy for a quick check.

Besides the seconds and the peak RSS it reports the budget they are held to: DEAP's
(at most 15 s and 500 MB for full-size DEAP's 32 subjects, issue 2) scaled by the size
of the data, and ``within_budget``. ``size`` counts the values (channels x samples,
baselines included) stored in the files the reader reads, from the writer's arguments
(with ``--root``: the full-size copy's, taken as the release's size):

* the time budget is ``15 s x values / values of full-size DEAP`` (412,876,800 = 32
  subjects x 40 trials x 40 channels x 8,064 samples): reading, baseline removal,
  normalisation and windowing each touch every value a bounded number of times, so the
  work grows with the number of values, whatever their width on disk (MAHNOB-HCI's
  24-bit BDF, the float64 MAT files);
* the memory budget is ``500 MB x unit values / 12,902,400`` (one DEAP subject): the
  preparation holds one subject at a time (each prepared subject is written to the cache
  and served as a memory map, :func:`physiosync.preprocessing.cache.prepare`), so its
  peak follows what the reader holds of one subject: the largest subject's values, or for
  DREAMER the whole file's, since its reader loads ``DREAMER.mat`` at once. The scaling is
  proportional: it also scales the fixed part of DEAP's peak (the interpreter and the
  imports), so above DEAP's size the budget is looser than the data alone would need, and
  below it (a shrunk copy) tighter.

``de`` computes the differential entropy (5 bands) of every 5 s EEG window of a DEAP
folder, each time in a fresh process: ``cold`` prepares into an empty cache first,
``warm`` reads the cache the cold run wrote (the usual case: ``physiosync prepare``
once, then many runs). Each reports the seconds of preparing/loading and of the
features (wall and CPU), and the process's peak RSS.

``deep`` trains one braindecode baseline (``physiosync[deep]``) for one epoch on one
cross-subject fold of full-size DEAP-shaped 5 s EEG windows made in memory (32
subjects x 40 trials x 12 windows, 32 channels at 128 Hz; 10 % of the subjects
validate, as a ``subject-kfold`` fold's pooled model), and reports the epoch's seconds
(training and the validation pass), the FLOPs of one window's forward and backward
pass, and the peak RSS.

``study`` writes a synthetic DEAP set (untimed; kept with ``--scratch``) and runs a
whole ``physiosync cv`` study on it in a fresh process, with any executor, and reports
its wall time, the CPU time and peak RSS of the run process (with ``--executor
processes`` its workers, forked from a fork server, are not counted) and the headlines.
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# benchmarks/_full_size.py, beside this script; imported where needed, not by the
# workers (it imports the synthetic writers)
sys.path.insert(0, str(Path(__file__).resolve().parent))

#: DEAP's preparation budget at full size (issue 2), scaled for the other datasets.
DEAP_BUDGET_S, DEAP_BUDGET_MB = 15.0, 500.0


def _prepare_worker(name: str, root: str, cache_dir: str) -> dict:
    import numpy as np

    from physiosync.dataset_specs import DATASET_SPECS
    from physiosync.datasets import open_dataset
    from physiosync.preprocessing.cache import prepare
    from physiosync.params import PrepareParams
    from physiosync.preprocessing.windows import make_windows

    spec = DATASET_SPECS[name]
    params = PrepareParams(modalities=spec.default_modalities,
                           **({} if spec.has_baseline else {"baseline": "none"}))
    anon = _AnonPeak().start()
    t0 = time.perf_counter()
    ds = open_dataset(name, root)
    prepared = prepare(ds, params=params, cache_dir=cache_dir)
    shortest = min(p.seconds for p in prepared.values())
    windows = make_windows(prepared, lengths=[w for w in (1.0, 5.0) if w <= shortest])
    counts = {}
    for length in windows.lengths:
        for m in spec.default_modalities:
            views = [windows.windows(s, m, length) for s in windows.subjects]
            counts[f"{m}_{length:g}s"] = [int(sum(v.shape[0] * v.shape[1] for v in views))]
            counts[f"{m}_{length:g}s"].append(list(views[0].shape[2:]))
    seconds = time.perf_counter() - t0
    source_bytes = sum(p.stat().st_size for p in ds.source_files())
    cache_bytes = sum(p.stat().st_size for p in Path(cache_dir).rglob("*.npy"))
    return {
        "benchmark": "prepare", "seconds": round(seconds, 2), "peak_rss_mb": _own_peak_rss_mb(),
        "peak_anon_mb": anon.stop(),
        "subjects": len(ds.subjects), "source_gb": round(source_bytes / 1e9, 2),
        "cache_gb": round(cache_bytes / 1e9, 2), "windows": counts,
        "numpy": np.__version__, "dataset": name,
        "trials": int(sum(len(p.ratings) for p in prepared.values())),
    }


def _baselines(root: str) -> dict:
    """Reference points on the same files: raw bytes, and a bare latin1 pickle.load."""
    import pickle

    files = sorted(Path(root).glob("s[0-9][0-9].dat"))
    t = time.perf_counter()
    for f in files:
        f.read_bytes()
    raw = time.perf_counter() - t
    t = time.perf_counter()
    for f in files:
        with open(f, "rb") as fh:
            pickle.load(fh, encoding="latin1")  # trusted: our own synthetic files
    return {"raw_read_s": round(raw, 2), "latin1_pickle_load_s": round(time.perf_counter() - t, 2)}


def _de_worker(root: str, cache_dir: str, method: str) -> dict:
    import numpy as np

    from physiosync.datasets import DEAP
    from physiosync.params import PrepareParams
    from physiosync.preprocessing.cache import prepare
    from physiosync.preprocessing.features import differential_entropy
    from physiosync.preprocessing.windows import make_windows

    ds = DEAP(root)
    load = de_wall = de_cpu = 0.0
    n_windows, shape = 0, None
    t0 = time.perf_counter()
    for subject in ds.subjects:
        # One subject at a time: its memory-mapped cache is released before the next,
        # so the peak RSS is that of one subject, whatever the number of subjects.
        t = time.perf_counter()
        prepared = prepare(ds, [subject], params=PrepareParams(modalities=("eeg",)),
                           cache_dir=cache_dir, verbose=False)
        windows = make_windows(prepared, lengths=(5.0,))
        view = windows.windows(subject, "eeg", 5.0)  # (trials, windows, channels, times)
        t1, c1 = time.perf_counter(), time.process_time()
        de = differential_entropy(view, windows.sfreq["eeg"], method=method)
        de_wall += time.perf_counter() - t1
        de_cpu += time.process_time() - c1
        load += t1 - t
        n_windows += view.shape[0] * view.shape[1]
        shape = list(view.shape[2:])
        assert np.isfinite(de).all()
        del prepared, windows, view, de
    return {"load_s": round(load, 2), "de_s": round(de_wall, 2), "de_cpu_s": round(de_cpu, 2),
            "total_s": round(time.perf_counter() - t0, 2),
            "peak_rss_mb": _own_peak_rss_mb(),
            "windows": n_windows, "window_shape": shape}


class _AnonPeak:
    """The peak of this process's anonymous memory (``RssAnon``: its own arrays and
    objects), sampled every 10 ms by a thread.

    ``VmHWM`` also counts the file pages the process maps: the prepared cache is read
    through memory maps, and the cache check reads every page once, so after preparing a
    dataset its whole cache sits in the RSS as page cache, which the kernel can reclaim
    at any time. The anonymous peak is the memory the process itself needs; a spike
    shorter than the sampling interval can be missed.
    """

    def __init__(self, interval: float = 0.01):
        import threading

        self.interval, self.peak_kb = interval, 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _anon_kb() -> int:
        try:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("RssAnon:"):
                        return int(line.split()[1])
        except OSError:  # not Linux
            pass
        return 0

    def _run(self) -> None:
        while not self._done.is_set():
            self.peak_kb = max(self.peak_kb, self._anon_kb())
            self._done.wait(self.interval)

    def start(self) -> "_AnonPeak":
        self._thread.start()
        return self

    def stop(self) -> float | None:
        """Stop sampling; the peak in MB (None where Linux's RssAnon is not available)."""
        self._done.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, self._anon_kb())
        return round(self.peak_kb / 1024, 1) if self.peak_kb else None


def _own_peak_rss_mb() -> float:
    """Peak RSS (MB) of this process's own program: ``VmHWM`` where Linux gives it.

    A worker started by ``subprocess`` inherits in ``ru_maxrss`` the RSS its parent had
    when it started it (Linux keeps the larger across ``exec``: a parent holding 300 MB
    gives a child of 9 MB a ``ru_maxrss`` of 311 MB), so a worker started after the
    parent wrote synthetic data would report the parent's memory; ``VmHWM`` is the high
    mark of the worker's own memory map.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:  # not Linux
        pass
    return _peak_rss_mb()


def _synthetic_root(entry, scratch: Path) -> Path:
    """The synthetic copy *entry* (:mod:`_full_size`) in *scratch*, written once."""
    from physiosync.exceptions import PhysioSyncError

    t = time.perf_counter()
    try:
        root = entry.write(scratch / entry.folder)
    except PhysioSyncError as err:
        raise SystemExit(f"{entry.dataset}: {err}") from None
    if time.perf_counter() - t > 1:
        print(f"# wrote synthetic {entry.spec.display_name} in {time.perf_counter() - t:.0f} s "
              "(untimed)", file=sys.stderr)
    return root


def bench_de(args) -> dict:
    from _full_size import FULL_SIZE

    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="physiosync-bench-"))
    root = args.root or _synthetic_root(FULL_SIZE["deap"].shrunk(subjects=args.subjects),
                                        scratch)
    cache_dir = Path(tempfile.mkdtemp(prefix="cache-", dir=scratch))
    try:
        result = {"benchmark": "de", "method": args.method}
        for state in ("cold", "warm"):  # warm: the cache the cold run wrote
            out = subprocess.run(
                [sys.executable, __file__, "_de_worker", str(root), str(cache_dir),
                 args.method], check=True, capture_output=True, text=True)
            result[state] = json.loads(out.stdout.strip().splitlines()[-1])
        result["subjects"] = len(list(Path(root).glob("s[0-9][0-9].dat")))
        return result
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
        if args.scratch is None and not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


def prepare_budget(size, seconds: float, peak_rss_mb: float) -> dict:
    """DEAP's preparation budget scaled to data of *size* (a :class:`_full_size.Size`),
    and whether *seconds* and *peak_rss_mb* keep to it (see the module docstring).
    :func:`bench_prepare` passes the anonymous peak (:class:`_AnonPeak`) as
    *peak_rss_mb* where Linux gives it: the process's own memory, without the pages of the
    memory-mapped cache, which are page cache."""
    from _full_size import FULL_SIZE

    deap = FULL_SIZE["deap"].size()
    time_scale = size.values / deap.values
    memory_scale = size.unit_values / deap.unit_values
    budget = {"seconds": round(DEAP_BUDGET_S * time_scale, 2),
              "peak_rss_mb": round(DEAP_BUDGET_MB * memory_scale, 1),
              "time_scale": round(time_scale, 4), "memory_scale": round(memory_scale, 4)}
    return {"budget": budget, "within_budget": bool(seconds <= budget["seconds"]
                                                    and peak_rss_mb <= budget["peak_rss_mb"])}


def bench_prepare(args) -> dict:
    from _full_size import FULL_SIZE

    entry = FULL_SIZE[args.dataset]
    if not args.root:
        try:
            entry = entry.shrunk(args.subjects, args.trials, args.seconds)
        except ValueError as err:
            raise SystemExit(f"prepare: {err}") from None
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="physiosync-bench-"))
    cache_dir = None
    try:
        root = args.root or _synthetic_root(entry, scratch)
        cache_dir = Path(tempfile.mkdtemp(prefix="cache-", dir=scratch))
        out = subprocess.run(
            [sys.executable, __file__, "_prepare_worker", args.dataset, str(root),
             str(cache_dir)], capture_output=True, text=True)
        if out.returncode:
            raise SystemExit(f"prepare {args.dataset} failed:\n{out.stderr[-4000:]}")
        result = json.loads(out.stdout.strip().splitlines()[-1])
        size = entry.size()
        result["size"] = {**size.as_dict(), "of": "the full-size synthetic copy (--root)"
                          if args.root else "the synthetic copy prepared"}
        memory = result.get("peak_anon_mb") or result["peak_rss_mb"]
        result.update(prepare_budget(size, result["seconds"], memory))
        result["budget"]["memory_judged_on"] = ("peak_anon_mb" if result.get("peak_anon_mb")
                                                else "peak_rss_mb")
        if args.compare:
            result.update(_baselines(str(root)))
        return result
    finally:
        if cache_dir is not None:
            shutil.rmtree(cache_dir, ignore_errors=True)
        if args.scratch is None and not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


def _deap_slots(window: int, n_subjects: int = 32, n_trials: int = 40, seed: int = 0):
    """Random windows with DEAP shapes (EEG 32 ch, GSR 1 ch, 128 Hz, 60 s per trial)."""
    import numpy as np
    import torch

    from physiosync.training.sampling import SlotData

    n_win, n_t = 60 // window, 128 * window
    g = torch.Generator().manual_seed(seed)
    x = {"eeg": torch.randn((n_subjects, n_trials, n_win, 32, n_t), generator=g),
         "gsr": torch.randn((n_subjects, n_trials, n_win, 1, n_t), generator=g)}
    valid = np.ones((n_subjects, n_trials, n_win), dtype=bool)
    labels = np.random.default_rng(seed).integers(0, 2, (n_subjects, n_trials))
    return SlotData(x, valid, range(1, n_subjects + 1), range(n_trials), labels)


def _flops(fn) -> float:
    """FLOPs of one call of *fn* (forward and backward), counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return float(counter.get_total_flops())


def _peak_rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def _device_memory(device) -> dict:
    """Peak accelerator memory of the run, when it ran on CUDA."""
    import torch

    if str(device).startswith("cuda") and torch.cuda.is_available():
        return {"peak_gpu_mb": round(torch.cuda.max_memory_allocated() / 2**20, 1),
                "gpu": torch.cuda.get_device_name(0)}
    return {}


def bench_pretrain(args) -> dict:
    import numpy as np
    import torch

    from dataclasses import replace

    from physiosync.params import PretrainConfig

    from physiosync.training.pretrain import pretrain

    torch.set_num_threads(args.threads)
    data = _deap_slots(args.window)
    cfg = PretrainConfig(batch_slots=args.batch_slots, group_size=args.group_size,
                         steps=args.steps + args.warmup, embedding=args.embedding,
                         amp=_amp(args))

    cuda = str(args.device).startswith("cuda")
    warmup, steps = args.warmup, args.steps
    if cuda:
        # The host queues steps ahead of the GPU and reads the loss every SYNC_EVERY
        # steps, charging the wait to the last step read. With the warm-up and the
        # measured steps whole multiples of it, the measured steps' seconds add up to
        # their wall time, queue included.
        from physiosync.training.engine import SYNC_EVERY as every

        warmup = max(every, -(-warmup // every) * every)
        steps = -(-steps // every) * every
    cfg = replace(cfg, steps=warmup + steps)
    if args.batch_folds > 1:  # K folds, each its own model, one batched step for all
        from physiosync.training.fold_batch import pretrain_folds

        runs = pretrain_folds(data, cfg, allowed=[data.valid] * args.batch_folds,
                              device=args.device, compile=args.compile, verbose=False)
    else:
        runs = [pretrain(data, cfg, device=args.device, compile=args.compile, verbose=False)]
    model = runs[0][0]
    # seconds of each measured step, all folds together (each fold's history holds its share)
    times = np.sum([[h["seconds"] for h in hist[warmup:]] for _, hist in runs], axis=0)
    if cuda:  # per-step values say when a step was queued; their sum is the wall time
        times = np.array([times.sum() / steps])
    n_params = sum(p.numel() for p in model.parameters())
    # FLOPs of one training step's forward+backward (same batch size, no optimiser).
    rows = 2 * args.batch_slots * args.group_size
    model.train()
    dev = next(model.parameters()).device
    x = {m: torch.randn(rows, data.n_chans(m), data.n_times(m), device=dev)
         for m in data.modalities}

    def step():
        from physiosync.training.engine import pretrain_loss as _loss

        feats = {m: model.encoders[m](x[m]) for m in x}
        zs = {m: model.projectors[m](feats[m]) for m in x}
        b = rows // 2
        total, _ = _loss(model, {m: f[:b * 2:2] for m, f in feats.items()},
                         {m: z[:b * 2:2] for m, z in zs.items()}, cfg)
        total.backward()

    flops = _flops(step) * args.batch_folds
    median = float(np.median(times))
    return {"benchmark": "pretrain", "window_s": args.window, "embedding": args.embedding,
            "amp": args.amp, "compile": args.compile, "batch_folds": args.batch_folds,
            "batch_slots": args.batch_slots, "group_size": args.group_size,
            "steps": steps, "median_step_s": round(median, 4),
            "steps_per_second": round(1 / median, 3),
            # one fold's step: what K folds run one by one would each take
            "fold_steps_per_second": round(args.batch_folds / median, 3),
            "params_m": round(n_params / 1e6, 1),
            "gflop_per_step": round(flops / 1e9, 2),
            "gflop_per_s": round(flops / 1e9 / median, 1),
            "threads": torch.get_num_threads(), "peak_rss_mb": _peak_rss_mb(),
            **_device_memory(args.device)}


def bench_finetune(args) -> dict:
    import numpy as np
    import torch

    from physiosync.params import FinetuneConfig

    from physiosync.training.finetune import finetune
    from physiosync.params import PretrainConfig

    torch.set_num_threads(args.threads)
    data = _deap_slots(5)
    s, t, w = np.nonzero(data.valid)
    cells = np.column_stack([s, t, w])
    rng = np.random.default_rng(0)
    n = args.batch * (args.steps + 1)
    cells = cells[rng.choice(len(cells), size=n, replace=False)]
    cfg = FinetuneConfig(epochs=1, batch_size=args.batch, scheduler="none", amp=_amp(args))
    t0 = time.perf_counter()
    encoders = PretrainConfig(embedding=args.embedding)
    model, history = finetune(data, cells, config=cfg, n_sub=5, device=args.device,
                              long_config=encoders, short_config=encoders, verbose=False)
    total = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    model.train()
    dev = next(model.parameters()).device
    xb = {m: torch.randn(args.batch, data.n_chans(m), data.n_times(m), device=dev)
          for m in data.modalities}
    flops = _flops(lambda: model(xb).sum().backward())
    # The first step warms up; report the mean of the rest from the epoch's wall time.
    per_step = history[0]["seconds"] / history[0]["steps"]
    return {"benchmark": "finetune", "batch": args.batch, "amp": args.amp,
            "steps": history[0]["steps"],
            "mean_step_s": round(per_step, 3), "steps_per_second": round(1 / per_step, 3),
            "params_m": round(n_params / 1e6, 1), "gflop_per_step": round(flops / 1e9, 1),
            "gflop_per_s": round(flops / 1e9 / per_step, 1), "wall_s": round(total, 1),
            "threads": torch.get_num_threads(), "peak_rss_mb": _peak_rss_mb(),
            **_device_memory(args.device)}


def bench_demo(args) -> dict:
    """Wall time of ``physiosync demo`` end to end, in a fresh process, fresh folder."""
    exe = Path(sys.executable).parent / "physiosync"
    cmd = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else
                                                            ["-m", "physiosync.cli"])]
    with tempfile.TemporaryDirectory(dir=args.scratch) as tmp:
        out = Path(tmp) / "demo"
        t0 = time.perf_counter()
        proc = subprocess.run([*cmd, "demo", "--out", str(out), "-q"], capture_output=True,
                              text=True)
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(f"demo failed:\n{proc.stderr}")
        report = json.loads((out / "run" / "report.json").read_text())
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    summary = {name: round(part["summary"]["window.balanced_accuracy"]["mean"], 3)
               for name, part in report["pipelines"].items()}
    headline = {name: round(part["headline"]["mean"], 3)
                for name, part in report["pipelines"].items() if part.get("headline")}
    return {"benchmark": "demo", "wall_s": round(wall, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_mb": round(usage.ru_maxrss / 1024, 1),
            "subject_balanced_accuracy": headline,
            "window_balanced_accuracy": summary, "protocol": report["protocol"],
            "folds": len(report["folds"])}


def bench_deep(args) -> dict:
    import numpy as np
    import torch

    from physiosync.evaluation.deep import NETWORKS, BraindecodeClassifier, build_network

    if args.subjects < 2:
        raise SystemExit("deep: --subjects must be 2 or more (one fold trains on some "
                         "subjects and validates on others).")
    torch.set_num_threads(args.threads)
    n_win, n_t = 12, 128 * 5
    n_val = max(args.subjects // 10, 1)
    g = torch.Generator().manual_seed(0)
    # (subjects, trials, windows) flattened; float32 as the fold loop gives them
    x = torch.randn((args.subjects * 40 * n_win, 32, n_t), generator=g).numpy()
    y = np.repeat(np.random.default_rng(0).integers(0, 2, args.subjects * 40), n_win)
    split = (args.subjects - n_val) * 40 * n_win
    clf = BraindecodeClassifier(args.model, sfreq=128.0, n_epochs=1, batch_size=args.batch,
                                device=args.device, verbose=False)
    t0 = time.perf_counter()
    clf.fit(x[:split], y[:split], X_val=x[split:], y_val=y[split:])
    epoch_s = time.perf_counter() - t0
    net = build_network(args.model, 32, n_t, 2).to(next(clf.network_.parameters()).device)
    net.train()
    xb = torch.randn(2, 32, n_t, device=next(net.parameters()).device)
    flops = _flops(lambda: net(xb).sum().backward()) / 2
    return {"benchmark": "deep", "model": NETWORKS[args.model], "subjects": args.subjects,
            "train_windows": split, "val_windows": len(x) - split, "batch": args.batch,
            "epoch_s": round(epoch_s, 2),
            "train_windows_per_s": round(split / epoch_s, 1),
            "params_k": round(sum(p.numel() for p in net.parameters()) / 1e3, 1),
            "mflop_per_window": round(flops / 1e6, 1),
            "threads": torch.get_num_threads(), "peak_rss_mb": _peak_rss_mb(),
            **_device_memory(args.device)}


def bench_study(args) -> dict:
    """Wall time and peak memory of a whole study (``physiosync cv``) in a fresh process."""
    from physiosync.synthetic import make_deap

    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="physiosync-study-"))
    root = scratch / f"deap_{args.subjects}x{args.trials}x{args.seconds:g}"
    if not (root / f"s{args.subjects:02d}.dat").exists():
        t = time.perf_counter()
        make_deap(root, n_subjects=args.subjects, n_trials=args.trials, seconds=args.seconds,
                  effect=args.effect, seed=0, verbose=False)
        print(f"# wrote synthetic DEAP in {time.perf_counter() - t:.0f} s (untimed)",
              file=sys.stderr)
    exe = Path(sys.executable).parent / "physiosync"
    cmd = [str(exe) if exe.exists() else sys.executable,
           *([] if exe.exists() else ["-m", "physiosync.cli"])]
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=scratch)) / "run"
    cache = scratch / "cache"
    if args.cold:
        shutil.rmtree(cache, ignore_errors=True)
    try:
        sets = [x for item in (args.set or []) for x in ("--set", item)]
        t0 = time.perf_counter()
        proc = subprocess.run([*cmd, "cv", "--config", args.config, "--dataset", "deap",
                               "--data-root", str(root), "--cache-dir", str(cache),
                               "--out", str(run_dir), "-q", "--executor", args.executor,
                               *(["--n-jobs", str(args.n_jobs)] if args.n_jobs else []),
                               *sets], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode:
            raise SystemExit(f"study failed:\n{proc.stderr[-4000:]}")
        report = json.loads((run_dir / "report.json").read_text())
    finally:
        if args.scratch is None and not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
        else:
            shutil.rmtree(run_dir.parent, ignore_errors=True)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"benchmark": "study", "config": args.config, "subjects": args.subjects,
            "trials": args.trials, "seconds": args.seconds, "executor": args.executor,
            "n_jobs": args.n_jobs, "protocol": report["protocol"],
            "folds": len(report["folds"]), "pipelines": list(report["pipelines"]),
            "wall_s": round(wall, 1),
            # of the run process and the children it waited for: the workers of the
            # processes executor come from a fork server, so they are not counted
            "cpu_s_run_process": round(usage.ru_utime + usage.ru_stime, 1),
            "peak_rss_mb_run_process": round(usage.ru_maxrss / 1024, 1),
            "headline": {name: round(part["headline"]["mean"], 3)
                         for name, part in report["pipelines"].items()
                         if part.get("headline")}}


def _add_model_options(p) -> None:
    """Options shared by the pre-training and fine-tuning benchmarks."""
    from physiosync.models.encoders import EMBEDDINGS

    p.add_argument("--embedding", default="multiview", choices=EMBEDDINGS)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--amp", choices=["off", "bf16", "fp16"], default="off",
                   help="autocast: off (float32), bf16 (any device), fp16 (CUDA)")


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def _amp(args):
    return {"off": False, "bf16": "bf16", "fp16": True}[args.amp]


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_prepare_worker":
        print(json.dumps(_prepare_worker(argv[1], argv[2], argv[3])))
        return
    if argv and argv[0] == "_de_worker":
        print(json.dumps(_de_worker(argv[1], argv[2], argv[3])))
        return
    from _full_size import FULL_SIZE

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="benchmark", required=True)
    p = sub.add_parser("prepare", help="cold prepare of a dataset (default DEAP), against "
                                       "DEAP's budget scaled by the data's size")
    p.add_argument("--dataset", choices=list(FULL_SIZE), default="deap",
                   help="dataset (default deap)")
    p.add_argument("--root", help="the dataset's data root; default: write a full-size "
                                  "synthetic copy")
    p.add_argument("--subjects", type=positive_int,
                   help="shrink the synthetic copy to its first N subjects (quick check)")
    p.add_argument("--trials", type=positive_int,
                   help="shrink the synthetic copy to N clips per session (quick check)")
    p.add_argument("--seconds", type=positive_float,
                   help="typical clip length of the synthetic copy, seconds (quick check; "
                        "longer clips scale alike, baselines and rests are kept)")
    p.add_argument("--scratch", help="scratch folder to keep the synthetic data between runs")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.add_argument("--compare", action="store_true",
                   help="DEAP: also time a raw read and a bare latin1 pickle.load of the "
                        "same files")

    p = sub.add_parser("pretrain", help="pre-training steps on DEAP shapes")
    p.add_argument("--window", type=int, choices=[1, 5], default=1)
    p.add_argument("--batch-slots", type=int, default=8)
    p.add_argument("--group-size", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--batch-folds", type=int, default=1,
                   help="K folds' models trained in one batched step (pretrain.batch_folds)")
    p.add_argument("--compile", default=None,
                   choices=["default", "reduce-overhead", "max-autotune"],
                   help="torch.compile mode of the step (pretrain.compile)")
    _add_model_options(p)

    p = sub.add_parser("finetune", help="fine-tuning steps on DEAP shapes")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--steps", type=int, default=5)
    _add_model_options(p)

    p = sub.add_parser("demo", help="`physiosync demo` end to end (target: < 3 min on 2 cores)")
    p.add_argument("--scratch", help="folder for the temporary demo output")

    p = sub.add_parser("de", help="differential entropy of every 5 s EEG window, cold and "
                                  "warm cache (target: < 30 s for 32 subjects)")
    p.add_argument("--root", help="DEAP folder; default: write a full-size synthetic one")
    p.add_argument("--subjects", type=int, default=32, help="synthetic subjects (default 32)")
    p.add_argument("--scratch", help="scratch folder to keep the synthetic data between runs")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.add_argument("--method", choices=["welch", "filter"], default="welch")

    p = sub.add_parser("deep", help="one epoch of a braindecode baseline on one cross-subject "
                                    "fold of DEAP-shaped windows")
    p.add_argument("--model", choices=["eegnet", "shallow", "deep4"], default="eegnet")
    p.add_argument("--subjects", type=int, default=32, help="subjects (default 32)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")

    p = sub.add_parser("study", help="a whole `physiosync cv` study on synthetic DEAP: wall "
                                     "time and peak memory")
    p.add_argument("--config", default="demo", help="preset or YAML file (default: demo)")
    p.add_argument("--subjects", type=int, default=6, help="synthetic subjects (default 6)")
    p.add_argument("--trials", type=int, default=12, help="videos per subject (default 12)")
    p.add_argument("--seconds", type=float, default=30.0, help="seconds per video (30)")
    p.add_argument("--effect", type=float, default=3.0, help="emotion effect (default 3)")
    p.add_argument("--executor", choices=["serial", "processes", "ray"], default="serial")
    p.add_argument("--n-jobs", type=int, help="workers of the processes executor")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override")
    p.add_argument("--cold", action="store_true", help="empty the cache first (time "
                                                       "preparation too)")
    p.add_argument("--scratch", help="folder to keep the synthetic data and cache in")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args(argv)
    if args.benchmark == "prepare":
        if args.compare and args.dataset != "deap":
            parser.error("prepare: --compare times DEAP's pickles; it needs --dataset deap.")
        if args.root and (args.subjects or args.trials or args.seconds):
            parser.error("prepare: --subjects, --trials and --seconds shrink the synthetic "
                         "copy; they do not apply with --root.")
    run = {"prepare": bench_prepare, "pretrain": bench_pretrain, "finetune": bench_finetune,
           "demo": bench_demo, "de": bench_de, "deep": bench_deep, "study": bench_study}
    print(json.dumps(run[args.benchmark](args)))


if __name__ == "__main__":
    main()
