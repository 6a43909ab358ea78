#!/usr/bin/env bash
# The honest protocols on DEAP and DREAMER: within-subject (held-out stimuli for every
# subject), cross-subject (held-out subjects) and subject-stimulus (held-out subjects on
# held-out stimuli), PhysioSync next to the band-power baseline (and, across subjects, the
# stimulus-prior baseline), one report per dataset x protocol x target. Pass "-" to skip a
# dataset.
#
#   pipelines/honest.sh DEAP_ROOT DREAMER_MAT OUT_DIR [extra physiosync cv options]
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
two_dataset_args "$@"
for target in $TARGETS; do
    for setting in within cross subject_stimulus; do
        cv_on_both "$setting" "$target" "$setting"
    done
done
