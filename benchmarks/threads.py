"""The same ``physiosync cv`` run with the default threads, ``--threads 1`` and ``--threads 2``,
on a quiet machine and beside a CPU-bound process.

    python benchmarks/threads.py [--config demo --subjects 6 --trials 12 --seconds 30]
                                 [--repeats 1 --hogs 1 --scratch DIR --out FILE.md]

It writes a synthetic DEAP set and prepares its cache (untimed), then times, in a fresh
process each, ``physiosync cv`` with each thread setting, first alone, then while ``--hogs``
busy-loop processes (pure Python, one core each) run beside it. The runs are alternated,
``--repeats`` times. Each run's wall time, its CPU time, and the ratio of its wall time to the
quiet default run's are tabulated (Markdown on stdout, and in ``--out``); the last stdout
line is the results as JSON.

The children run without ``OMP_NUM_THREADS`` (and ``SLURM_CPUS_PER_TASK``), so that
"default" is what physiosync picks on this machine from its affinity mask and cgroup quota;
the table says how many threads that was.

Results are checked: for each thread setting, the fold files of the quiet and the busy run
must be identical byte for byte (the same threads compute the same sums), and the largest
difference between the settings' headlines is reported (other thread counts split
floating-point sums differently).

The hog processes are stopped when the runs end, on an error and on Ctrl-C or SIGTERM; each
also stops by itself once this script is gone.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

#: The thread settings compared: None is physiosync's default.
SETTINGS = (None, 1, 2)
#: A CPU-bound loop that ends once the process whose pid is its argument (its parent, this
#: script) is no longer its parent: given, not read at its start, where it may be gone.
HOG = ("import os, sys\nparent = int(sys.argv[1])\nwhile os.getppid() == parent:\n"
       "    for _ in range(1_000_000):\n        pass\n")


@contextlib.contextmanager
def hogs(n: int):
    """Context in which *n* busy-loop processes run; they are killed on the way out, however
    the block ends (SIGTERM is turned into ``KeyboardInterrupt`` for its duration)."""
    def terminated(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, terminated)
    procs = []
    try:
        procs += [subprocess.Popen([sys.executable, "-c", HOG, str(os.getpid())])
                  for _ in range(n)]
        yield procs
    finally:
        for proc in procs:
            with contextlib.suppress(OSError):
                proc.kill()
        for proc in procs:
            proc.wait()
        signal.signal(signal.SIGTERM, previous)


def _command() -> list:
    exe = Path(sys.executable).parent / "physiosync"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "physiosync.cli"]


def _env() -> dict:
    return {k: v for k, v in os.environ.items()
            if k not in ("OMP_NUM_THREADS", "SLURM_CPUS_PER_TASK")}


def _default_threads() -> int:
    code = "from physiosync.execution import default_threads; print(default_threads())"
    return int(subprocess.run([sys.executable, "-c", code], env=_env(), check=True,
                              capture_output=True, text=True).stdout)


def _fold_digest(run: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(run.glob("folds/**/*.json")):
        digest.update(str(path.relative_to(run)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def time_run(cv: list, out: Path, threads) -> dict:
    """One ``physiosync cv`` in a fresh process: wall and CPU seconds, headlines, digest."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([*cv, "--out", str(out),
                           *([] if threads is None else ["--threads", str(threads)])],
                          env=_env(), capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode:
        raise SystemExit(f"physiosync cv failed:\n{proc.stderr[-4000:]}")
    report = json.loads((out / "report.json").read_text())
    return {"wall_s": round(wall, 1),
            "cpu_s": round(after.ru_utime + after.ru_stime - before.ru_utime
                           - before.ru_stime, 1),
            "noted": "physiosync: note:" in proc.stderr,
            "headline": {name: part["headline"]["mean"]
                         for name, part in report["pipelines"].items() if part.get("headline")},
            "folds_sha256": _fold_digest(out)}


def run(args) -> list:
    from physiosync.synthetic import make_deap

    scratch = Path(args.scratch or tempfile.mkdtemp(prefix="physiosync-threads-"))
    try:
        root = scratch / f"deap_{args.subjects}x{args.trials}x{args.seconds:g}"
        if not (root / f"s{args.subjects:02d}.dat").exists():
            make_deap(root, n_subjects=args.subjects, n_trials=args.trials,
                      seconds=args.seconds, effect=3.0, seed=0, verbose=False)
        sets = [x for item in (args.set or []) for x in ("--set", item)]
        cv = [*_command(), "cv", "--config", args.config, "--dataset", "deap", "--data-root",
              str(root), "--cache-dir", str(scratch / "cache"), "-q", "--overwrite",
              "--no-estimate", *sets]  # the training alone is timed, not its estimate
        # prepares the cache (untimed), so every timed run reads a warm one
        subprocess.run([*cv, "--dry-run"], env=_env(), check=True, capture_output=True)
        results = []
        for repeat in range(args.repeats):
            for busy in (False, True):
                with hogs(args.hogs if busy else 0):
                    for threads in SETTINGS:
                        out = scratch / f"run_{repeat}_{'busy' if busy else 'quiet'}_{threads}"
                        shutil.rmtree(out, ignore_errors=True)
                        result = time_run(cv, out, threads)
                        results.append({"repeat": repeat, "busy": busy,
                                        "threads": threads, **result})
                        print(json.dumps(results[-1]), file=sys.stderr)
        return results
    finally:
        if args.scratch is None:
            shutil.rmtree(scratch, ignore_errors=True)


def summarise(results: list, default: int, hogs_n: int) -> tuple:
    """The Markdown table and the checks of *results*."""
    def label(threads):
        return f"default ({default})" if threads is None else f"`--threads {threads}`"

    quiet_default = [r["wall_s"] for r in results if not r["busy"] and r["threads"] is None]
    base = sum(quiet_default) / len(quiet_default)
    lines = ["| threads | machine | wall time (s), each run | CPU time (s), mean | "
             "÷ quiet default | note printed |", "|---|---|---|---|---|---|"]
    for busy in (False, True):
        for threads in SETTINGS:
            rows = [r for r in results if r["busy"] == busy and r["threads"] == threads]
            walls = [r["wall_s"] for r in rows]
            mean = sum(walls) / len(walls)
            machine = f"{hogs_n} busy-loop process{'es' if hogs_n != 1 else ''}" if busy \
                else "quiet"
            lines.append(f"| {label(threads)} | {machine} | "
                         f"{', '.join(f'{w:.1f}' for w in walls)} | "
                         f"{sum(r['cpu_s'] for r in rows) / len(rows):.1f} | "
                         f"{mean / base:.2f} | "
                         f"{'yes' if any(r['noted'] for r in rows) else 'no'} |")
    identical = all(len({r["folds_sha256"] for r in results if r["threads"] == t}) == 1
                    for t in SETTINGS)
    names = results[0]["headline"]
    spread = max((max(r["headline"][n] for r in results) - min(r["headline"][n] for r in results))
                 for n in names) if names else 0.0
    checks = {"same_threads_identical_fold_files": identical,
              "largest_headline_difference_between_settings": round(spread, 6)}
    lines += ["", f"Fold files identical, quiet against busy, for each thread setting: "
                  f"{'yes' if identical else 'NO'}. Largest difference between the settings' "
                  f"headlines: {spread:.4f}."]
    return "\n".join(lines), checks


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="demo", help="preset or YAML file (demo)")
    parser.add_argument("--subjects", type=int, default=6, help="subjects (6)")
    parser.add_argument("--trials", type=int, default=12, help="videos per subject (12)")
    parser.add_argument("--seconds", type=float, default=30.0, help="seconds per video (30)")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="a configuration override, as physiosync cv --set (repeatable)")
    parser.add_argument("--repeats", type=int, default=1,
                        help="rounds of the six runs, alternated (1)")
    parser.add_argument("--hogs", type=int, default=1,
                        help="busy-loop processes beside the busy runs (1)")
    parser.add_argument("--scratch", help="folder for the data and runs (default: temporary, "
                                          "removed at the end)")
    parser.add_argument("--out", help="also write the table to this Markdown file")
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    for name in ("repeats", "hogs", "subjects", "trials"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    default = _default_threads()
    results = run(args)
    table, checks = summarise(results, default, args.hogs)
    header = (f"{len(results)} runs of `physiosync cv --config {args.config}` on synthetic DEAP "
              f"({args.subjects} subjects x {args.trials} videos x {args.seconds:g} s), "
              f"{os.cpu_count()} CPUs, default threads {default}, {time.strftime('%Y-%m-%d')}")
    text = f"{header}\n\n{table}\n"
    if args.out:
        Path(args.out).write_text(text)
    print(text)
    print(json.dumps({"benchmark": "threads", "default_threads": default, **checks,
                      "runs": results}))
    return 0 if checks["same_threads_identical_fold_files"] else 1


if __name__ == "__main__":
    sys.exit(main())
