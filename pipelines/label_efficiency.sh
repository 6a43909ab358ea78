#!/usr/bin/env bash
# Label efficiency on DEAP and DREAMER: every pipeline of *_label_efficiency.yaml at each
# budget of labelled training trials per subject, under within-subject held-out stimuli and
# under held-out subjects on held-out stimuli (subject-stimulus-kfold), one report per
# dataset x protocol x target with the curves and their areas. Pass "-" to skip a dataset.
#
#   pipelines/label_efficiency.sh DEAP_ROOT DREAMER_MAT OUT_DIR [extra physiosync cv options]
#
# Writes OUT_DIR/<dataset>_<protocol>_label_efficiency_<target>/; the same command, run
# again after an interruption, continues at the next unfinished fold.
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
need_args 3 "DEAP_ROOT|- DREAMER_MAT|- OUT_DIR" "$@"
DEAP_ROOT=$1 DREAMER_MAT=$2 OUT=$3
shift 3
EXTRA_ARGS=("$@")
for target in $TARGETS; do
    for setting in within subject_stimulus; do
        if [[ "$DEAP_ROOT" != - ]]; then
            run cv --config "$CONFIGS/deap_$setting.yaml" \
                --config "$CONFIGS/deap_label_efficiency.yaml" --dataset deap \
                --data-root "$DEAP_ROOT" --target "$target" \
                --out "$OUT/deap_${setting}_label_efficiency_$target" "${EXTRA_ARGS[@]}"
        fi
        if [[ "$DREAMER_MAT" != - ]]; then
            run cv --config "$CONFIGS/dreamer_$setting.yaml" \
                --config "$CONFIGS/dreamer_label_efficiency.yaml" --dataset dreamer \
                --data-root "$DREAMER_MAT" --target "$target" \
                --out "$OUT/dreamer_${setting}_label_efficiency_$target" "${EXTRA_ARGS[@]}"
        fi
    done
done
