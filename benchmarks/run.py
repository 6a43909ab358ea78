"""Benchmarks of physiosync. Each prints one JSON line.

    python benchmarks/run.py prepare [--root DIR] [--subjects N] [--scratch DIR]

``prepare`` loads, baseline-corrects, normalises and windows (1 s and 5 s, EEG and
GSR) a DEAP folder, cold: a fresh cache folder every time, in a fresh process, so
``peak_rss_mb`` is the peak of the measured work alone. Without ``--root`` it first
writes a full-size synthetic DEAP (32 subjects x 40 trials x 63 s, ~3.3 GB of
Python-2 pickles) to a scratch folder; that step is not timed.
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


def _prepare_worker(root: str, cache_dir: str) -> dict:
    import numpy as np

    from physiosync.datasets import DEAP
    from physiosync.prepare import prepare
    from physiosync.preprocessing import PrepareParams
    from physiosync.windowing import make_windows

    t0 = time.perf_counter()
    ds = DEAP(root)
    prepared = prepare(ds, params=PrepareParams(modalities=("eeg", "gsr")), cache_dir=cache_dir)
    windows = make_windows(prepared, lengths=(1.0, 5.0))
    counts = {}
    for length in windows.lengths:
        for m in ("eeg", "gsr"):
            views = [windows.windows(s, m, length) for s in windows.subjects]
            counts[f"{m}_{length:g}s"] = [int(sum(v.shape[0] * v.shape[1] for v in views))]
            counts[f"{m}_{length:g}s"].append(list(views[0].shape[2:]))
    seconds = time.perf_counter() - t0
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    source_bytes = sum(p.stat().st_size for p in ds.source_files())
    cache_bytes = sum(p.stat().st_size for p in Path(cache_dir).rglob("*.npy"))
    return {
        "benchmark": "prepare", "seconds": round(seconds, 2), "peak_rss_mb": round(peak_kb / 1024, 1),
        "subjects": len(ds.subjects), "source_gb": round(source_bytes / 1e9, 2),
        "cache_gb": round(cache_bytes / 1e9, 2), "windows": counts,
        "numpy": np.__version__,
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


def bench_prepare(args) -> dict:
    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="physiosync-bench-"))
    root = args.root
    if root is None:
        from physiosync.datasets.synthetic import make_deap

        root = scratch / "deap"
        if not (root / f"s{args.subjects:02d}.dat").exists():
            t = time.perf_counter()
            make_deap(root, n_subjects=args.subjects, n_trials=40, seconds=60.0, seed=0)
            print(f"# wrote synthetic DEAP in {time.perf_counter() - t:.0f} s (untimed)",
                  file=sys.stderr)
    cache_dir = Path(tempfile.mkdtemp(prefix="cache-", dir=scratch))
    try:
        out = subprocess.run(
            [sys.executable, __file__, "_prepare_worker", str(root), str(cache_dir)],
            check=True, capture_output=True, text=True)
        result = json.loads(out.stdout.strip().splitlines()[-1])
        if args.compare:
            result.update(_baselines(str(root)))
        return result
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
        if args.scratch is None and not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_prepare_worker":
        print(json.dumps(_prepare_worker(argv[1], argv[2])))
        return
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="benchmark", required=True)
    p = sub.add_parser("prepare", help="cold prepare of a DEAP folder")
    p.add_argument("--root", help="DEAP folder; default: write a full-size synthetic one")
    p.add_argument("--subjects", type=int, default=32, help="synthetic subjects (default 32)")
    p.add_argument("--scratch", help="scratch folder to keep the synthetic data between runs")
    p.add_argument("--keep", action="store_true", help="keep the scratch folder")
    p.add_argument("--compare", action="store_true",
                   help="also time a raw read and a bare latin1 pickle.load of the same files")
    args = parser.parse_args(argv)
    print(json.dumps(bench_prepare(args)))


if __name__ == "__main__":
    main()
