# Shared by the recipes: run or (DRY_RUN=1) print one `physiosync` command.
# EXTRA_ARGS (a bash array set by the recipe from "$@") is appended to every command,
# so that e.g. `--config configs/tiny.yaml --folds 2` turns a recipe into a smoke test.
set -euo pipefail
PHYSIOSYNC=${PHYSIOSYNC:-physiosync}
TARGETS=${TARGETS:-"valence arousal"}
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
CONFIGS="$(cd "$HERE/../configs" && pwd)"

run() {
    if [[ "${DRY_RUN:-0}" == 1 ]]; then
        printf '%q ' "$PHYSIOSYNC" "$@"
        printf '\n'
    else
        echo "+ physiosync $*" >&2
        "$PHYSIOSYNC" "$@"
    fi
}

# need_args N "ARGS..." "$@": exit with a usage line unless at least N arguments are given.
need_args() {
    local n=$1 usage=$2
    shift 2
    if [[ $# -lt $n ]]; then
        echo "usage: $(basename "$0") $usage [extra physiosync cv options]" >&2
        exit 2
    fi
}

# two_dataset_args "$@": DEAP_ROOT, DREAMER_MAT, OUT and EXTRA_ARGS of a recipe that runs on
# both datasets ("-" skips one); exits with a usage line when an argument is missing.
two_dataset_args() {
    need_args 3 "DEAP_ROOT|- DREAMER_MAT|- OUT_DIR" "$@"
    DEAP_ROOT=$1 DREAMER_MAT=$2 OUT=$3
    EXTRA_ARGS=("${@:4}")
}

# cv_on_both SETTING TARGET TAG [LAYER]: `physiosync cv` with configs/<dataset>_SETTING.yaml
# (and configs/<dataset>_LAYER.yaml over it) on DEAP, then DREAMER, each unless skipped,
# writing OUT/<dataset>_TAG_TARGET.
cv_on_both() {
    local setting=$1 target=$2 tag=$3 layer=${4:-} dataset root
    for dataset in deap dreamer; do
        root=$DEAP_ROOT
        [[ $dataset == dreamer ]] && root=$DREAMER_MAT
        [[ "$root" == - ]] && continue
        local configs=(--config "$CONFIGS/${dataset}_$setting.yaml")
        [[ -n "$layer" ]] && configs+=(--config "$CONFIGS/${dataset}_$layer.yaml")
        run cv "${configs[@]}" --dataset "$dataset" --data-root "$root" --target "$target" \
            --out "$OUT/${dataset}_${tag}_$target" "${EXTRA_ARGS[@]}"
    done
}
