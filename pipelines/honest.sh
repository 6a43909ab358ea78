#!/usr/bin/env bash
# The honest protocols on DEAP and DREAMER: within-subject (held-out stimuli for every
# subject), cross-subject (held-out subjects) and subject-stimulus (held-out subjects on
# held-out stimuli), PhysioSync next to the band-power baseline (and, across subjects, the
# stimulus-prior baseline), one report per dataset x protocol x target. Pass "-" to skip a
# dataset.
#
#   pipelines/honest.sh DEAP_ROOT DREAMER_MAT OUT_DIR [extra physiosync cv options]
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
need_args 3 "DEAP_ROOT|- DREAMER_MAT|- OUT_DIR" "$@"
DEAP_ROOT=$1 DREAMER_MAT=$2 OUT=$3
shift 3
EXTRA_ARGS=("$@")
for target in $TARGETS; do
    for setting in within cross subject_stimulus; do
        if [[ "$DEAP_ROOT" != - ]]; then
            run cv --config "$CONFIGS/deap_$setting.yaml" --dataset deap \
                --data-root "$DEAP_ROOT" --target "$target" \
                --out "$OUT/deap_${setting}_$target" "${EXTRA_ARGS[@]}"
        fi
        if [[ "$DREAMER_MAT" != - ]]; then
            run cv --config "$CONFIGS/dreamer_$setting.yaml" --dataset dreamer \
                --data-root "$DREAMER_MAT" --target "$target" \
                --out "$OUT/dreamer_${setting}_$target" "${EXTRA_ARGS[@]}"
        fi
    done
done
