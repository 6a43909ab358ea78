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
