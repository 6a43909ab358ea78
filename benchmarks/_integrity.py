"""Integrity families of the fuzzer: what a user changes or leaves beside physiosync's files.

Used by ``benchmarks/fuzz.py --integrity N`` (N cases per family). Every case runs the
``physiosync`` command in a child process, on a tiny synthetic DEAP and the cheapest
pipeline (band power), and checks one rule of docs/reliability.md:

* ``data-in-place``: subject files of a finished run's data are replaced by others of the
  same name and size (other draws of everything, or the same ratings with other signals),
  or only touched. Resuming the run must give the report of a
  fresh run on the data as it now is (``results.csv`` byte for byte).
* ``fold-edit``: one fold file of a finished run is edited (a number changed, a key
  dropped, the body replaced by valid JSON of another shape, truncated or emptied).
  Resuming, and re-rendering with ``physiosync report``, must give the untouched run's
  report, or (``report`` only) a one-line refusal.
* ``cache-meta``: the ``meta.json`` (the ratings) of one prepared-data cache entry is
  edited. The next run on that cache must say, on stderr, that the entry is damaged and
  give the untouched run's report.
* ``user-folder``: a writer (``cv``, ``cv --overwrite``, ``report FILE.json``, ``synth``,
  ``demo``, ``prepare --cache-dir``) is pointed at a folder that holds the user's own
  files (names drawn from a list that includes look-alikes of physiosync's own: hidden
  ``.tmp`` names, ``.tmp-*`` folders older than a day, ``report.json``, ``sXX.dat``, files
  inside ``folds/``). Every user file must be left byte-identical.

Every command must also end with exit status 0 or 2 (a refusal), with no traceback on
stderr. A case that breaks any rule is a finding, kept with the command and its stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

FAMILIES = ("data-in-place", "fold-edit", "cache-meta", "user-folder")

#: The study every case starts from (``CVB`` of the issue that asked for these checks).
CV_ARGS = ("--config", "tiny", "--dataset", "deap", "--pipelines", "bandpower",
           "--folds", "2", "--set", "protocol.pooled=true", "--device", "cpu", "-q")

#: Names of user files dropped into the folders writers are pointed at.
USER_NAMES = ("results.csv", "notes.txt", ".draft.tmp.md", ".env.tmp", ".tmp-notes",
              "report.json", "report.md", "s01.dat", ".s01.dat.tmp-123-abc", "config.yaml",
              ".physiosync-notes.txt")


def physiosync(*args, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run ``python -m physiosync ARGS`` on one thread; stdout and stderr captured."""
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-m", "physiosync", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


def _clean_exit(proc) -> str | None:
    """Why *proc* broke the one-line rule, or None."""
    if proc.returncode not in (0, 2):
        return f"exit status {proc.returncode}"
    if "Traceback" in proc.stderr or "Logging error" in proc.stderr:
        return "a traceback on stderr"
    if proc.returncode == 2 and not proc.stderr.strip():
        return "a refusal without a message"
    return None


def _snapshot(folder: Path) -> dict:
    """Relative path -> bytes of every file under *folder* (symlinks not followed)."""
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


class Bench:
    """The finished reference runs and the data they were made on, built once."""

    def __init__(self, work: Path):
        from physiosync.synthetic import make_deap

        self.work = work
        self.top = work / "deap"
        self.data = self.top / "data_preprocessed_python"
        # The same shapes with other content (same file names and sizes): other draws of
        # everything, or the same ratings with other signals (a weaker emotion effect).
        self.alt = {"replaced": work / "alt", "replaced-signals": work / "alt_signals"}
        for folder, seed, effect in ((self.data, 0, 2.0), (self.alt["replaced"], 1, 2.0),
                                     (self.alt["replaced-signals"], 0, 0.5)):
            make_deap(folder, n_subjects=3, n_trials=8, seconds=10.0, effect=effect,
                      seed=seed, verbose=False)
        self.original = {p.name: p.read_bytes() for p in self.data.glob("s*.dat")}
        self.mtimes = {p.name: p.stat().st_mtime_ns for p in self.data.glob("s*.dat")}
        # Two views of the same files: the files directly in the data root (they are in
        # the run's fingerprint), and DEAP's top folder (the fold files' content key).
        self.roots = {"flat": self.data, "nested": self.top}
        self.runs = {layout: work / f"run_{layout}" for layout in self.roots}
        # One cache per view (the entries of one are all that view's run opens); neither
        # is written after this: cases that change anything run on copies.
        self.caches = {layout: work / f"cache_{layout}" for layout in self.roots}
        for layout, run in self.runs.items():
            proc = self.cv(run, self.caches[layout], root=self.roots[layout])
            if proc.returncode:
                raise RuntimeError(f"the reference run failed: {proc.stderr[-2000:]}")
        self.run, self.cache = self.runs["flat"], self.caches["flat"]
        self.results = (self.run / "results.csv").read_bytes()

    def cv(self, out: Path, cache: Path, *extra, root=None) -> subprocess.CompletedProcess:
        return physiosync("cv", *CV_ARGS, "--data-root", root or self.data, "--cache-dir",
                          cache, "--out", out, *extra)

    def cache_copy(self, name: str, layout: str = "flat") -> Path:
        copy = self.work / name
        shutil.copytree(self.caches[layout], copy)
        return copy

    def restore_data(self) -> None:
        """The data as the reference runs saw them, modification times included (the
        cache keys its entries on them), so that the reference caches stay valid."""
        for name, blob in self.original.items():
            path = self.data / name
            if path.read_bytes() != blob:
                path.write_bytes(blob)
            os.utime(path, ns=(self.mtimes[name], self.mtimes[name]))


# ---- the families ------------------------------------------------------------------------
def case_data_in_place(bench: Bench, i: int, rng) -> dict:
    """Replace (or only touch) subject files in place, then resume the finished run.

    Changed files directly in the data root make it another run: a refusal naming a
    changed file is the right answer, and ``--overwrite`` must then give a fresh run's
    results. Under DEAP's top folder the resume must recompute every fold the changed
    files fed. Touched files (same bytes) must resume as they are.
    """
    bench.restore_data()
    layout = ["flat", "nested"][int(rng.integers(0, 2))]
    root = bench.roots[layout]
    run = bench.work / f"data_{i:03d}"
    shutil.copytree(bench.runs[layout], run)
    cache = bench.cache_copy(f"data_{i:03d}_cache", layout)
    names = sorted(bench.original)
    touched = sorted(rng.choice(names, size=int(rng.integers(1, len(names) + 1)),
                                replace=False))
    kind = ["replaced", "replaced-signals", "touched"][int(rng.integers(0, 3))]
    for name in touched:
        path = bench.data / name
        if kind == "touched":  # the same bytes, a new modification time
            os.utime(path, None)
            continue
        blob = (bench.alt[kind] / name).read_bytes()
        assert len(blob) == path.stat().st_size, "the alternative data must match in size"
        path.write_bytes(blob)
    resumed = bench.cv(run, cache, root=root)
    why = _clean_exit(resumed)
    if why is None and resumed.returncode == 2:
        if kind == "touched" or layout == "nested":
            why = f"the resume was refused: {resumed.stderr.strip()}"
        elif "data file s" not in resumed.stderr:
            why = f"the refusal does not name the changed file: {resumed.stderr.strip()}"
        else:  # refused, rightly: replacing the run must give the fresh results
            resumed = bench.cv(run, cache, "--overwrite", root=root)
            why = _clean_exit(resumed) or (None if resumed.returncode == 0 else
                                           f"--overwrite failed: {resumed.stderr.strip()}")
    fresh_dir = bench.work / f"data_{i:03d}_fresh"
    fresh = bench.cv(fresh_dir, bench.work / f"data_{i:03d}_fresh_cache", root=root)
    why = why or _clean_exit(fresh)
    if why is None:
        if (run / "results.csv").read_bytes() != (fresh_dir / "results.csv").read_bytes():
            why = "the resumed run's results differ from a fresh run on the changed data"
    bench.restore_data()
    for folder in (fresh_dir, bench.work / f"data_{i:03d}_fresh_cache", cache, run):
        shutil.rmtree(folder, ignore_errors=True)
    return {"what": f"{kind} {', '.join(touched)} ({layout})", "finding": why,
            "stderr": resumed.stderr[-1500:]}


def _edit_json(text: str, rng) -> tuple[str, str]:
    """One edit of a fold file's text, and its name."""
    kind = ["number", "drop-key", "shape", "truncate", "empty"][int(rng.integers(0, 5))]
    if kind == "shape":
        return "[1, 2, 3]", kind
    if kind == "truncate":
        return text[: int(rng.integers(1, max(2, len(text) - 1)))], kind
    if kind == "empty":
        return "", kind
    doc = json.loads(text)
    if kind == "drop-key":
        keys = sorted(doc)
        doc.pop(keys[int(rng.integers(0, len(keys)))])
        return json.dumps(doc), kind
    leaves = []  # (container, key) of every number

    def walk(node):
        items = node.items() if isinstance(node, dict) else enumerate(node)
        for k, v in items:
            if isinstance(v, bool):
                continue
            if isinstance(v, (int, float)):
                leaves.append((node, k))
            elif isinstance(v, (dict, list)):
                walk(v)

    walk(doc)
    node, key = leaves[int(rng.integers(0, len(leaves)))]
    node[key] = node[key] * 1.37 + 0.1 if isinstance(node[key], float) else node[key] + 1
    return json.dumps(doc), kind


def case_fold_edit(bench: Bench, i: int, rng) -> dict:
    """Edit one fold file of a finished run, then resume it and re-render its report."""
    run = bench.work / f"fold_{i:03d}"
    shutil.copytree(bench.run, run)
    folds = sorted((run / "folds").rglob("fold_*.json"))
    target = folds[int(rng.integers(0, len(folds)))]
    text, kind = _edit_json(target.read_text(), rng)
    target.write_text(text)
    what = f"{kind} in {target.relative_to(run)}"
    rendered = physiosync("report", run)
    why = _clean_exit(rendered)
    if why is None and rendered.returncode == 0 and (run / "results.csv").read_bytes() \
            != bench.results:
        why = "`report` rendered the edited fold file"
    resumed = bench.cv(run, bench.cache)
    why = why or _clean_exit(resumed)
    if why is None and resumed.returncode != 0:
        why = f"the resume was refused: {resumed.stderr.strip()}"
    if why is None and (run / "results.csv").read_bytes() != bench.results:
        why = "the resumed run's results differ from the untouched run's"
    shutil.rmtree(run, ignore_errors=True)
    return {"what": what, "finding": why, "stderr": (rendered.stderr + resumed.stderr)[-1500:]}


def case_cache_meta(bench: Bench, i: int, rng) -> dict:
    """Edit the ratings (meta.json) of one cache entry: the next run must say the entry
    is damaged, recompute it and give the untouched run's results."""
    bench.restore_data()
    cache = bench.cache_copy(f"cache_{i:03d}")
    metas = sorted(cache.rglob("meta.json"))
    target = metas[int(rng.integers(0, len(metas)))]
    text = target.read_text()
    kind = ["rating", "empty-list", "truncate"][int(rng.integers(0, 3))]
    if kind == "empty-list":
        target.write_text("[]")
    elif kind == "truncate":
        target.write_text(text[: len(text) // 2])
    else:
        doc = json.loads(text)
        if not _edit_ratings(doc.get("ratings", doc), rng):
            raise RuntimeError(f"no rating to edit in {target}")
        target.write_text(json.dumps(doc))
    what = f"{kind} in {target.relative_to(cache)}"
    run = bench.work / f"cache_{i:03d}_run"
    proc = bench.cv(run, cache)
    why = _clean_exit(proc)
    if why is None and target.parent.name not in proc.stderr:
        why = "the run did not say that the edited cache entry is damaged"
    if why is None and (proc.returncode != 0 or (run / "results.csv").read_bytes()
                        != bench.results):
        why = "a run on the edited cache gave other results"
    shutil.rmtree(run, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    return {"what": what, "finding": why, "stderr": proc.stderr[-1500:]}


def _edit_ratings(doc, rng) -> bool:
    """Change one number in the first list of numbers found in *doc* (the ratings)."""
    stack = [doc]
    while stack:
        node = stack.pop()
        items = list(node.items()) if isinstance(node, dict) else list(enumerate(node))
        for k, v in items:
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                node[k] = v + float(rng.uniform(0.5, 3.0))
                return True
            if isinstance(v, (dict, list)):
                stack.append(v)
    return False


def _plant(folder: Path, rng, extra=()) -> None:
    """Drop 1-4 user files (and perhaps an old ``.tmp-*`` folder) into *folder*."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(rng.choice(USER_NAMES, size=int(rng.integers(1, 5)), replace=False))
    for name in [*names, *extra]:
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"the user's own " + name.encode() + rng.bytes(8))
    if rng.integers(0, 2):
        old = folder / ".tmp-someone-else"
        old.mkdir(exist_ok=True)
        (old / "keep.txt").write_text("not physiosync's")
        past = time.time() - 3 * 86400
        os.utime(old / "keep.txt", (past, past))
        os.utime(old, (past, past))


WRITERS = ("cv", "cv-overwrite", "report-file", "synth", "demo", "prepare-cache")


def case_user_folder(bench: Bench, i: int, rng) -> dict:
    """Point one writer at a folder of user files; every user file must survive."""
    writer = WRITERS[int(rng.integers(0, len(WRITERS)))]
    folder = bench.work / f"user_{i:03d}"
    if writer == "cv-overwrite":  # a finished run, with user files among its own
        shutil.copytree(bench.run, folder)
        _plant(folder / "folds", rng)
        _plant(folder, rng, extra=[".notes.tmp"])
    elif writer == "demo":  # a DEAP copy: data the demo did not write
        _plant(folder, rng, extra=["data_preprocessed_python/s01.dat"])
    else:
        _plant(folder, rng)
    before = _snapshot(folder)
    if writer == "cv-overwrite":
        before = {k: v for k, v in before.items() if k not in _snapshot(bench.run)}
    cmd = {
        "cv": ("cv", *CV_ARGS, "--data-root", bench.data, "--cache-dir", bench.cache,
               "--out", folder),
        "cv-overwrite": ("cv", *CV_ARGS, "--data-root", bench.data, "--cache-dir",
                         bench.cache, "--out", folder, "--overwrite", "--set", "seed=7"),
        "report-file": ("report", bench.run / "report.json", "--out", folder),
        "synth": ("synth", "deap", folder, "--subjects", "2", "--trials", "2",
                  "--seconds", "4"),
        "demo": ("demo", "--out", folder, "--subjects", "2", "--trials", "4", "--seconds",
                 "8", "-q"),
        "prepare-cache": ("prepare", "deap", bench.data, "--cache-dir", folder),
    }[writer]
    proc = physiosync(*cmd)
    why = _clean_exit(proc)
    after = _snapshot(folder) if folder.exists() else {}
    lost = [name for name, blob in before.items() if after.get(name) != blob]
    if why is None and lost:
        why = f"user files changed or deleted: {', '.join(lost[:5])}"
    shutil.rmtree(folder, ignore_errors=True)
    return {"what": f"{writer} into a folder with {', '.join(sorted(before)[:6])}",
            "finding": why, "stderr": proc.stderr[-1500:]}


CASES = {"data-in-place": case_data_in_place, "fold-edit": case_fold_edit,
         "cache-meta": case_cache_meta, "user-folder": case_user_folder}


def run_integrity(n: int, seed: int, work: Path, families=FAMILIES) -> dict:
    """*n* cases of each family; a summary with every finding."""
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.monotonic()
    bench = Bench(work)
    out = {"seed": seed, "families": {}}
    for f, family in enumerate(families):
        rng = np.random.default_rng([seed, f])
        cases = []
        t1 = time.monotonic()
        for i in range(n):
            cases.append(CASES[family](bench, i, rng))
        out["families"][family] = {
            "cases": n, "findings": [c for c in cases if c["finding"]],
            "kinds": sorted({c["what"].split(" ")[0] for c in cases}),
            "wall_s": round(time.monotonic() - t1, 1)}
    out["wall_s"] = round(time.monotonic() - t0, 1)
    out["findings"] = sum(len(f["findings"]) for f in out["families"].values())
    return out


def integrity_markdown(result: dict) -> str:
    lines = [f"Integrity families, seed {result['seed']}: "
             f"{sum(f['cases'] for f in result['families'].values())} cases, "
             f"{result['findings']} findings, {result['wall_s']:.0f} s.", "",
             "| family | cases | findings | kinds of change | wall (s) |",
             "|---|---|---|---|---|"]
    for name, f in result["families"].items():
        lines.append(f"| {name} | {f['cases']} | {len(f['findings'])} | "
                     f"{', '.join(f['kinds'])} | {f['wall_s']} |")
    for name, f in result["families"].items():
        for c in f["findings"]:
            lines.append(f"\n- **{name}**: {c['what']}: {c['finding']}")
    return "\n".join(lines) + "\n"
