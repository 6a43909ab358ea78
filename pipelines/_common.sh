# Shared by the recipes: run or (DRY_RUN=1) print one `physiosync` command.
# EXTRA_ARGS (a bash array set by the recipe from "$@") is appended to every command,
# so that e.g. `--config tiny --folds 2` turns a recipe into a smoke test.
set -euo pipefail
# TARGETS: the targets of every command; unset, each dataset's own (targets_for).
TARGETS_GIVEN=${TARGETS:-}
TARGETS=${TARGETS:-"valence arousal"}
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PHYSIOSYNC_CMD=()

# find_physiosync: set PHYSIOSYNC_CMD to the physiosync command of the environment the recipe
# is run with: $PHYSIOSYNC if set; else the `physiosync` on PATH (an activated environment);
# else the checkout's .venv/bin/physiosync (the README's Quick start, not activated); else
# `$PYTHON -m physiosync` (PYTHON defaults to python3) where that Python has physiosync.
# Exits 127 with one line saying what to do when there is none.
find_physiosync() {
    local python=${PYTHON:-python3}
    if [[ -n "${PHYSIOSYNC:-}" ]]; then
        command -v "$PHYSIOSYNC" >/dev/null 2>&1 && PHYSIOSYNC_CMD=("$PHYSIOSYNC")
    elif command -v physiosync >/dev/null 2>&1; then
        PHYSIOSYNC_CMD=(physiosync)
    elif [[ -x "$HERE/../.venv/bin/physiosync" ]]; then
        PHYSIOSYNC_CMD=("$(cd "$HERE/.." && pwd)/.venv/bin/physiosync")
    elif "$python" -c "import physiosync.cli" >/dev/null 2>&1; then
        PHYSIOSYNC_CMD=("$python" -m physiosync)
    fi
    if [[ ${#PHYSIOSYNC_CMD[@]} == 0 ]]; then
        if [[ -n "${PHYSIOSYNC:-}" ]]; then
            echo "$(basename "$0"): PHYSIOSYNC=$PHYSIOSYNC is not a command; set it to the" \
                "physiosync executable, e.g. PHYSIOSYNC=.venv/bin/physiosync" >&2
        else
            echo "$(basename "$0"): physiosync not found (not on PATH, no .venv in $(cd \
                "$HERE/.." && pwd), and $python cannot import it); activate the environment" \
                "it is installed in (source .venv/bin/activate), or set" \
                "PHYSIOSYNC=/path/to/bin/physiosync or PYTHON=/path/to/python" >&2
        fi
        exit 127
    fi
}

run() {
    [[ ${#PHYSIOSYNC_CMD[@]} == 0 ]] && find_physiosync
    if [[ "${DRY_RUN:-0}" == 1 ]]; then
        printf '%q ' "${PHYSIOSYNC_CMD[@]}" "$@"
        printf '\n'
    else
        echo "+ ${PHYSIOSYNC_CMD[*]} $*" >&2
        "${PHYSIOSYNC_CMD[@]}" "$@"
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

# cv_on_both SETTING TARGET TAG [LAYER]: `physiosync cv` with the preset <dataset>_SETTING
# (and the preset <dataset>_LAYER over it) on DEAP, then DREAMER, each unless skipped,
# writing OUT/<dataset>_TAG_TARGET.
cv_on_both() {
    local setting=$1 target=$2 tag=$3 layer=${4:-} dataset root
    for dataset in deap dreamer; do
        root=$DEAP_ROOT
        [[ $dataset == dreamer ]] && root=$DREAMER_MAT
        [[ "$root" == - ]] && continue
        local configs=(--config "${dataset}_$setting")
        [[ -n "$layer" ]] && configs+=(--config "${dataset}_$layer")
        run cv "${configs[@]}" --dataset "$dataset" --data-root "$root" --target "$target" \
            --out "$OUT/${dataset}_${tag}_$target" "${EXTRA_ARGS[@]}"
    done
}

# targets_for DATASET: $TARGETS when the user set it, else "valence arousal", or "emotion" on
# the datasets rated by clip class only (SEED, SEED-IV).
targets_for() {
    if [[ -n "$TARGETS_GIVEN" ]]; then
        echo "$TARGETS_GIVEN"
    elif [[ $1 == seed || $1 == seed-iv ]]; then
        echo emotion
    else
        echo "valence arousal"
    fi
}

# preset_name DATASET SETTING: the preset of DATASET's SETTING (seed-iv, within -> seed_iv_within).
preset_name() {
    echo "${1//-/_}_$2"
}
