#!/usr/bin/env bash
# The GPU reference run of README "A model trained on this CPU" (issue 14), in one call:
# train configs/animatepainter.py:128-small for at most TRAIN_SECONDS (SIGTERM then saves a
# checkpoint and exits 0), export it, sample the held-out photos, evaluate against the baselines,
# and measure step time / MFU with tools/bench_train.py. Figures land in OUT (default $OUT or gpu_ref).
#
#   bash tools/gpu_reference.sh                                   # on the GPU machine
#   CONFIG=configs/animatepainter.py:tiny TRAIN_SECONDS=60 STEPS=4 bash tools/gpu_reference.sh   # CPU dry run
set -euo pipefail
CONFIG=${CONFIG:-configs/animatepainter.py:128-small}
TRAIN_SECONDS=${TRAIN_SECONDS:-360}  # at most 8 minutes, and the whole script within one 10-minute device call
STEPS=${STEPS:-100000}
OUT=${OUT:-gpu_ref}
PY=${PY:-python}
mkdir -p "$OUT"
$PY tools/make_photos.py --out "$OUT/photos"
$PY -c "import jax; print('devices:', jax.devices())" | tee "$OUT/devices.txt"
common=(--config "$CONFIG" --config.data.source="folder:$OUT/photos/train" --config.train.sample_source="$OUT/photos/heldout")
# at most TRAIN_SECONDS of training; SIGTERM checkpoints at the next step and exits 0
timeout --signal=TERM --kill-after=120 "$TRAIN_SECONDS" \
  $PY tools/train.py "${common[@]}" --workdir "$OUT/run" --config.total_steps="$STEPS" \
  --config.train.log_every=10 --config.train.sample_every=200 2>&1 | tail -n 40 > "$OUT/train.log" || true
$PY tools/plot_run.py "$OUT/run" --out "$OUT/curves"
$PY tools/export_model.py "$OUT/run" --out "$OUT/model"
$PY tools/sample.py --checkpoint "$OUT/model" --images "$OUT/photos/heldout" --out "$OUT/processes/diffusion" --no-mp4
$PY tools/eval.py --processes "$OUT/processes" --baselines --size 128 --out "$OUT/eval" --quiet | tee "$OUT/eval.txt"
$PY tools/bench_train.py "${common[@]}" --images "$OUT/photos/train" --steps 20 2>&1 | tail -n 1 | tee "$OUT/bench_train.txt"
tail -n 3 "$OUT/run/metrics.jsonl" > "$OUT/last_metrics.jsonl"
echo "gpu_reference: done; figures in $OUT (eval.txt, bench_train.txt, curves/, last_metrics.jsonl)"
