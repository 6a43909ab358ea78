#!/usr/bin/env bash
# The GPU targets of issue 12, measured side by side in one run on a CUDA machine.
#
# Prepare once, on a machine with the package index (the GPU machine reaches nothing):
#   printf '/.whl/\n/.authors/\n' >> .git/info/exclude
#   python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
#     --implementation cp --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
#     -d .whl mne==1.13.2 pyedflib==0.1.42 pooch decorator platformdirs
#   git clone https://github.com/MSA-LMC/PhysioSync .authors     # the authors' code, unchanged
# (the GPU image already has torch, numpy, scipy, scikit-learn, pandas, matplotlib, pyyaml,
# tqdm, jinja2, lazy-loader and timm). Then, with .whl and .authors carried:
#   bash benchmarks/gpu_check.sh            # JSON lines in ${OUT:-.}/gpu_check.jsonl
# A smoke test of the script itself, with the installed packages and the CPU:
#   DEVICE=cpu QUICK=1 SKIP_WHEELS=1 PYTHON=.venv/bin/python bash benchmarks/gpu_check.sh
#
# What it checks and measures, most important first, each result appended to the JSON lines
# as soon as it is taken (a run stopped by a time limit keeps what finished):
#   0. the CUDA-only tests: models and losses, the resident windows, the step that reads the
#      loss every 32 steps, CUDA graphs against eager, fold batching against separate runs;
#   1. fine-tuning steps at batch 256: the authors' fine-tuning train(), physiosync float32
#      and bf16 (target: >= 5x the authors' steps/s);
#   2. pre-training steps at the paper's batch (8 stimulus slots x 2 subjects), 1 s then 5 s
#      windows, side by side: the authors' train() loop on the same shapes
#      (benchmarks/authors_step.py imports their code from .authors); physiosync eager
#      float32; the step compiled with CUDA graphs (torch.compile "reduce-overhead") in bf16;
#      10 folds' models in one batched, compiled bf16 step (pretrain.batch_folds: its
#      fold_steps_per_second is the figure to put beside the authors' steps_per_second, since
#      a study runs every fold); then, less important, compiled float32 and 10 folds batched
#      eager float32 (target: >= 10x the authors' steps/s at 1 s and at 5 s);
#   3. with STUDY=1 only: the preset deap_within end to end on full-size synthetic DEAP
#      (32 subjects x 40 videos x 60 s, EEG + GSR), written first (untimed), on the GPU
#      with pretrain.batch_folds=10 and pretrain.compile=reduce-overhead (target: 10 min).
#      Off by default: docs/scaling.md gives the estimate; run it in a call of its own.
# PARTS=tests,finetune,pretrain (the default) chooses among 0-2, e.g. PARTS=pretrain to rerun
# only that; compiling costs each compiled line tens of seconds before its steps are timed.
set -uo pipefail
out="${OUT:-.}/gpu_check.jsonl"
if [ -d .whl ] && [ "${SKIP_WHEELS:-0}" != 1 ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site:$PWD"
else
  export PYTHONPATH="$PWD"
fi
export PYTHONUNBUFFERED=1
py=${PYTHON:-python3}
dev=${DEVICE:-cuda}
quick=${QUICK:-0}
$py -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), \
torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')"
# One measurement: its JSON line to $out; if it fails, the end of its error output instead.
run() {
  echo "# $*"
  "$@" 2>/tmp/gpu_check.err | tee -a "$out"
  [ "${PIPESTATUS[0]}" = 0 ] || { echo "# failed:"; tail -5 /tmp/gpu_check.err; }
}
want() { case ",${PARTS:-tests,finetune,pretrain}," in *",$1,"*) return 0;; esac; return 1; }
# The CUDA-only tests (float16 autocast in the models and losses, the device paths).
if want tests; then
  $py -m pytest -q -p no:cacheprovider tests/test_models.py tests/test_losses.py \
    tests/test_step_engine.py tests/test_fold_batch.py -k "cuda or autocast" 2>&1 | tail -3
fi
fsteps=$([ "$quick" = 1 ] && echo 1 || echo 20)
if want finetune; then
  if [ -d .authors ]; then
    run $py benchmarks/authors_step.py --authors .authors --mode finetune --batch 256 \
      --steps "$fsteps" --device $dev
  fi
  run $py benchmarks/run.py finetune --batch 256 --steps "$fsteps" --device $dev
  run $py benchmarks/run.py finetune --batch 256 --steps "$fsteps" --device $dev --amp bf16
fi
for w in 1 5; do
  want pretrain || break
  steps=$([ "$w" = 1 ] && echo 96 || echo 64)
  [ "$quick" = 1 ] && steps=2
  if [ -d .authors ]; then
    run $py benchmarks/authors_step.py --authors .authors --window "$w" --steps "$steps" \
      --device $dev
  fi
  pre="$py benchmarks/run.py pretrain --window $w --steps $steps --device $dev"
  run $pre
  run $pre --compile reduce-overhead --amp bf16
  run $pre --batch-folds 10 --compile reduce-overhead --amp bf16
done
for w in 1 5; do  # the same steps without bf16 (float32 results match the CPU's to rounding)
  want pretrain || break
  steps=$([ "$w" = 1 ] && echo 96 || echo 64)
  [ "$quick" = 1 ] && steps=2
  pre="$py benchmarks/run.py pretrain --window $w --steps $steps --device $dev"
  run $pre --compile reduce-overhead
  run $pre --batch-folds 10
done
fast="--set pretrain.batch_folds=10 --set pretrain.compile=reduce-overhead"
if [ "$quick" = 1 ]; then
  run $py benchmarks/run.py study --config tiny --subjects 3 --trials 6 --seconds 10 \
    --set device=$dev --set protocol.one_class=constant --set pretrain.batch_folds=2
elif [ "${STUDY:-0}" = 1 ]; then
  run $py benchmarks/run.py study --config deap_within --subjects 32 \
    --trials 40 --seconds 60 --effect 2 --set device=$dev $fast --scratch /tmp/physiosync-study
fi
