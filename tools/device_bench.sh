#!/usr/bin/env bash
# Issue 12's GPU measurement, for a session lent the device (an H100 or H200 with JAX and CUDA, Python 3.12,
# no Keras, no TensorFlow, nothing to download). The ML package's batch path (decode, compiled forward +
# Grad-CAM, gate, heatmap PNG and overlay JPEG) on 2,000 real radiographs under Keras 3 on JAX, with where the
# time goes, at batches of 256 and 512.
#
#   bash tools/device_bench.sh prepare   # here: Keras and the few wheels the device lacks, and 2,000 training
#                                        # images, into .device/ (git-ignored; about 20 MB)
#   the device tool: run(command="bash tools/device_bench.sh run", carry=[".device"], timeout_s=420)
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
    --platform manylinux2014_x86_64 -d .device/wheels keras==3.15.1 optree==0.20.0 namex==0.1.0 pydicom==3.0.2
  src=../shared/data/chest_xray/train
  [ -d "$src" ] || { echo "no $src: the training images are needed" >&2; exit 1; }
  find "$src" -name '*.jpeg' | sort | awk 'NR % 2 == 1' | head -n 2000 | while read -r f; do
    cp "$f" ".device/data/$(basename "$(dirname "$f")")-$(basename "$f")"
  done
  du -sh .device && ls .device/wheels
  ;;
run)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .device/wheels/*.whl
  export PYTHONPATH="/tmp/site:$PWD" KERAS_BACKEND=jax XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1
  nvidia-smi -L || true
  python3 -c "import jax, keras; print('jax', jax.__version__, jax.devices(), 'keras', keras.__version__)"
  for batch in 256 512; do
    python3 -m worker.ml.bench --batch-path 2000 --batch "$batch" --folder .device/data
  done
  ;;
*)
  echo "usage: bash tools/device_bench.sh prepare|run" >&2
  exit 2
  ;;
esac
