"""
Run a study on several processes
================================

A study is a grid of independent (pipeline, fold) units. The ``processes`` executor runs
them on worker processes of this machine (``ray`` runs them on a cluster); the fold files
and the report are the same as in one process, and an interrupted study resumes from its
finished units under any executor.

Worker processes start a fresh interpreter that imports the script, so a script that runs a
study in processes keeps its work under ``if __name__ == "__main__":``.
"""

# %%
import json
import tempfile
from pathlib import Path

import physiosync
from physiosync.execution import make_executor
from physiosync.synthetic import make_deap


def main():
    work = Path(tempfile.mkdtemp())
    root = make_deap(work / "deap", n_subjects=3, n_trials=8, seconds=15, seed=5,
                     verbose=False)
    cfg = physiosync.load_config(
        ["demo", "tiny"], ["protocol.n_splits=2", "protocol.permutations=0",
                           "pipelines=[bandpower, de-lr]"],
        data={"root": str(root), "cache_dir": str(work / "cache")})

    executor = make_executor("processes", n_jobs=2, threads=1)
    result = physiosync.run_experiment(cfg, work / "run", executor=executor, html=False,
                                       verbose=False)
    print(executor.describe())
    print(sorted(p.name for p in (work / "run").rglob("fold*.json"))[:4])

    # Run again: every unit is finished, so nothing is recomputed and the report is the
    # same.
    again = physiosync.run_experiment(cfg, work / "run", executor="serial", html=False,
                                      verbose=False)
    same = json.dumps(result["report"]["pipelines"], sort_keys=True) == json.dumps(
        again["report"]["pipelines"], sort_keys=True)
    print("same report after resuming in one process:", same)


if __name__ == "__main__":
    main()
