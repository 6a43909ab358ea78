"""Seeded fuzzing of the file readers: every input ends in success or a clear refusal.

    python benchmarks/fuzz.py --n 10000 --seed 0 --out results/fuzz [--readers dat,bdf]
    python benchmarks/fuzz.py --n 0 --integrity 20 --out results/integrity

The integrity families (``--integrity N``: data changed in place, edited fold files and
cache metadata, writers pointed at folders of a user's files) are described in
``benchmarks/_integrity.py``.

Nine readers are fuzzed with mutations of valid files that the synthetic writers produce:

* ``dat``: a DEAP ``sXX.dat`` read through :class:`physiosync.datasets.DEAP` (the restricted
  pickle reader);
* ``bdf``: a DEAP ``sXX.bdf`` in a ``data_original`` folder, read the same way;
* ``dreamer``: ``DREAMER.mat`` through :class:`physiosync.datasets.DREAMER`, one subject
  loaded;
* ``amigos``: an AMIGOS ``Data_Preprocessed_P01.mat`` through
  :class:`physiosync.datasets.AMIGOS`, the participant loaded;
* ``seed``: a SEED session file ``Preprocessed_EEG/1_20131027.mat`` through
  :class:`physiosync.datasets.SEED`, its subject loaded;
* ``seed-iv``: a SEED-IV session file ``eeg_raw_data/1/1_20160518.mat`` through
  :class:`physiosync.datasets.SEEDIV` (whose rate check reads its variable list first);
* ``checkpoint``: a tiny pre-training checkpoint through :func:`physiosync.load_checkpoint`;
* ``config``: the shipped configurations (``physiosync/configs/*.yaml``) through :func:`physiosync.config.load_config`;
* ``mahnob``: a MAHNOB-HCI ``Sessions`` folder through :class:`physiosync.datasets.MAHNOB`,
  one subject loaded, with either its ``session.xml`` or its BDF file mutated.

Each reader's seed files, mutators and loader (its target) are in
``benchmarks/_fuzz_targets.py``.

Mutations: truncation, byte flips, random splices and insertions, random bytes, and per
format extreme header fields (BDF record and sample counts, channel counts, physical and
digital ranges; MAT element sizes inside and outside the compressed streams; pickle
length fields and deep nesting; checkpoint configuration values and tensor shapes; YAML
deep nesting, alias bombs, huge numbers and non-UTF-8 bytes; XML entity bombs, external
entities, deep nesting and extreme attribute values).

The outcome rule: success, or a :class:`~physiosync.PhysioSyncError` whose message names
the file (for configurations a :class:`~physiosync.config.ConfigError`), each input within
``--seconds`` (default 10 s). Anything else, including ``MemoryError`` under the address
space cap (``--max-memory``, default 4 GiB, set on the worker process), is a finding: the
input is saved under ``OUT/findings/`` with its traceback. The campaign runs in a child
process so that a crash or an allocation bomb cannot take the caller with it. The summary
(per reader: inputs, successes, refusals by exception class, other outcomes, slowest input
and peak RSS growth) is printed and written to ``OUT/fuzz.json`` and ``OUT/fuzz.md``.
The exit status is 1 when there is any finding, 0 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _integrity  # noqa: E402  (beside this script)
# the readers' targets (seed files, mutators, loaders); the tests reach them from here
from _fuzz_targets import (TARGETS, DatTarget, bdf_structured,  # noqa: E402,F401
                           generic_mutation, mutations, xml_structured)

READERS = ("dat", "bdf", "dreamer", "amigos", "seed", "seed-iv", "checkpoint", "config",
           "mahnob")
# Share of the inputs per reader (even: every reader takes well under a minute per
# 2,000 inputs on one core).
WEIGHTS = {"dat": 1.0, "bdf": 1.0, "dreamer": 1.0, "amigos": 1.0, "seed": 1.0, "seed-iv": 1.0,
           "checkpoint": 1.0, "config": 1.0, "mahnob": 1.0}
assert set(READERS) == set(TARGETS), "a reader without a fuzz target, or the reverse"


class InputTimeout(BaseException):
    """Raised by the alarm when one input runs past its time bound.

    A ``BaseException`` so that no ``except Exception`` in a reader can swallow it.
    """


# ------------------------------------------------------------------------ campaign
def _maxrss_bytes() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def _current_rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # pragma: no cover - not Linux
        return _maxrss_bytes()


def _on_alarm(signum, frame):
    raise InputTimeout()


def fuzz_reader(name: str, n: int, seed: int, work: Path, out: Path | None = None,
                seconds: float = 10.0) -> dict:
    """Feed *n* mutated inputs to one reader and classify every outcome.

    Parameters
    ----------
    name : str
        One of :data:`READERS`.
    n : int
        Number of inputs.
    seed : int
        Seed of the generator (the same seed gives the same inputs).
    work : Path
        Scratch folder for the seed files and the mutants.
    out : Path | None
        Where to save inputs that give another outcome (``out/findings``); ``None``
        keeps them nowhere.
    seconds : float
        Time bound of one input; an input still running after it is interrupted and
        counted as a finding.

    Returns
    -------
    dict
        ``inputs``, ``successes``, ``refusals`` (by exception class), ``examples`` (the
        first message of each refusal class), ``other`` (by outcome), ``findings``
        (input number, outcome, message), ``slowest_s``,
        ``slowest_input`` and ``peak_rss_growth_mb``.
    """
    import logging

    target = TARGETS[name](Path(work))
    seeds = target.seeds()
    rng = np.random.default_rng([seed, READERS.index(name)])
    summary = {"inputs": 0, "successes": 0, "refusals": {}, "examples": {}, "other": {},
               "findings": [], "slowest_s": 0.0, "slowest_input": None}
    log = logging.getLogger("physiosync")
    level = log.level
    log.setLevel(logging.CRITICAL)  # the readers' warnings about damaged files are expected
    if out is not None:
        Path(out).mkdir(parents=True, exist_ok=True)
    rss0 = _current_rss()
    peak = rss0
    old = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        for i in range(n):
            path = target.make_input(rng, seeds)
            if out is not None:  # names the input if the process dies on it
                (Path(out) / "current.txt").write_text(f"{name} {seed} {i} {path}")
            t0 = time.monotonic()
            outcome = "ok"
            err = None
            try:
                signal.setitimer(signal.ITIMER_REAL, seconds)
                try:
                    target.load(path)
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            except InputTimeout:
                outcome = f"timeout after {seconds:g} s"
            except BaseException as exc:  # noqa: BLE001 - classifying every outcome
                if isinstance(exc, KeyboardInterrupt):
                    raise
                err = exc
                if target.accepts(exc, path):
                    outcome = "refused"
                else:
                    outcome = type(exc).__name__ + (
                        " (message does not name the file)"
                        if isinstance(exc, Exception) and _is_physiosync(exc) else "")
            elapsed = time.monotonic() - t0
            peak = max(peak, _current_rss())
            summary["inputs"] += 1
            if elapsed > summary["slowest_s"]:
                summary["slowest_s"], summary["slowest_input"] = round(elapsed, 4), i
            if outcome == "ok":
                summary["successes"] += 1
            elif outcome == "refused":
                cls = type(err).__name__
                summary["refusals"][cls] = summary["refusals"].get(cls, 0) + 1
                summary["examples"].setdefault(cls, f"#{i}: {str(err)[:300]}")
            else:
                summary["other"][outcome] = summary["other"].get(outcome, 0) + 1
                message = "".join(traceback.format_exception(err)) if err else outcome
                summary["findings"].append({"input": i, "outcome": outcome,
                                            "message": str(err)[:500] if err else outcome})
                if out is not None:
                    folder = Path(out) / "findings"
                    folder.mkdir(parents=True, exist_ok=True)
                    stem = folder / f"{name}_{seed}_{i:05d}"
                    stem.with_suffix(target.suffix).write_bytes(path.read_bytes())
                    stem.with_suffix(".txt").write_text(message)
    finally:
        signal.signal(signal.SIGALRM, old)
        log.setLevel(level)
    summary["peak_rss_growth_mb"] = round((peak - rss0) / 2**20, 1)
    return summary


def _is_physiosync(exc) -> bool:
    from physiosync import PhysioSyncError

    return isinstance(exc, PhysioSyncError)


def split_inputs(n: int, readers=READERS) -> dict:
    """Split *n* inputs over *readers* by :data:`WEIGHTS` (at least one each)."""
    total = sum(WEIGHTS[r] for r in readers)
    return {r: max(1, int(round(n * WEIGHTS[r] / total))) for r in readers}


def run_campaign(n: int, seed: int, out, readers=READERS, seconds: float = 10.0) -> dict:
    """Run the campaign in this process (see :func:`run_isolated` for the capped child)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"seed": seed, "seconds_per_input": seconds, "readers": {}}
    with tempfile.TemporaryDirectory(prefix="physiosync-fuzz-") as work:
        for name, count in split_inputs(n, readers).items():
            t0 = time.monotonic()
            result["readers"][name] = fuzz_reader(name, count, seed, Path(work), out, seconds)
            result["readers"][name]["wall_s"] = round(time.monotonic() - t0, 1)
    result["inputs"] = sum(r["inputs"] for r in result["readers"].values())
    result["other"] = sum(sum(r["other"].values()) for r in result["readers"].values())
    result["peak_rss_mb"] = round(_maxrss_bytes() / 2**20, 1)
    return result


def run_isolated(n: int, seed: int, out, readers=READERS, seconds: float = 10.0,
                 max_memory: int = 4 << 30, timeout: float | None = None) -> dict:
    """Run :func:`run_campaign` in a child process under an address-space cap.

    A crash of the child (a signal) or a campaign that does not finish is reported in
    the returned summary under ``"crash"``, so the caller always gets one.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", "--n", str(n),
           "--seed", str(seed), "--out", str(out), "--readers", ",".join(readers),
           "--seconds", str(seconds), "--max-memory", str(max_memory)]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"crash": f"the campaign did not finish within {timeout} s", "inputs": 0,
                "other": 1, "readers": {}}
    summary_file = out / "fuzz.json"
    if proc.returncode not in (0, 1) or not summary_file.exists():
        where = ""
        current = out / "current.txt"
        if current.exists():  # keep the input the worker died on
            name, seed_, i, path = current.read_text().split(" ", 3)
            folder = out / "findings"
            folder.mkdir(exist_ok=True)
            saved = folder / f"{name}_{seed_}_{int(i):05d}_crash{Path(path).suffix}"
            if Path(path).exists():
                saved.write_bytes(Path(path).read_bytes())
            where = f" on {name} input {i} (saved as {saved})"
        return {"crash": f"worker exit status {proc.returncode}{where}: "
                         f"{proc.stderr[-2000:]}", "inputs": 0, "other": 1, "readers": {}}
    (out / "current.txt").unlink(missing_ok=True)
    return json.loads(summary_file.read_text())


def to_markdown(result: dict) -> str:
    lines = [f"Fuzzing, seed {result['seed']}: {result['inputs']} inputs, "
             f"{result['other']} outcomes other than success or a clear refusal "
             f"(bound {result['seconds_per_input']:g} s per input, peak RSS "
             f"{result['peak_rss_mb']} MB).", "",
             "| reader | inputs | successes | refusals | other | slowest (s) | "
             "peak RSS growth (MB) |", "|---|---|---|---|---|---|---|"]
    for name, r in result["readers"].items():
        refusals = ", ".join(f"{k} {v}" for k, v in sorted(r["refusals"].items())) or "0"
        other = ", ".join(f"{k} {v}" for k, v in sorted(r["other"].items())) or "0"
        lines.append(f"| {name} | {r['inputs']} | {r['successes']} | {refusals} | {other} | "
                     f"{r['slowest_s']} (#{r['slowest_input']}) | {r['peak_rss_growth_mb']} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10_000, help="inputs in all (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="folder for the summary and findings")
    parser.add_argument("--readers", default=",".join(READERS),
                        help="comma-separated subset of " + ",".join(READERS))
    parser.add_argument("--seconds", type=float, default=10.0, help="time bound per input")
    parser.add_argument("--max-memory", type=int, default=4 << 30,
                        help="address-space cap of the worker, bytes (default 4 GiB)")
    parser.add_argument("--integrity", type=int, default=0, metavar="N",
                        help="also run N cases of each integrity family (data changed in "
                             "place, edited fold files and cache metadata, writers pointed "
                             "at folders of user files; see benchmarks/_integrity.py)")
    parser.add_argument("--families", default=",".join(_integrity.FAMILIES),
                        help="integrity families, comma-separated")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.integrity:
        families = tuple(f for f in args.families.split(",") if f)
        if set(families) - set(_integrity.FAMILIES):
            parser.error(f"unknown families; choose from {', '.join(_integrity.FAMILIES)}")
        out = Path(args.out)
        with tempfile.TemporaryDirectory(prefix="physiosync-integrity-") as work:
            result = _integrity.run_integrity(args.integrity, args.seed, Path(work), families)
        out.mkdir(parents=True, exist_ok=True)
        (out / "integrity.json").write_text(json.dumps(result, indent=1))
        (out / "integrity.md").write_text(_integrity.integrity_markdown(result))
        print(_integrity.integrity_markdown(result), end="")
        if args.n == 0:
            return 1 if result["findings"] else 0
    readers = tuple(r for r in args.readers.split(",") if r)
    unknown = set(readers) - set(READERS)
    if unknown:
        parser.error(f"unknown readers {sorted(unknown)}; choose from {', '.join(READERS)}")
    out = Path(args.out)
    if args.worker:
        resource.setrlimit(resource.RLIMIT_AS, (args.max_memory, args.max_memory))
        result = run_campaign(args.n, args.seed, out, readers, args.seconds)
        (out / "fuzz.json").write_text(json.dumps(result, indent=1))
        (out / "fuzz.md").write_text(to_markdown(result))
        return 1 if result["other"] else 0
    (out / "fuzz.json").unlink(missing_ok=True) if out.exists() else None
    result = run_isolated(args.n, args.seed, out, readers, args.seconds, args.max_memory)
    if "crash" in result:
        print("fuzz: the worker crashed:", result["crash"], file=sys.stderr)
        return 1
    print(to_markdown(result), end="")
    return 1 if result["other"] else 0


if __name__ == "__main__":
    sys.exit(main())
