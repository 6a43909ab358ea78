"""
Cross-validate with an honest protocol and read the report
==========================================================

:func:`physiosync.run_experiment` runs a configuration: here the demo's small model on a
synthetic DEAP, under ``within-trial-kfold`` (every fold holds out whole videos of every
subject). The report leads with the per-subject headline, puts its chance level beside it,
and tests it with a permutation null that shuffles labels within subjects.
"""

# %%
import tempfile
from pathlib import Path

import physiosync
from physiosync.synthetic import make_deap

work = Path(tempfile.mkdtemp())
root = make_deap(work / "deap", n_subjects=4, n_trials=8, seconds=15, effect=3.0, seed=3,
                 verbose=False)
cfg = physiosync.load_config(
    ["demo", "tiny"],
    ["protocol.name=within-trial-kfold", "protocol.n_splits=2", "protocol.permutations=200",
     "pipelines=[physiosync, bandpower, stimulus-prior]", "threads=1"],
    data={"root": str(root), "cache_dir": str(work / "cache")})
result = physiosync.run_experiment(cfg, work / "run", html=False, verbose=False)
report = result["report"]

# %%
# The headline of each pipeline, its chance level and its permutation p-value.
for name, part in report["pipelines"].items():
    head, p = part["headline"], (part.get("p_value") or {}).get("p_value")
    print(f"{name:15s} {head['metric']} = {head['mean']:.2f} (chance {head['chance']:.2f}), "
          f"p = {p}")
print((work / "run" / "report.md").read_text()[:1200])
