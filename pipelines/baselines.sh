#!/usr/bin/env bash
# The whole baseline suite on held-out stimuli (within-trial-kfold): PhysioSync first, then
# every baseline on the same folds, in one report per target whose table gives each
# pipeline's per-subject headline with its chance level and permutation p-value, and its
# paired difference to PhysioSync with a 95 % interval and p-value.
# DATA is a DEAP folder (the preset deap_baselines) or a DREAMER.mat file
# (dreamer_baselines); DATASET=deap|dreamer|amigos|mahnob|seed|seed-iv says which dataset
# DATA is (needed for the last four). TARGETS defaults to "valence arousal", and to
# "emotion" on SEED and SEED-IV.
#
#   pipelines/baselines.sh DATA OUT_DIR [extra physiosync cv options]
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
need_args 2 "DATA OUT_DIR" "$@"
DATA=$1 OUT=$2
shift 2
EXTRA_ARGS=("$@")
if [[ -z "${DATASET:-}" ]]; then
    if [[ "$DATA" == *.mat ]]; then DATASET=dreamer; else DATASET=deap; fi
fi
case "$DATASET" in
    deap|dreamer|amigos|mahnob|seed|seed-iv) ;;
    *) echo "$(basename "$0"): DATASET must be one of deap, dreamer, amigos, mahnob, seed," \
            "seed-iv, not '$DATASET'" >&2
       exit 2 ;;
esac
for target in $(targets_for "$DATASET"); do
    run cv --config "$(preset_name "$DATASET" baselines)" --dataset "$DATASET" \
        --data-root "$DATA" --target "$target" \
        --out "$OUT/${DATASET}_baselines_$target" "${EXTRA_ARGS[@]}"
done
