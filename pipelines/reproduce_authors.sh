#!/usr/bin/env bash
# Reproduce the authors' DEAP table: legacy-segment protocol (random window folds, pooled
# model), their hyper-parameters (the preset deap_legacy). The reports carry a leakage
# warning: these numbers measure trial identification, not emotion recognition.
#
#   pipelines/reproduce_authors.sh DEAP_ROOT OUT_DIR [extra physiosync cv options]
#   TARGETS="valence arousal four" pipelines/reproduce_authors.sh ~/data/DEAP runs/legacy
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
need_args 2 "DEAP_ROOT OUT_DIR" "$@"
DEAP_ROOT=$1 OUT=$2
shift 2
EXTRA_ARGS=("$@")
for target in $TARGETS; do
    run cv --config deap_legacy --dataset deap --data-root "$DEAP_ROOT" \
        --target "$target" --out "$OUT/deap_legacy_$target" "${EXTRA_ARGS[@]}"
done
