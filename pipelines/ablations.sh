#!/usr/bin/env bash
# The ablations on DEAP under the honest within-subject protocol: no CM-CA, no LS-TCL
# (short-only), EEG-only and no pre-training, next to the full model and the band-power
# baseline, on the same folds, in one report per target with paired per-subject
# differences against the full model.
#
#   pipelines/ablations.sh DEAP_ROOT OUT_DIR [extra physiosync cv options]
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
need_args 2 "DEAP_ROOT OUT_DIR" "$@"
DEAP_ROOT=$1 OUT=$2
shift 2
EXTRA_ARGS=("$@")
for target in $TARGETS; do
    run cv --config "$CONFIGS/deap_within.yaml" --config "$CONFIGS/deap_ablations.yaml" \
        --dataset deap --data-root "$DEAP_ROOT" --target "$target" \
        --out "$OUT/deap_ablations_$target" "${EXTRA_ARGS[@]}"
done
