#!/usr/bin/env bash
# GPU figures in one call (issue 15): the gpu-marked tests, the batched rasterizer, the video DiT
# (fwd / fwd+bwd, MFU) and a real training loop for :128-small and :128, and Depth Anything.
# Each bench's key=value line goes to $OUT/figures.txt; full logs beside it. At most ~8 minutes
# on an H100/H200 (each step has its own timeout).
#
#   bash tools/device_check.sh              # on the GPU machine (wheels in .whl/ installed first, if any)
#   bash tools/device_check.sh --dry-run    # CPU, tiny sizes: every step runs (CI: tests/test_gpu.py)
set -uo pipefail
DRY=0; [[ "${1:-}" == "--dry-run" ]] && DRY=1
OUT=${OUT:-device_check}
PY=${PY:-python3}
mkdir -p "$OUT"
: > "$OUT/figures.txt"
export PYTHONUNBUFFERED=1
if [[ $DRY == 0 && -d .whl ]] && ls .whl/*.whl >/dev/null 2>&1; then  # what the GPU image lacks (grain, clu, ...)
  $PY -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
if [[ $DRY == 1 ]]; then
  export JAX_PLATFORMS=cpu
  RASTER=(--raster-strokes 64 --raster-sizes ""); CONFIGS=(configs/tiny.py); DEPTH=(--size 56 --batch 1 --repeat 1)
  MODEL=(--iters 1); TRAIN=(--steps 2); T=300
else
  export JAX_PLATFORMS=${JAX_PLATFORMS:-cuda}  # tests/conftest.py defaults to cpu
  RASTER=(); CONFIGS=(configs/animatepainter.py:128-small configs/animatepainter.py:128); DEPTH=(--size 518 --batch 8)
  MODEL=(--iters 5); TRAIN=(--steps 12); T=150
fi
status=0
step() {  # step NAME TIMEOUT CMD...: run, keep the log, append the last key=value line to figures.txt
  local name=$1 t=$2; shift 2
  echo "== $name: $*"
  if timeout --kill-after=10 "$t" "$@" > "$OUT/$name.log" 2>&1; then
    echo "$name $(grep -E '^[a-z_]+=' "$OUT/$name.log" | tail -n 1)" | tee -a "$OUT/figures.txt"
  else
    echo "$name FAILED (exit $?; see $OUT/$name.log)" | tee -a "$OUT/figures.txt"; tail -n 20 "$OUT/$name.log"; status=1
  fi
}
$PY -c "import jax; print('devices:', jax.devices())" | tee "$OUT/devices.txt"
# gpu-marked tests (on CPU in the dry run: the same code on the CPU device)
if timeout 200 $PY -m pytest -q -m gpu -o addopts="" tests/test_gpu.py > "$OUT/gpu_tests.log" 2>&1; then r=passed; else r=failed; status=1; fi
echo "gpu_tests gpu_tests=$r $(tail -n 1 "$OUT/gpu_tests.log" | tr ' ' '_')" | tee -a "$OUT/figures.txt"
step raster "$T" $PY tools/bench_strokes.py --what raster "${RASTER[@]}"
for c in "${CONFIGS[@]}"; do
  tag=$(basename "${c//:/_}" .py)
  step "model_$tag" "$T" $PY tools/bench_model.py --config "$c" "${MODEL[@]}"
  step "train_$tag" "$T" $PY tools/bench_train.py --config "$c" "${TRAIN[@]}"
done
step depth "$T" $PY tools/bench_depth.py "${DEPTH[@]}"
echo "device_check: figures in $OUT/figures.txt"
exit $status
