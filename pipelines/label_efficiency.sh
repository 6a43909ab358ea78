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
two_dataset_args "$@"
for target in $TARGETS; do
    for setting in within subject_stimulus; do
        cv_on_both "$setting" "$target" "${setting}_label_efficiency" label_efficiency
    done
done
