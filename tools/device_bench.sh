#!/usr/bin/env bash
# Issue 12's GPU measurement, for a session lent the device (an H100 or H200 with JAX and CUDA, Python 3.12,
# no Keras, no TensorFlow, nothing to download). The ML package's batch path (decode, compiled forward +
# Grad-CAM, gate, heatmap PNG and overlay JPEG) on 4,000 real radiographs under Keras 3 on JAX, with where the
# time goes, at the GPU worker's batch of 128: one process with 12 decode/render threads, from the originals and
# from working copies (the worker's path), serial and pipelined; the same on 512 of them enlarged to 2,000 pixels;
# then several processes sharing the GPU (CELERY_WORKER_CONCURRENCY) with one or more threads each
# (INFERENCE_THREADS).
# Compiled shapes are cached between the runs, so only the first one compiles.
#
#   bash tools/device_bench.sh prepare   # here: Keras and the few wheels the device lacks, and 4,000 training
#                                        # images, into .device/ (git-ignored; about 37 MB)
#   the device tool: run(command="bash tools/device_bench.sh run", carry=[".device"], timeout_s=600)
#
# Everything it prints also goes, line by line, to $OUT/device_bench.log, so a run stopped at its time limit
# still brings back what it measured (a filter such as grep in the call's own pipeline holds its output back
# until it ends, and a killed run then returns nothing: that lost a whole run once). The first process
# compiles every batch shape up to 128; the later ones read them from the cache. On an H100 the first call's
# three processes took 278 s in all, mostly loading and compiling; each now prints how long that took.
#
# The device's own image already holds numpy, scipy, scikit-learn, opencv-python-headless, pillow, h5py,
# ml-dtypes, threadpoolctl, rich and absl-py (its KINDS.md); the versions carried are requirements-gpu.lock's.
set -euo pipefail
cd "$(dirname "$0")/.."
case "${1:-}" in
prepare)
  rm -rf .device && mkdir -p .device/wheels .device/data
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .device/wheels keras==3.15.1 optree==0.20.0 namex==0.1.0 pydicom==3.0.2 \
    simplejpeg==1.9.0
  src=../shared/data/chest_xray/train
  [ -d "$src" ] || { echo "no $src: the training images are needed" >&2; exit 1; }
  find "$src" -name '*.jpeg' | sort | awk 'NR % 5 != 0' | head -n 4000 | while read -r f; do
    cp "$f" ".device/data/$(basename "$(dirname "$f")")-$(basename "$f")"
  done
  du -sh .device && ls .device/wheels
  ;;
run)
  exec > >(tee -a "${OUT:-/tmp}/device_bench.log") 2>&1
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .device/wheels/*.whl
  export PYTHONPATH="/tmp/site:$PWD" KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
  export JAX_COMPILATION_CACHE_DIR=/tmp/jax-cache JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS=0
  nvidia-smi -L || true
  echo "$(nproc) CPU cores; cgroup CPU quota: $(cat /sys/fs/cgroup/cpu.max 2>/dev/null || echo unknown)"
  python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
  date +%T
  # one process as the compose GPU worker runs it (12 decode/render threads), serial and pipelined as the
  # worker's task runs it (a helper thread decodes the next batch and draws the one before while the model judges)
  # (from the originals, then from working copies as the worker now judges); then radiographs of a clinical size
  python3 -m worker.ml.bench --batch-path 4000 --batch 128 --threads 12 --folder .device/data
  date +%T
  python3 -m worker.ml.bench --batch-path 512 --batch 128 --threads 12 --side 2000 --folder .device/data
  for run in "4 1" "8 1"; do
    set -- $run
    date +%T
    python3 -m worker.ml.bench --batch-path 4000 --batch 128 --processes "$1" --threads "$2" --folder .device/data
  done
  ;;
*)
  echo "usage: bash tools/device_bench.sh prepare|run" >&2
  exit 2
  ;;
esac
