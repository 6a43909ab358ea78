#!/usr/bin/env bash
# The GPU checks of physiosync on a CUDA machine, in two calls that each fit in 7 minutes:
#   bash benchmarks/gpu_check.sh part1   # the gpu-marked tests, then the engine's probes
#   bash benchmarks/gpu_check.sh part2   # CUDA graphs against eager, then the throughputs
#   bash benchmarks/gpu_check.sh study   # optional, a call of its own: a full-size study
# docs/scaling.md ("Checking on a GPU") says how to call them and what to read.
#
# Prepare once, on a machine with the package index (the GPU machine reaches nothing; its
# image has Python 3.12 and torch, numpy, scipy, scikit-learn, pandas, matplotlib, pyyaml,
# tqdm, jinja2, lazy-loader and timm, but not mne):
#   printf '/.whl/\n/.authors/\n' >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl mne==1.13.2 pyedflib==0.1.42 pooch decorator platformdirs
#   git clone https://github.com/MSA-LMC/PhysioSync .authors     # optional: the authors' code
# then carry .whl (and .authors). A wheel that does not install is recorded and the checks
# go on without it (the tests that need it fail or are not collected; the run says which).
#
# Output, under ${OUT:-.}: gpu_check.jsonl (one JSON line per measurement, each with the
# torch/CUDA/cuDNN/GPU/driver versions, appended as soon as it is taken, so a run stopped
# by a time limit keeps what finished), gpu_check_<part>.err (every command's stderr),
# and for part1 gpu_tests.log (pytest's full output), gpu_tests.xml (JUnit) and
# torch_logs.txt (TORCH_LOGS=recompiles,graph_breaks of the compile probe).
#
# Every measurement runs under `timeout`: its own cap, cut to what is left of the part's
# budget (BUDGET_S: 390 s, 7 minutes less the wheels and start-up; 570 s for study); one
# that would get under 15 s is recorded as skipped. A failure or timeout is a JSON line too.
#
# A smoke test of the script on the CPU (what tests/meta/test_gpu_probes.py runs):
#   DEVICE=cpu QUICK=1 SKIP_WHEELS=1 PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh part1
# QUICK=1: a few steps at the tests' tiny shapes, compiling with Dynamo's "eager" backend
# (graphs traced, no code generated); GPU_TESTS=PATHS narrows the tests collected, and
# THROUGHPUT=0 leaves out part2's throughputs (benchmarks/run.py's DEAP-sized data).
set -uo pipefail
part=${1:-}
case "$part" in
  part1|part2|study) ;;
  *) echo "usage: bash benchmarks/gpu_check.sh {part1|part2|study} (see its header)" >&2
     exit 2;;
esac
cd "$(dirname "$0")/.."
outdir="${OUT:-.}"
mkdir -p "$outdir"
jsonl="$outdir/gpu_check.jsonl"
errlog="$outdir/gpu_check_$part.err"
: > "$errlog"
py=${PYTHON:-python3}
dev=${DEVICE:-cuda}
quick=${QUICK:-0}
budget=$([ "$part" = study ] && echo 570 || echo 390)
deadline=$((SECONDS + ${BUDGET_S:-$budget}))
probes="$py benchmarks/gpu_probes.py"
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

# Carried wheels, failing soft: all at once, else one by one, keeping those that install.
wheels_failed=""
if [ -d .whl ] && [ "${SKIP_WHEELS:-0}" != 1 ]; then
  pipi="python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
--target /tmp/site"
  if ! $pipi .whl/*.whl 2>>"$errlog"; then
    for w in .whl/*.whl; do
      $pipi "$w" 2>>"$errlog" || wheels_failed="$wheels_failed $(basename "$w")"
    done
  fi
  export PYTHONPATH="/tmp/site:$PYTHONPATH"
fi
GPU_CHECK_VERSIONS=$($py benchmarks/gpu_probes.py versions 2>>"$errlog") \
  || GPU_CHECK_VERSIONS='{"error": "torch did not import; see the .err file"}'
export GPU_CHECK_VERSIONS
echo "# $part on $dev: $GPU_CHECK_VERSIONS"
if [ -n "$wheels_failed" ]; then
  $probes record --check wheels --part "$part" --rc 1 \
    --note "did not install:$wheels_failed" | tee -a "$jsonl"
fi

# One measurement: its JSON line(s), stamped with the versions, to $jsonl; if it fails
# or times out, a line saying so with the end of its error output.
measure() {  # measure NAME CAP_SECONDS COMMAND...
  local name=$1 cap=$2
  shift 2
  local left=$((deadline - SECONDS))
  if [ "$left" -lt 15 ]; then
    $probes record --check "$name" --part "$part" --note "skipped: the part's budget is spent" \
      | tee -a "$jsonl"
    return
  fi
  local limit=$((cap < left ? cap : left)) start=$SECONDS
  echo "# $name (at most ${limit}s): $*"
  printf '### %s: %s\n' "$name" "$*" >> "$errlog"
  timeout -k 10 "$limit" "$@" 2>>"$errlog" \
    | $probes stamp --check "$name" --part "$part" 2>>"$errlog" | tee -a "$jsonl"
  local rc=${PIPESTATUS[0]}
  if [ "$rc" != 0 ]; then
    tail -c 1500 "$errlog" > "$errlog.tail"
    $probes record --check "$name" --part "$part" --rc "$rc" --seconds $((SECONDS - start)) \
      --tail "$errlog.tail" | tee -a "$jsonl"
    rm -f "$errlog.tail"
  fi
}

if [ "$quick" = 1 ]; then
  size=tiny; long=5; short=3; folds=2; backend="--backend eager"; mode=default
else
  size=auto; long=300; short=32; folds=4; backend=""; mode=reduce-overhead
fi

if [ "$part" = part1 ]; then
  # The gpu-marked tests, by marker, full output kept. Modules that need a package the
  # image lacks fail to collect; --continue-on-collection-errors runs the rest. The
  # project's addopts are replaced: one process (pytest-xdist may not be installed there).
  left=$((deadline - SECONDS)); limit=$((180 < left ? 180 : left)); start=$SECONDS
  echo "# gpu tests (at most ${limit}s)"
  # shellcheck disable=SC2086
  timeout -k 10 "$limit" $py -m pytest -o addopts="" -m gpu -p no:cacheprovider -ra \
    --continue-on-collection-errors --junitxml="$outdir/gpu_tests.xml" ${GPU_TESTS:-tests} \
    > "$outdir/gpu_tests.log" 2>&1
  rc=$?
  tail -n 15 "$outdir/gpu_tests.log"
  # pytest: 0 passed, 5 nothing collected (no CUDA test selected); both are fine here
  $probes record --check gpu-tests --part "$part" --rc "$rc" --seconds $((SECONDS - start)) \
    --junit "$outdir/gpu_tests.xml" | tee -a "$jsonl"
  # shellcheck disable=SC2086
  measure compile-log 150 $probes compile-log --device "$dev" --size "$size" \
    --steps "$short" --folds "$folds" --mode "$mode" $backend --log "$outdir/torch_logs.txt"
  measure host-sync 90 $probes host-sync --device "$dev" --size "$size" --steps "$short"
  measure bf16 120 $probes bf16 --device "$dev" --size "$size" --steps "$long"
fi

if [ "$part" = part2 ]; then
  # shellcheck disable=SC2086
  measure graphs 180 $probes graphs --device "$dev" --size "$size" --steps "$long" $backend
  # Throughputs (benchmarks/run.py; docs/scaling.md gives the targets), most important
  # first: fine-tuning at batch 256, then pre-training at the paper's batch, 1 s and 5 s.
  fsteps=$([ "$quick" = 1 ] && echo 1 || echo 20)
  [ "${THROUGHPUT:-1}" = 0 ] && wlist="" || wlist="1 5"
  if [ -d .authors ] && [ -n "$wlist" ]; then
    measure authors-finetune 60 $py benchmarks/authors_step.py --authors .authors \
      --mode finetune --batch 256 --steps "$fsteps" --device "$dev"
  fi
  if [ -n "$wlist" ]; then
    measure finetune 60 $py benchmarks/run.py finetune --batch 256 --steps "$fsteps" \
      --device "$dev"
    measure finetune-bf16 60 $py benchmarks/run.py finetune --batch 256 --steps "$fsteps" \
      --device "$dev" --amp bf16
  fi
  for w in $wlist; do
    steps=$([ "$w" = 1 ] && echo 96 || echo 64)
    [ "$quick" = 1 ] && steps=2
    pre="$py benchmarks/run.py pretrain --window $w --steps $steps --device $dev"
    if [ -d .authors ]; then
      measure "authors-pretrain-${w}s" 60 $py benchmarks/authors_step.py --authors .authors \
        --window "$w" --steps "$steps" --device "$dev"
    fi
    measure "pretrain-${w}s" 60 $pre
    [ "$quick" = 1 ] && continue  # compiling is the GPU's part, not the smoke test's
    measure "pretrain-${w}s-graphs-bf16" 90 $pre --compile reduce-overhead --amp bf16
    measure "pretrain-${w}s-10folds-graphs-bf16" 120 $pre --batch-folds 10 \
      --compile reduce-overhead --amp bf16
  done
fi

if [ "$part" = study ]; then
  # The preset deap_within end to end on full-size synthetic DEAP (32 subjects x 40
  # videos x 60 s, EEG + GSR), written first (untimed), with the GPU settings.
  if [ "$quick" = 1 ]; then
    measure study 240 $py benchmarks/run.py study --config tiny --subjects 3 --trials 6 \
      --seconds 10 --set device="$dev" --set protocol.one_class=constant \
      --set pretrain.batch_folds=2
  else
    measure study 560 $py benchmarks/run.py study --config deap_within --subjects 32 \
      --trials 40 --seconds 60 --effect 2 --set device="$dev" --set pretrain.batch_folds=10 \
      --set pretrain.compile=reduce-overhead --scratch /tmp/physiosync-study
  fi
fi
echo "# $part done in ${SECONDS}s; results in $jsonl"
