#!/usr/bin/env bash
# The honest protocols on AMIGOS, MAHNOB-HCI, SEED and SEED-IV, PhysioSync next to the
# band-power baseline (and, where test stimuli may be in training, the stimulus-prior
# baseline), one report per dataset x protocol x target: within-subject (held-out stimuli
# for every subject) and cross-subject on every dataset, cross-session on SEED and SEED-IV,
# and SEED's customary first-9/last-6 split. Pass "-" to skip a dataset. TARGETS defaults to
# "valence arousal" on AMIGOS and MAHNOB-HCI and to "emotion" on SEED and SEED-IV.
#
#   pipelines/more_datasets.sh AMIGOS_ROOT MAHNOB_SESSIONS SEED_PREPROCESSED SEED_IV_ROOT OUT_DIR
source "$(dirname "${BASH_SOURCE[0]}")/_common.sh"
need_args 5 "AMIGOS_ROOT|- MAHNOB_SESSIONS|- SEED_PREPROCESSED_EEG|- SEED_IV_ROOT|- OUT_DIR" "$@"
ROOTS=("$1" "$2" "$3" "$4")
OUT=$5
EXTRA_ARGS=("${@:6}")
DATASETS=(amigos mahnob seed seed-iv)
for i in 0 1 2 3; do
    dataset=${DATASETS[$i]} root=${ROOTS[$i]}
    [[ "$root" == - ]] && continue
    settings=(within cross)
    [[ $dataset == seed || $dataset == seed-iv ]] && settings+=(cross_session)
    [[ $dataset == seed ]] && settings+=(session_split)
    for target in $(targets_for "$dataset"); do
        for setting in "${settings[@]}"; do
            run cv --config "$(preset_name "$dataset" "$setting")" --dataset "$dataset" \
                --data-root "$root" --target "$target" \
                --out "$OUT/${dataset}_${setting}_$target" "${EXTRA_ARGS[@]}"
        done
    done
done
