"""Kill physiosync commands with SIGKILL or SIGTERM at random points, resume, compare.

Each trial starts a command as a subprocess (in its own session), kills it with
``SIGKILL`` after a delay drawn from a seeded RNG, runs the same command again (the
resume) and compares what the resumed run left with an uninterrupted reference run:

- ``cv``: ``report.json`` and every fold file (parsed JSON, with the run folder's own
  path and the timing fields removed), ``results.csv`` byte for byte;
- ``pretrain``: every tensor of both final checkpoints (``torch.equal``: model and
  optimiser state) and the losses of the history;
- ``prepare``: every cached array (``np.array_equal``) and ``meta.json``, and a further
  ``prepare`` must be a clean hit (no entry rewritten).

A kill that lands after the command has finished still counts as a trial; the summary
says how many landed mid-run. The run-folder lock (``.physiosync.lock``) that a killed
``cv`` or ``pretrain`` leaves behind must be taken over by the resume.

The **SIGTERM family** (``--families sigterm``) sends SIGTERM to the process alone (as
``kill``, ``timeout`` or a batch scheduler does) at a random point of ``prepare``, ``cv``,
``report`` (into a new folder, from a finished ``cv`` run), ``synth`` and ``cv
--executor processes`` (``cv-processes``), and checks each of them:

- the exit status: 143 with exactly one line on stderr, ``physiosync: error:
  interrupted by SIGTERM...`` (the signal landed in the command); 0 (it landed after the
  command had finished); or -15 with nothing written (it landed during the start-up of
  Python, before :func:`physiosync.cli.main` installs its handlers, or after main
  returned);
- leftover processes: every process below the killed one (the fork server, the resource
  tracker and the workers of ``cv-processes``) must be gone :data:`GRACE_S` seconds
  after it exited;
- leftover files: no temporary name (a hidden name containing ``.tmp``) and no lock
  anywhere under the trial's folder;
- the resume (the same command run again) gives what an uninterrupted run gave.

Usage::

    python benchmarks/kills.py --n 20 --out /tmp/kills     # both families, all commands

writes ``summary.json`` and ``summary.md`` into ``--out``. Exit status 0 when every
resume succeeded and was identical (and, for SIGTERM, every check passed).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

COMMANDS = ("cv", "pretrain", "prepare")
#: The commands of the SIGTERM family.
TERM_COMMANDS = ("prepare", "cv", "report", "synth", "cv-processes")
FAMILIES = ("kill9", "sigterm")
LOCK = ".physiosync.lock"
#: Seconds after the killed command exited by which every process below it must be gone.
GRACE_S = 5.0
# keys whose values are wall-clock measurements, not results
_TIMING_KEYS = {"seconds", "elapsed", "elapsed_s", "wall_s", "duration", "created",
                "started", "finished", "timestamp", "time"}


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
            "PYTHONHASHSEED": "0"}


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "physiosync.cli", *args]


def make_data(work: Path) -> tuple[Path, Path]:
    """Write the synthetic DEAP copies: a tiny one (cv, pretrain), a larger one (prepare)."""
    small, large = work / "data_small", work / "data_large"
    for folder, subjects, trials, seconds in ((small, 3, 4, 10), (large, 8, 10, 60)):
        if not folder.exists():
            subprocess.run(_cli("synth", "deap", str(folder), "--subjects", str(subjects),
                                "--trials", str(trials), "--seconds", str(seconds),
                                "--effect", "2", "--seed", "1"),
                           check=True, env=_env(), capture_output=True)
    return small, large


def command_args(command: str, data: dict, out: Path, quick: bool = False) -> list[str]:
    """The argument list of *command* writing into trial folder *out*.

    ``cv`` and ``prepare`` use a cache of their own inside *out* (so a kill can land
    while the cache is written); ``pretrain`` shares one warm cache (``data['cache']``),
    so its kills land in training. *quick*: one pipeline in ``cv`` and fewer
    pre-training steps (for the test suite).
    """
    if command == "cv-processes":
        return command_args("cv", data, out, quick) + ["--executor", "processes",
                                                       "--n-jobs", "2", "--threads", "1"]
    if command == "report":  # a finished cv run rendered into a new folder
        return ["report", str(data["report_source"]), "--out", str(out / "run")]
    if command == "synth":
        return ["synth", "deap", str(out / "data"), "--subjects", "4", "--trials", "6",
                "--seconds", "20", "--effect", "2", "--seed", "3"]
    if command == "cv":
        return ["cv", "--dataset", "deap", "--data-root", str(data["small"]),
                "--config", "tiny", "--folds", "2",
                "--pipelines", "physiosync" if quick else "physiosync,bandpower",
                "--set", "protocol.one_class=constant", "--cache-dir", str(out / "cache"),
                # 3 subjects x 4 videos leave no batch once validation units are held out
                "--set", "pretrain.held_out=unused", "--out", str(out / "run"), "-q"]
    if command == "pretrain":
        return ["pretrain", "--dataset", "deap", "--data-root", str(data["small"]),
                "--config", "tiny", "--set", f"pretrain.steps={3 if quick else 8}",
                "--set", "pretrain.checkpoint_every=1", "--cache-dir", str(data["cache"]),
                "--out", str(out / "run"), "-q"]
    if command == "prepare":
        return ["prepare", "deap", str(data["large"]), "--cache-dir", str(out / "cache")]
    raise ValueError(f"unknown command {command!r}; expected one of {COMMANDS}")


def run_to_end(argv: list[str], timeout: float = 600) -> tuple[int, str, float]:
    """Run ``physiosync argv``; return its exit code, stderr and wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run(_cli(*argv), env=_env(), capture_output=True, text=True,
                          timeout=timeout, start_new_session=True)
    return proc.returncode, proc.stderr, time.perf_counter() - t0


def kill_after(argv: list[str], delay: float, wait_for: Path | None = None) -> dict:
    """Start ``physiosync argv``, SIGKILL it after *delay* seconds; say where it landed.

    With *wait_for*, the delay counts from the moment that path exists (at most 120 s
    of waiting), e.g. the run folder's lock: the kill then lands while the run holds it.
    """
    proc = subprocess.Popen(_cli(*argv), env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    if wait_for is not None:
        give_up = time.perf_counter() + 120
        while (not wait_for.exists() and proc.poll() is None
               and time.perf_counter() < give_up):
            time.sleep(0.002)
    deadline = time.perf_counter() + delay
    while time.perf_counter() < deadline and proc.poll() is None:
        time.sleep(0.005)
    mid_run = proc.poll() is None
    if mid_run:
        os.kill(proc.pid, signal.SIGKILL)
    rc = proc.wait()
    return {"delay_s": round(delay, 3), "landed_mid_run": mid_run, "killed_rc": rc}


def _strip(obj, out_dir: str):
    """*obj* without timing fields, with the run folder's path replaced by ``<OUT>``."""
    if isinstance(obj, dict):
        return {k: _strip(v, out_dir) for k, v in obj.items() if k not in _TIMING_KEYS}
    if isinstance(obj, list):
        return [_strip(v, out_dir) for v in obj]
    if isinstance(obj, str):
        return obj.replace(out_dir, "<OUT>")
    return obj


def snapshot(command: str, out: Path):
    """What an uninterrupted run of *command* must reproduce, read from trial folder *out*."""
    if command == "report":
        run = out / "run"
        return {p.name: (_strip(json.loads(p.read_text()), str(out)) if p.suffix == ".json"
                         else p.read_bytes())
                for p in sorted(run.iterdir()) if p.name in ("report.json", "results.csv",
                                                               "report.md")}
    if command == "synth":
        return {str(p.relative_to(out)): p.read_bytes()
                for p in sorted((out / "data").rglob("*")) if p.is_file()}
    if command == "cv-processes":
        command = "cv"
    if command == "cv":
        run = out / "run"
        snap = {"report.json": _strip(json.loads((run / "report.json").read_text()),
                                      str(out))}
        for p in sorted((run / "folds").rglob("*.json")):
            snap[str(p.relative_to(run))] = _strip(json.loads(p.read_text()), str(out))
        snap["results.csv"] = (run / "results.csv").read_text().replace(str(out), "<OUT>")
        return snap
    if command == "pretrain":
        import torch

        snap = {}
        for name in ("pretrain_long.pt", "pretrain_short.pt"):
            ck = torch.load(out / "run" / name, weights_only=True, map_location="cpu")
            snap[name] = {"step": ck["step"], "model": ck["model"],
                          "optimizer": ck["optimizer"],
                          "history": [_strip(h, str(out)) for h in ck["history"]]}
        return snap
    if command == "prepare":
        snap = {}
        for entry in sorted((out / "cache").glob("DEAP-*")):
            snap[entry.name] = {p.name: np.load(p, allow_pickle=False)
                                for p in sorted(entry.glob("*.npy"))}
            snap[entry.name]["meta.json"] = json.loads((entry / "meta.json").read_text())
        return snap
    raise ValueError(command)


def differences(a, b, where: str = "") -> list[str]:
    """Where two snapshots differ (exact comparison of arrays and tensors)."""
    if type(a) is not type(b):
        return [f"{where}: {type(a).__name__} != {type(b).__name__}"]
    if isinstance(a, dict):
        out = [f"{where}/{k}: missing on one side" for k in sorted(set(a) ^ set(b), key=str)]
        for k in a.keys() & b.keys():
            out += differences(a[k], b[k], f"{where}/{k}")
        return out
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return [f"{where}: length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    if isinstance(a, np.ndarray):
        same = a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
        return [] if same else [f"{where}: arrays differ"]
    if type(a).__module__.startswith("torch"):
        import torch

        return [] if torch.equal(a, b) else [f"{where}: tensors differ"]
    if isinstance(a, float) and np.isnan(a) and np.isnan(b):
        return []
    return [] if a == b else [f"{where}: {a!r} != {b!r}"]


def _entry_stamps(cache: Path) -> dict:
    return {str(p.relative_to(cache)): (p.stat().st_ino, p.stat().st_mtime_ns)
            for p in sorted(cache.rglob("*")) if p.is_file()}


def _leftovers(folder: Path) -> list[str]:
    """physiosync's temporary files or folders (``.physiosync-tmp-*``) under *folder*."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if p.name.startswith(".physiosync-tmp-"))


def _progress(command: str, folder: Path) -> list[str]:
    """What a killed run had finished: fold files, checkpoints or cache entries."""
    if command == "prepare":
        return sorted(p.name for p in (folder / "cache").glob("DEAP-*"))
    run = folder / "run"
    if command == "cv":
        return sorted(str(p.relative_to(run)) for p in (run / "folds").rglob("*.json"))
    return sorted(p.name for p in run.glob("*.pt"))


def trial(command: str, data: dict, folder: Path, delay: float, reference,
          wait_for: Path | None = None, quick: bool = False) -> dict:
    """One kill followed by one resume; the outcome as a dict (``ok``: identical)."""
    argv = command_args(command, data, folder, quick)
    res = {"command": command, **kill_after(argv, delay, wait_for)}
    res["lock_left_by_kill"] = (folder / "run" / LOCK).exists()
    res["tmp_left_by_kill"] = _leftovers(folder)
    res["left_by_kill"] = _progress(command, folder)
    rc, err, wall = run_to_end(argv)
    res.update(resume_rc=rc, resume_s=round(wall, 2))
    if rc != 0:
        res.update(ok=False, failure=f"resume exited {rc}: {err.strip()[-500:]}")
        return res
    diff = differences(snapshot(command, folder), reference)
    if command == "prepare":
        before = _entry_stamps(folder / "cache")
        rc2, err2, _ = run_to_end(argv)
        rewritten = [k for k, v in _entry_stamps(folder / "cache").items()
                     if before.get(k) != v]
        if rc2 != 0 or rewritten:
            diff.append(f"second prepare not a clean hit: exit {rc2}, rewrote {rewritten}"
                        f" {err2.strip()[-300:]}")
    res["lock_left_after_resume"] = (folder / "run" / LOCK).exists()
    if res["lock_left_after_resume"]:
        diff.append("lock left after the resume")
    res["tmp_left_after_resume"] = _leftovers(folder)
    res["identical"] = not diff
    res["ok"] = not diff
    if diff:
        res["failure"] = "; ".join(diff[:10])
    return res


def setup(out: Path) -> dict:
    """Write the data under *out* and warm the shared cache; the ``data`` of the trials."""
    out.mkdir(parents=True, exist_ok=True)
    small, large = make_data(out)
    data = {"small": small, "large": large, "cache": out / "shared_cache"}
    # pretrain uses a warm cache, so that its kills land in training
    subprocess.run(_cli("prepare", "deap", str(small), "--cache-dir", str(data["cache"])),
                   check=True, env=_env(), capture_output=True)
    return data


def reference_run(command: str, data: dict, folder: Path, quick: bool = False):
    """Run *command* uninterrupted into *folder*; return its snapshot and wall time."""
    shutil.rmtree(folder, ignore_errors=True)
    rc, err, wall = run_to_end(command_args(command, data, folder, quick))
    if rc != 0:
        raise RuntimeError(f"reference {command} run failed ({rc}): {err}")
    return snapshot(command, folder), wall


def _trials(n: int, base: Path, rng, ref_s: float, keep: bool, log, run_trial,
            describe) -> list:
    """*n* trials in ``base/trial_NNN``: each signalled after a delay spread over the
    whole reference run, a few after its end (uniform between 5 % and 110 % of it)."""
    results = []
    for i in range(n):
        folder = base / f"trial_{i:03d}"
        shutil.rmtree(folder, ignore_errors=True)
        res = run_trial(folder, rng.uniform(0.05, 1.1) * ref_s)
        res["trial"] = i
        results.append(res)
        log(describe(res))
        if not keep and res["ok"]:
            shutil.rmtree(folder, ignore_errors=True)
    return results


def campaign(n: int, out: Path, seed: int = 0, commands=COMMANDS, keep: bool = False,
             log=print) -> dict:
    """Run *n* kill-and-resume trials per command under *out*; return the summary."""
    data = setup(out)
    rng = random.Random(seed)
    summary = {"n_per_command": n, "seed": seed, "commands": {}, "trials": []}
    for command in commands:
        reference, ref_s = reference_run(command, data, out / command / "reference")
        log(f"{command}: reference run {ref_s:.1f} s")
        results = _trials(
            n, out / command, rng, ref_s, keep, log,
            lambda folder, delay: trial(command, data, folder, delay, reference),
            lambda res: (f"  {command} #{res['trial']}: delay {res['delay_s']:.2f} s, "
                         f"{'mid-run' if res['landed_mid_run'] else 'after the end'}, "
                         f"{'identical' if res['ok'] else 'FAILED: ' + res['failure']}"))
        summary["trials"] += results
        summary["commands"][command] = {
            "reference_s": round(ref_s, 2),
            "trials": len(results),
            "landed_mid_run": sum(r["landed_mid_run"] for r in results),
            "lock_left_by_kill": sum(r["lock_left_by_kill"] for r in results),
            "tmp_left_by_kill": sum(bool(r["tmp_left_by_kill"]) for r in results),
            "tmp_left_after_resume": sum(bool(r.get("tmp_left_after_resume"))
                                         for r in results),
            "resumed_identical": sum(bool(r.get("identical")) for r in results),
            "failures": sum(not r["ok"] for r in results),
        }
    summary["total_failures"] = sum(c["failures"] for c in summary["commands"].values())
    return summary


# ------------------------------------------------------------------ the SIGTERM family
def _proc_stat(pid: int):
    """``(state, ppid)`` of a process (Linux /proc), or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2:].split()
    return fields[0], int(fields[1])


def descendants(pid: int) -> set:
    """Every live process below *pid* (read from /proc; empty where there is none)."""
    if not Path("/proc").is_dir():
        return set()
    children = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _proc_stat(int(name))
            if st and st[0] != "Z":
                children.setdefault(st[1], []).append(int(name))
    out, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), ()):
            out.add(child)
            todo.append(child)
    return out


def _alive(pids) -> list:
    return sorted(p for p in pids if (st := _proc_stat(p)) is not None and st[0] != "Z")


def _locks(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(LOCK + "*"))


def term_after(argv: list[str], delay: float, folder: Path) -> dict:
    """Start ``physiosync argv``, SIGTERM it (the process alone) after *delay* seconds;
    check its exit, its line and the processes it leaves."""
    folder.mkdir(parents=True, exist_ok=True)
    err_path = folder.parent / f".{folder.name}.stderr"
    with open(err_path, "w") as err_file:
        proc = subprocess.Popen(_cli(*argv), env=_env(), stdout=subprocess.DEVNULL,
                                stderr=err_file, start_new_session=True)
    deadline = time.perf_counter() + delay
    family = set()
    while time.perf_counter() < deadline and proc.poll() is None:
        family |= descendants(proc.pid)  # the workers, fork server, resource tracker
        time.sleep(0.02)
    sent = proc.poll() is None
    if sent:
        family |= descendants(proc.pid)
        os.kill(proc.pid, signal.SIGTERM)
    rc = proc.wait()
    err = err_path.read_text()
    err_path.unlink()
    give_up = time.perf_counter() + GRACE_S
    while _alive(family) and time.perf_counter() < give_up:
        time.sleep(0.05)
    res = {"delay_s": round(delay, 3), "killed_rc": rc, "stderr": err.strip()[-500:],
           "processes": len(family), "processes_left": len(_alive(family))}
    if rc == 143:
        res["landed"] = "mid-run"
        lines = err.splitlines()
        res["one_line"] = (len(lines) == 1 and lines[0].startswith(
            "physiosync: error: interrupted by SIGTERM") and "resume" in lines[0])
    elif rc == 0:
        res["landed"] = "after the end"
        res["one_line"] = True
    elif rc == -signal.SIGTERM:
        res["landed"] = "outside main"  # Python's start-up, or after main returned
        res["one_line"] = err == ""
    else:
        res["landed"] = f"exit {rc}"
        res["one_line"] = False
    return res


def term_trial(command: str, data: dict, folder: Path, delay: float, reference,
               quick: bool = False) -> dict:
    """One SIGTERM followed by one resume; the outcome as a dict (``ok``: all checks)."""
    argv = command_args(command, data, folder, quick)
    res = {"command": command, **term_after(argv, delay, folder)}
    res["tmp_left_by_term"] = _leftovers(folder)
    res["lock_left_by_term"] = _locks(folder)
    problems = []
    if res["landed"].startswith("exit"):
        problems.append(f"unexpected {res['landed']}: {res['stderr']}")
    if not res["one_line"]:
        problems.append(f"not one line: {res['stderr']!r}")
    if res["processes_left"]:
        problems.append(f"{res['processes_left']} processes alive {GRACE_S:g} s after exit")
    if res["tmp_left_by_term"] or res["lock_left_by_term"]:
        problems.append(f"left {res['tmp_left_by_term'] + res['lock_left_by_term']}")
    if res["landed"] == "outside main" and any(p.is_file() for p in folder.rglob("*")):
        # after main returned is possible too: then the command's files are complete
        res["files_after_outside_main"] = True
    rc, err, wall = run_to_end(argv)
    res.update(resume_rc=rc, resume_s=round(wall, 2))
    diff = []
    if rc != 0:
        problems.append(f"resume exited {rc}: {err.strip()[-500:]}")
    else:
        diff = differences(snapshot(command, folder), reference)
        problems += diff
        if _leftovers(folder) or _locks(folder):
            problems.append(f"left after the resume: {_leftovers(folder) + _locks(folder)}")
    res["identical"] = rc == 0 and not diff
    res["ok"] = not problems
    if problems:
        res["failure"] = "; ".join(problems[:10])
    return res


def term_campaign(n: int, out: Path, seed: int = 0, commands=TERM_COMMANDS,
                  keep: bool = False, quick: bool = False, log=print) -> dict:
    """Run *n* SIGTERM-and-resume trials per command under *out*; return the summary."""
    data = setup(out)
    rng = random.Random(seed)
    summary = {"n_per_command": n, "seed": seed, "quick": quick, "commands": {},
               "trials": []}
    if "report" in commands:  # the finished run that `report` renders
        source = out / "report_source"
        if not (source / "run" / "report.json").exists():
            shutil.rmtree(source, ignore_errors=True)
            rc, err, _ = run_to_end(command_args("cv", data, source, quick))
            if rc != 0:
                raise RuntimeError(f"the cv run for report failed ({rc}): {err}")
        data["report_source"] = source / "run"
    for command in commands:
        base = out / "sigterm" / command
        reference, ref_s = reference_run(command, data, base / "reference", quick)
        log(f"SIGTERM {command}: reference run {ref_s:.1f} s")
        results = _trials(
            n, base, rng, ref_s, keep, log,
            lambda folder, delay: term_trial(command, data, folder, delay, reference,
                                             quick),
            lambda res: (f"  {command} #{res['trial']}: delay {res['delay_s']:.2f} s, "
                         f"{res['landed']}, {res['processes']} processes, "
                         f"{'ok' if res['ok'] else 'FAILED: ' + res['failure']}"))
        summary["trials"] += results
        summary["commands"][command] = {
            "reference_s": round(ref_s, 2),
            "trials": len(results),
            "landed_mid_run": sum(r["landed"] == "mid-run" for r in results),
            "landed_outside_main": sum(r["landed"] == "outside main" for r in results),
            "landed_after_the_end": sum(r["landed"] == "after the end" for r in results),
            "one_line": sum(bool(r["one_line"]) for r in results),
            "max_processes": max((r["processes"] for r in results), default=0),
            "processes_left": sum(r["processes_left"] for r in results),
            "tmp_or_lock_left": sum(bool(r["tmp_left_by_term"] or r["lock_left_by_term"])
                                    for r in results),
            "resumed_identical": sum(bool(r.get("identical")) for r in results),
            "failures": sum(not r["ok"] for r in results),
        }
    summary["total_failures"] = sum(c["failures"] for c in summary["commands"].values())
    return summary


def _campaign_markdown(summary: dict, title: str, columns: list, row) -> str:
    """A campaign's table (one row per command, *row* gives its cells), then its failures."""
    lines = [title, "", "| command | " + " | ".join(columns) + " |",
             "|---|" + "---|" * len(columns)]
    for name, c in summary["commands"].items():
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row(c)) + " |")
    for t in summary["trials"]:
        if not t["ok"]:
            lines.append(f"\n- {t['command']} trial {t['trial']} (delay {t['delay_s']} s): "
                         f"{t['failure']}")
    return "\n".join(lines) + "\n"


def term_markdown(summary: dict) -> str:
    return _campaign_markdown(
        summary, f"# SIGTERM campaign: {summary['n_per_command']} SIGTERMs per command "
                 f"(seed {summary['seed']}{', quick' if summary.get('quick') else ''})",
        ["trials", "landed mid-run (exit 143)", "outside main (exit -15)", "after the end",
         "one line", "processes below it (max)", "processes left",
         "temp files or lock left", "resumed identical", "failures"],
        lambda c: [c["trials"], c["landed_mid_run"], c["landed_outside_main"],
                   c["landed_after_the_end"], c["one_line"], c["max_processes"],
                   c["processes_left"], c["tmp_or_lock_left"], c["resumed_identical"],
                   c["failures"]])


def to_markdown(summary: dict) -> str:
    return _campaign_markdown(
        summary, f"# kill -9 campaign: {summary['n_per_command']} kills per command "
                 f"(seed {summary['seed']})",
        ["trials", "landed mid-run", "lock left by the kill (taken over)",
         "temp files left by the kill", "temp files left after the resume",
         "resumed identical", "failures"],
        lambda c: [c["trials"], c["landed_mid_run"], c["lock_left_by_kill"],
                   c["tmp_left_by_kill"], c["tmp_left_after_resume"], c["resumed_identical"],
                   c["failures"]])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=20, help="kills per command")
    parser.add_argument("--out", type=Path, required=True, help="work and summary folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill delays")
    parser.add_argument("--commands", default=",".join(COMMANDS),
                        help="kill -9 family: comma-separated subset of cv,pretrain,prepare")
    parser.add_argument("--families", default=",".join(FAMILIES),
                        help="comma-separated subset of kill9,sigterm")
    parser.add_argument("--term-commands", default=",".join(TERM_COMMANDS),
                        help="SIGTERM family: comma-separated subset of "
                             + ",".join(TERM_COMMANDS))
    parser.add_argument("--term-n", type=int, help="SIGTERMs per command (default: --n)")
    parser.add_argument("--quick", action="store_true",
                        help="SIGTERM family: one pipeline in cv (faster)")
    parser.add_argument("--keep", action="store_true", help="keep the trial folders")
    args = parser.parse_args(argv)
    families = args.families.split(",")
    failures, texts, out = 0, [], {}
    if "kill9" in families:
        t0 = time.perf_counter()
        summary = campaign(args.n, args.out, args.seed, args.commands.split(","), args.keep)
        summary["wall_s"] = round(time.perf_counter() - t0, 1)
        out.update(summary)
        texts.append(to_markdown(summary))
        failures += summary["total_failures"]
    if "sigterm" in families:
        t0 = time.perf_counter()
        term = term_campaign(args.term_n or args.n, args.out, args.seed,
                             args.term_commands.split(","), args.keep, args.quick)
        term["wall_s"] = round(time.perf_counter() - t0, 1)
        out["sigterm"] = term
        texts.append(term_markdown(term))
        failures += term["total_failures"]
    (args.out / "summary.json").write_text(json.dumps(out, indent=2, default=str) + "\n")
    (args.out / "summary.md").write_text("\n".join(texts))
    print("\n".join(texts))
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
