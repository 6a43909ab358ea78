#!/usr/bin/env bash
# The whole baseline suite on held-out stimuli (within-trial-kfold): PhysioSync first, then
# every baseline on the same folds, in one report per target whose table gives each
# pipeline's per-subject headline with its chance level and permutation p-value, and its
# paired difference to PhysioSync with a 95 % interval and p-value.
# DATA is a DEAP folder (the preset deap_baselines) or a DREAMER.mat file
# (dreamer_baselines); DATASET=deap|dreamer overrides the guess.
#
#   pipelines/baselines.sh DATA OUT_DIR [extra physiosync cv options]
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
need_args 2 "DEAP_ROOT|DREAMER_MAT OUT_DIR" "$@"
DATA=$1 OUT=$2
shift 2
EXTRA_ARGS=("$@")
if [[ -z "${DATASET:-}" ]]; then
    if [[ "$DATA" == *.mat ]]; then DATASET=dreamer; else DATASET=deap; fi
fi
if [[ "$DATASET" != deap && "$DATASET" != dreamer ]]; then
    echo "$(basename "$0"): DATASET must be deap or dreamer, not '$DATASET'" >&2
    exit 2
fi
for target in $TARGETS; do
    run cv --config "${DATASET}_baselines" --dataset "$DATASET" \
        --data-root "$DATA" --target "$target" \
        --out "$OUT/${DATASET}_baselines_$target" "${EXTRA_ARGS[@]}"
done
