"""
Compare baselines on the same folds
===================================

Every pipeline of a study runs on the same folds, so PhysioSync can be compared with each
baseline pair by pair. Here band power, differential entropy with logistic regression and
the stimulus prior (what knowing the video alone is worth) run beside PhysioSync on a small
synthetic DEAP; the report gives each pipeline's per-subject headline with its chance level
and each paired difference with its interval and test, paired at the level where the
models are independent.
"""

# %%
import tempfile
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import physiosync
from physiosync.synthetic import make_deap

work = Path(tempfile.mkdtemp())
root = make_deap(work / "deap", n_subjects=4, n_trials=8, seconds=15, effect=3.0, seed=4,
                 verbose=False)
cfg = physiosync.load_config(
    ["demo", "tiny"],
    ["protocol.n_splits=2", "protocol.permutations=0", "threads=1",
     "pipelines=[physiosync, bandpower, de-lr, stimulus-prior]"],
    data={"root": str(root), "cache_dir": str(work / "cache")})
report = physiosync.run_experiment(cfg, work / "run", html=False, verbose=False)["report"]

# %%
# The paired differences, PhysioSync minus each baseline.
for comp in report["comparisons"]:
    low, high = comp["ci95"]
    print(f"physiosync - {comp['baseline']:15s} {comp['mean']:+.3f} [{low:+.3f}, {high:+.3f}]"
          f"  p = {comp['p_value']:.3g}  (paired by {comp['level']})")

# %%
# Each pipeline's headline with its chance level beside it.
names = list(report["pipelines"])
heads = [report["pipelines"][n]["headline"] for n in names]
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(names, [h["mean"] for h in heads], yerr=[h["std"] for h in heads], color="0.6")
ax.plot([-0.5, len(names) - 0.5], [heads[0]["chance"]] * 2, "k--", label="chance")
ax.set(ylabel=heads[0]["metric"], ylim=(0, 1))
ax.legend()
fig.tight_layout()
print(np.round([h["mean"] for h in heads], 3))
