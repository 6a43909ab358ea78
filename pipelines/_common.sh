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
