#!/usr/bin/env bash
# The ablation table on DEAP under the honest within-subject protocol, in one run per
# target: the full model; the ablations no CM-CA, short-only, long-only, EEG-only, no
# pre-training and frozen encoders; and the baselines EEG-only SimCLR (the same encoders,
# plain contrastive pre-training), differential entropy + LR / SVM, EEGNet,
# ShallowFBCSPNet and band powers + LR. Every pipeline runs on the same folds, and the
# report gives each one's paired per-subject difference against the full model.
# The pipelines are listed in the preset deap_ablations; eegnet and shallow-fbcsp need
# the optional dependency (pip install "physiosync[deep]").
#
#   pipelines/ablations.sh DEAP_ROOT OUT_DIR [extra physiosync cv options]
#
# Writes OUT_DIR/deap_ablations_<target>/ (report.html, report.md, report.json,
# results.csv); the same command, run again after an interruption, continues at the
# next unfinished fold.
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
need_args 2 "DEAP_ROOT OUT_DIR" "$@"
DEAP_ROOT=$1 OUT=$2
shift 2
EXTRA_ARGS=("$@")
for target in $TARGETS; do
    run cv --config deap_within --config deap_ablations \
        --dataset deap --data-root "$DEAP_ROOT" --target "$target" \
        --out "$OUT/deap_ablations_$target" "${EXTRA_ARGS[@]}"
done
